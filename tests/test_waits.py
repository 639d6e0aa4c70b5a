"""The estimated wait: learnt from the line's recent conversations and the agents logged in."""

from __future__ import annotations

import pytest

from ivr.waits import estimate_wait, say_minutes, spoken_minutes


@pytest.mark.parametrize(
    ("position", "available", "busy", "talks", "expected"),
    [
        (3, 0, 2, [240, 240], 480),  # ceil(3/2) x 4 min
        (1, 0, 1, [], 300),  # no history yet: the queue's default handling time
        (4, 0, 1, [60, 120, 0], 360),  # zero-length calls (dropped) do not count
        (1, 1, 1, [240], 0),  # a free agent: being connected now
        (2, 1, 1, [240], 240),
        (5, 0, 0, [240], None),  # nobody logged in: no estimate
    ],
)
def test_estimate(
    position: int, available: int, busy: int, talks: list[int], expected: int | None
) -> None:
    assert estimate_wait(position, available, busy, talks, 300) == expected


def test_the_estimate_moves_with_the_queues_history() -> None:
    quick = estimate_wait(3, 0, 2, [120] * 10, 300)
    slow = estimate_wait(3, 0, 2, [600, *[120] * 10], 300)
    assert quick is not None and slow is not None and slow > quick


@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (60, 1), (61, 2), (479, 8)])
def test_minutes_are_rounded_up_and_never_zero(seconds: int, minutes: int) -> None:
    assert spoken_minutes(seconds) == minutes


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en_US", "8 minutes"),
        ("zh_Hans_CN", "8分钟"),
        ("fr_FR", "8 minutes"),
        ("de_DE", "8 Minuten"),
    ],
)
def test_minutes_are_spoken_in_the_callers_language(locale: str, words: str) -> None:
    assert say_minutes(8, locale) == words
