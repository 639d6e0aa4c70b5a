"""The estimated wait: learnt from the line's recent conversations and the agents logged in."""

from __future__ import annotations

import itertools

import pytest

from ivr.waits import (
    LineHistories,
    LineHistory,
    Spoken,
    estimate_wait,
    live_estimate,
    say_minutes,
    spoken_minutes,
    spoken_wait,
)


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


# --- the live estimator ---------------------------------------------------------------------------


def test_live_has_no_estimate_without_agents_and_none_for_a_caller_a_free_agent_takes() -> None:
    assert live_estimate(3, 30, 0, [], [240], 300) is None
    assert live_estimate(2, 30, 2, [], [240], 300) == 0


def test_live_counts_what_is_left_of_the_calls_in_progress() -> None:
    # One agent, 200 s into a call; conversations here last 300 s: the caller next in line waits
    # the remaining 100 s, where the formula says a whole 300.
    assert live_estimate(1, 30, 0, [200.0], [300] * 20, 300) == 100
    assert estimate_wait(1, 0, 1, [300] * 20, 300) == 300
    # Second in line: the rest of this call, then one whole call.
    assert live_estimate(2, 30, 0, [200.0], [300] * 20, 300) == 400


def test_live_uses_the_distribution_not_only_the_mean() -> None:
    # Half the calls are 60 s, half 540 s (mean 300). A call 100 s old is one of the long ones:
    # 440 s left; the mean alone would say 200.
    talks = [60, 540] * 10
    assert live_estimate(1, 30, 0, [100.0], talks, 300) == 440


def test_a_call_longer_than_any_in_the_history_still_ends_soon() -> None:
    assert live_estimate(1, 30, 0, [1000.0], [300] * 20, 300) == 75


def test_abandonment_shortens_the_wait_of_a_caller_far_back() -> None:
    patient = live_estimate(10, 30, 0, [0.0, 0.0], [300] * 20, 300)
    impatient = live_estimate(
        10, 30, 0, [0.0, 0.0], [300] * 20, 300, LineHistory(abandon_rate=1 / 600)
    )
    assert patient is not None and impatient is not None and impatient < patient * 0.8


def test_urgent_callers_likely_to_join_ahead_lengthen_the_wait() -> None:
    # Security emergencies (priority 100) join this line about once every 10 minutes.
    emergencies = LineHistory(arrivals_per_second={100: 1 / 600, 30: 1 / 60})
    plain = live_estimate(5, 30, 0, [0.0], [300] * 20, 300)
    behind_urgent = live_estimate(5, 30, 0, [0.0], [300] * 20, 300, emergencies)
    first_class = live_estimate(5, 100, 0, [0.0], [300] * 20, 300, emergencies)
    assert plain is not None and behind_urgent is not None and behind_urgent > plain
    assert first_class == plain  # nobody goes ahead of the highest priority


def test_the_database_history_is_preferred_once_it_has_enough_calls() -> None:
    few = LineHistory(talk_seconds=(600.0,) * 5)
    enough = LineHistory(talk_seconds=(600.0,) * 10)
    assert live_estimate(1, 30, 0, [0.0], [300] * 20, 300, few) == 300  # Redis's 50 instead
    assert live_estimate(1, 30, 0, [0.0], [300] * 20, 300, enough) == 600
    assert live_estimate(1, 30, 0, [0.0], [], 300) == 300  # nothing at all: the default


def test_live_never_tells_a_later_caller_a_shorter_wait() -> None:
    waits = [live_estimate(p, 30, 1, [50.0, 120.0], [200, 400] * 10, 300) for p in range(1, 30)]
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(waits))


def test_line_histories_are_empty_until_refreshed_and_due_again_after_a_while() -> None:
    histories = LineHistories()
    assert histories.get("funds", "en-US") is None and histories.due(60)
    histories.replace({("funds", "en-US"): LineHistory(abandon_rate=0.01)})
    assert histories.get("funds", "en-US") == LineHistory(abandon_rate=0.01)
    assert not histories.due(60) and histories.due(0)


@pytest.mark.parametrize(
    ("seconds", "style", "spoken"),
    [
        (400, "between", Spoken(3, 10)),
        (400, "under", Spoken(0, 10)),
        (400, "about", Spoken(7, 7)),
        (50, "between", Spoken(0, 2)),  # under a minute's low end: "less than 2 minutes"
        (30, "about", Spoken(1, 1)),
    ],
)
def test_the_spoken_minutes_bracket_the_estimate(seconds: int, style: str, spoken: Spoken) -> None:
    assert spoken_wait(seconds, style, (0.5, 1.5)) == spoken
