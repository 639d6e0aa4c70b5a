"""Whole calls in the benchmark's report: server time, wall time, callers told no place."""

from __future__ import annotations

from bench import report
from bench.loadgen import CallRecord, Phase, PhaseRun, Sample

PHASE = Phase("paced-100", 100, 1.0, 20.0)


def call(server_ms: float, wall_s: float, errors: int = 0, told: bool | None = True) -> CallRecord:
    return CallRecord("CA" + "0" * 32, server_ms / 1000, wall_s, 8, errors, told)


def phase_run(target: str, calls: list[CallRecord], webhook_ms: list[float]) -> PhaseRun:
    run = PhaseRun(target, PHASE, 0.0, calls=calls)
    run.samples = [Sample("hold", ms / 1000, 1.0) for ms in webhook_ms]
    run.wall_seconds = 10.0
    return run


def test_whole_calls_are_timed_by_the_sum_of_their_webhooks_and_by_the_clock() -> None:
    calls = [call(ms, 8.0 + ms / 100) for ms in range(1, 101)]  # 1 .. 100 ms of server time
    stats = report.call_stats(calls)
    assert stats["calls"] == 100
    assert stats["server_p50_ms"] == 50.0
    assert stats["server_p99_ms"] == 99.0
    assert stats["wall_p50_s"] == 8.5
    assert stats["wall_p99_s"] == 8.99


def test_failed_calls_and_callers_told_no_place_are_counted() -> None:
    calls = [call(10, 8), call(10, 8, errors=1), call(10, 8, told=False), call(10, 8, told=None)]
    stats = report.call_stats(calls)
    assert stats["failed_calls"] == 1
    assert stats["reached_hold"] == 3
    assert stats["no_position"] == 1


def test_no_calls_give_zeros_not_an_error() -> None:
    assert report.call_stats([])["server_p99_ms"] == 0.0


def test_the_phase_summary_compares_whole_calls_with_the_floor() -> None:
    app = phase_run("app", [call(30, 8), call(60, 9)], [5, 10])
    floor = phase_run("floor", [call(10, 8), call(20, 8)], [2, 4])
    summary = report.phase_summary([app], [floor])
    assert summary["calls"]["app"]["server_p99_ms"] == 60.0
    assert summary["calls"]["ratio"]["server_p99_ms"] == 3.0
    assert summary["all"]["ratio"]["p99_ms"] == 2.5


def test_each_round_is_compared_with_the_floor_of_the_same_round() -> None:
    rounds = report.round_ratios(
        [phase_run("app", [call(40, 8)], [8]), phase_run("app", [call(20, 8)], [4])],
        [phase_run("floor", [call(10, 8)], [2]), phase_run("floor", [call(10, 8)], [2])],
    )
    assert [(r["round"], r["webhook_p99"], r["call_p99"]) for r in rounds] == [
        (1, 4.0, 4.0),
        (2, 2.0, 2.0),
    ]


def test_the_markdown_has_a_whole_calls_table() -> None:
    app = phase_run("app", [call(30, 8)], [5])
    floor = phase_run("floor", [call(10, 8)], [2])
    results = {
        "phases": [{"name": "paced-100", "label": "100 concurrent calls"}],
        "summary": {"paced-100": report.phase_summary([app], [floor])},
    }
    table = report.calls_table(results)
    assert table[2].startswith("| 100 concurrent calls | 1 / 1 | 30.0 / 10.0 (×3)")
