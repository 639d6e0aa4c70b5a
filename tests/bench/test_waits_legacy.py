"""bench.waits_legacy: the pre-issue-21 `live` estimator, kept for the comparison in bench.waits."""

from __future__ import annotations

from bench.waits_legacy import LineHistory, legacy_estimate


def test_no_agent_logged_in_is_no_estimate_and_an_available_agent_is_no_wait() -> None:
    assert legacy_estimate(1, 0, 0, [], [240], 240) is None
    assert legacy_estimate(2, 0, 2, [30.0], [240], 240) == 0


def test_it_walks_the_expected_residuals_the_staircase_issue_21_describes() -> None:
    """Four agents who just started 240 s calls: the first four in line are told 240 s, the next
    four 480 s (the ceil(k / s) x mean staircase), however the talk times are spread."""
    busy = [0.0, 0.0, 0.0, 0.0]
    told = [legacy_estimate(p, 0, 0, busy, [240], 240) for p in range(1, 10)]
    assert told == [240, 240, 240, 240, 480, 480, 480, 480, 720]


def test_the_database_history_and_abandonment_shorten_the_walk() -> None:
    history = LineHistory(talk_seconds=(120.0,) * 10, abandon_rate=1 / 300)
    busy = [0.0] * 4
    without = legacy_estimate(9, 0, 0, busy, [240], 240, LineHistory(talk_seconds=(120.0,) * 10))
    assert without == 360
    told = legacy_estimate(9, 0, 0, busy, [240], 240, history)
    assert told is not None and told < 360
