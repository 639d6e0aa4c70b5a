"""How right the announced waits are, against the least possible error: written up.

    .venv/bin/python -m bench.waits

Runs every scenario of `scenarios/waits/` in-process (`ivr simulate --load`, seeded, so a run
repeats exactly) once, with the shipped estimator (`live`) on every queue. Each hold round carries
every estimator's estimate on the same line state (`live`, the shipped one; `legacy`, the `live`
estimator before issue 21, `bench.waits_legacy`; `formula`) and the wait that followed, so all
three are compared on the same callers. The five original scenarios run a second time with
`position_only_down: false`, to show what that rule prevents. It writes

- `bench/results/waits.json`: the figures per scenario and position group, and the targets;
- `docs/qa/waits.md`: the tables, the targets of issue 21 and what the figures say;
- `docs/waits.png`: estimate against actual wait per estimator, and the MAE ratio by position.

The yardstick (`bench.waits_models`): on scenarios of the Erlang kind, the least possible MAE
(the median of the model's wait distribution); elsewhere, the best position-only predictor of the
same run (the in-sample median wait per position). Nothing is timed: simulated time is free, and
the figures are the same on any machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.waits_legacy import legacy_estimate
from bench.waits_models import (
    GROUPS,
    Model,
    ModelRanges,
    RoundLike,
    ScenarioLike,
    busy_measured,
    connect_time,
    group_of,
    model_of,
    spread,
)
from ivr.simulator.load import Estimator
from ivr.switchboard import EstimateMade
from ivr.waits import WaitEstimate, formula_estimate, line_estimate

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "waits"
RESULTS = ROOT / "bench" / "results" / "waits.json"
REPORT = ROOT / "docs" / "qa" / "waits.md"
PLOT = ROOT / "docs" / "waits.png"
RULES, PROMPTS = ROOT / "routing_rules.yaml", ROOT / "voice_prompts"
ESTIMATORS = ("live", "legacy", "formula")
"""`live` is what callers hear; the other two are computed on the same rounds for comparison."""
ORIGINAL = ("steady", "peak", "agents_logout", "callbacks_abandon", "emergency")
"""The scenarios that also run without the position rule (zero position rises)."""
ALL = "all"
MAE_FACTOR = 1.1
"""Targets: live MAE at most this times the yardstick's."""
COVERAGE = (0.75, 0.85)
WIDTH_FACTOR = 1.2


class PairLike(Protocol):
    """An estimate as a caller heard it (`ivr.simulator.accuracy.Pair`): whole minutes."""

    @property
    def position(self) -> int | None: ...

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...

    @property
    def actual(self) -> float | None: ...

    @property
    def inside(self) -> bool: ...


class ScenarioFile(ScenarioLike, Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def path(self) -> Path: ...

    @property
    def answer_after(self) -> float: ...


class ResultLike(Protocol):
    """What the report reads of a load run (`ivr.simulator.load.LoadResult`)."""

    @property
    def scenario(self) -> ScenarioFile: ...

    @property
    def rounds(self) -> Sequence[RoundLike]: ...

    @property
    def pairs(self) -> Sequence[PairLike]: ...

    @property
    def calls(self) -> int: ...

    @property
    def fates(self) -> Mapping[str, int]: ...

    @property
    def position_rises(self) -> int: ...

    @property
    def positions_heard(self) -> int: ...

    @property
    def abandoned_after_assignment_unrecorded(self) -> int: ...


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's run, as the report needs it."""

    name: str
    description: str
    file: str
    rounds: Sequence[RoundLike]
    pairs: Sequence[PairLike] = ()
    model: Model | None = None
    calls: int = 0
    fates: Mapping[str, int] = field(default_factory=dict)
    position_rises: int = 0
    positions_heard: int = 0
    rule_off_rises: int | None = None
    """Position rises of the same run with `position_only_down: false` (original scenarios only)."""
    unrecorded: int = 0
    """Callers who hung up after an agent was assigned and are missing from the abandonment history."""


def scenario_run(result: ResultLike, rule_off_rises: int | None = None) -> ScenarioRun:
    """The report's view of a load run; the model's connect time is measured from its rounds."""
    scenario = result.scenario
    measured = getattr(result, "connect_seconds", None)
    connect = (
        measured
        if measured is not None
        else connect_time(result.rounds, fallback=scenario.answer_after)
    )
    whisper = getattr(result, "whisper_seconds", None) or 0.0
    try:
        file = str(scenario.path.relative_to(ROOT))
    except ValueError:
        file = str(scenario.path)
    return ScenarioRun(
        name=scenario.name,
        description=scenario.description,
        file=file,
        rounds=result.rounds,
        pairs=result.pairs,
        model=model_of(scenario, connect, whisper),
        calls=result.calls,
        fates=dict(result.fates),
        position_rises=result.position_rises,
        positions_heard=result.positions_heard,
        rule_off_rises=rule_off_rises,
        unrecorded=result.abandoned_after_assignment_unrecorded,
    )


# --- the figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One position group (or `ALL`) of a scenario, over the rounds with every agent busy and an
    answer (the same rounds for every estimator). Seconds; shares 0-1; None: nothing to measure."""

    group: str
    rounds: int
    mean_wait: float | None = None
    mae: dict[str, float] = field(default_factory=dict)
    """Per estimator: the MAE of its median."""
    bias: float | None = None
    """live: mean of median - actual (positive: callers were answered sooner than told)."""
    yardstick_mae: float | None = None
    """The least possible MAE (model), else the in-sample position-only MAE."""
    ratio: float | None = None
    """live MAE / yardstick MAE."""
    coverage: float | None = None
    """Share of waits inside live's [low, high]."""
    width: float | None = None
    """Mean width of live's range."""
    reference_width: float | None = None
    """Mean width of the 10th-90th percentile range (model, else in-sample per position)."""
    width_ratio: float | None = None
    reference_coverage: float | None = None
    """Share of waits inside the 10th-90th percentile range (about 80% when the model holds)."""
    heard: int = 0
    """Estimates heard (answered callers, a position said) in this group, all agent states."""
    heard_inside: float | None = None
    heard_width_ratio: float | None = None
    """Mean width heard / mean 10th-90th width at the same positions."""


def comparable(rounds: Iterable[RoundLike]) -> list[RoundLike]:
    """The rounds the figures are taken over: every agent busy, an answer, every estimator's
    estimate present (so that each is measured on the same callers)."""
    return [r for r in busy_measured(rounds) if all(e in r.estimates for e in ESTIMATORS)]


def reference(run: ScenarioRun) -> Callable[[int], tuple[float, float, float]]:
    """(median, 10th, 90th percentile) of the wait at a position: the model's, else the in-sample
    figures of the run's waits at that position group."""
    if run.model is not None:
        ranges = ModelRanges(run.model)
        return lambda position: ranges(max(0, position - 1))
    waits: dict[str, list[float]] = {}
    for r in comparable(run.rounds):
        assert r.actual is not None
        waits.setdefault(group_of(r.position), []).append(r.actual)
    per_group = {g: (statistics.median(w), *spread(w)) for g, w in waits.items()}
    return lambda position: per_group.get(group_of(position), (0.0, 0.0, 0.0))


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _row(
    group: str,
    rounds: Sequence[RoundLike],
    pairs: Sequence[PairLike],
    known: Callable[[int], tuple[float, float, float]],
    groups_seen: set[str],
) -> Row:
    heard = [p for p in pairs if p.position is not None and group_of(p.position) in groups_seen]
    heard_reference = [known(p.position) for p in heard if p.position is not None]
    heard_figures: dict[str, Any] = {}
    if heard:
        heard_width = statistics.fmean(p.high - p.low for p in heard)
        heard_figures = {
            "heard": len(heard),
            "heard_inside": sum(1 for p in heard if p.inside) / len(heard),
            "heard_width_ratio": _ratio(
                heard_width, statistics.fmean(h - lo for _, lo, h in heard_reference)
            ),
        }
    if not rounds:
        return Row(group, 0, **heard_figures)
    actual = [r.actual or 0.0 for r in rounds]
    mae = {
        e: statistics.fmean(
            abs(r.estimates[e].median - a) for r, a in zip(rounds, actual, strict=True)
        )
        for e in ESTIMATORS
    }
    predicted = [known(r.position) for r in rounds]
    yardstick = statistics.fmean(abs(m - a) for (m, _, _), a in zip(predicted, actual, strict=True))
    live = [r.estimates["live"] for r in rounds]
    width = statistics.fmean(e.high - e.low for e in live)
    reference_width = statistics.fmean(h - lo for _, lo, h in predicted)
    return Row(
        group=group,
        rounds=len(rounds),
        mean_wait=statistics.fmean(actual),
        mae=mae,
        bias=statistics.fmean(e.median - a for e, a in zip(live, actual, strict=True)),
        yardstick_mae=yardstick,
        ratio=_ratio(mae["live"], yardstick),
        coverage=sum(1 for e, a in zip(live, actual, strict=True) if e.low <= a <= e.high)
        / len(rounds),
        width=width,
        reference_width=reference_width,
        width_ratio=_ratio(width, reference_width),
        reference_coverage=sum(
            1 for (_, lo, h), a in zip(predicted, actual, strict=True) if lo <= a <= h
        )
        / len(rounds),
        **heard_figures,
    )


def rows(run: ScenarioRun) -> list[Row]:
    """The scenario's figures per position group 1, 2, 3, 4, 5, 6+ (those with rounds or heard
    estimates) and overall (`ALL`)."""
    kept = comparable(run.rounds)
    known = reference(run)
    heard = [p for p in run.pairs if p.actual is not None]
    found = []
    for group in GROUPS:
        mine = [r for r in kept if group_of(r.position) == group]
        row = _row(group, mine, heard, known, {group})
        if row.rounds or row.heard:
            found.append(row)
    found.append(_row(ALL, kept, heard, known, set(GROUPS)))
    return found


# --- the targets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scenario: str
    target: str
    measured: str
    met: bool


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def targets(runs: Sequence[ScenarioRun], figures: Mapping[str, Sequence[Row]]) -> list[Target]:
    """Issue 21's targets, each with the measured figure and whether it is met."""
    found: list[Target] = []
    for run in runs:
        by_group = {row.group: row for row in figures[run.name]}
        total = by_group[ALL]
        if not total.rounds:
            found.append(Target(run.name, "figures", "no round with every agent busy", False))
            continue
        live, legacy = total.mae["live"], total.mae["legacy"]
        if run.model is not None:
            found.append(
                Target(
                    run.name,
                    f"MAE at most {MAE_FACTOR}x the least possible, overall",
                    f"{live:.0f} s / {total.yardstick_mae or 0:.0f} s = {_f(total.ratio)}",
                    total.ratio is not None and total.ratio <= MAE_FACTOR,
                )
            )
            front = [by_group[g] for g in GROUPS[:5] if g in by_group and by_group[g].rounds]
            worst = max(front, key=lambda row: row.ratio or 0.0, default=None)
            found.append(
                Target(
                    run.name,
                    f"MAE at most {MAE_FACTOR}x the least possible at positions 1-5",
                    "–"
                    if worst is None
                    else ", ".join(f"{row.group}: {_f(row.ratio)}" for row in front),
                    worst is not None and all((r.ratio or 0.0) <= MAE_FACTOR for r in front),
                )
            )
            coverage = total.coverage or 0.0
            found.append(
                Target(
                    run.name,
                    f"the range holds for {COVERAGE[0]:.0%}-{COVERAGE[1]:.0%}",
                    _pct(total.coverage),
                    COVERAGE[0] <= coverage <= COVERAGE[1],
                )
            )
            found.append(
                Target(
                    run.name,
                    f"the range at most {WIDTH_FACTOR}x the 10th-90th percentile width",
                    f"{total.width or 0:.0f} s / {total.reference_width or 0:.0f} s = "
                    f"{_f(total.width_ratio)}",
                    total.width_ratio is not None and total.width_ratio <= WIDTH_FACTOR,
                )
            )
        else:
            found.append(
                Target(
                    run.name,
                    "MAE no worse than legacy",
                    f"live {live:.0f} s, legacy {legacy:.0f} s",
                    live <= legacy,
                )
            )
            found.append(
                Target(
                    run.name,
                    f"MAE at most {MAE_FACTOR}x the position-only predictor's",
                    f"{live:.0f} s / {total.yardstick_mae or 0:.0f} s = {_f(total.ratio)}",
                    total.ratio is not None and total.ratio <= MAE_FACTOR,
                )
            )
    rises = sum(run.position_rises for run in runs)
    heard = sum(run.positions_heard for run in runs)
    off = [run for run in runs if run.rule_off_rises is not None]
    found.append(
        Target(
            ALL,
            "no position heard higher than the caller's previous one",
            f"{rises} of {heard} positions heard (with `position_only_down: false` on "
            f"{len(off)} scenarios: {sum(run.rule_off_rises or 0 for run in off)})",
            rises == 0,
        )
    )
    missing = [run for run in runs if run.unrecorded]
    found.append(
        Target(
            ALL,
            "no caller who hung up after an agent was assigned missing from the abandonment history",
            f"{sum(run.unrecorded for run in runs)}"
            + (
                " (" + ", ".join(f"{r.name} {r.unrecorded}" for r in missing) + ")"
                if missing
                else ""
            ),
            not missing,
        )
    )
    return found


# --- what the figures say -----------------------------------------------------------------------


def _spread_words(values: Sequence[tuple[str, float]], digits: int = 2) -> str:
    """ "1.05 (steady) to 1.62 (peak)", or the one value."""
    ordered = sorted(values, key=lambda item: item[1])
    (a, low), (b, high) = ordered[0], ordered[-1]
    if a == b:
        return f"{low:.{digits}f} ({a})"
    return f"{low:.{digits}f} ({a}) to {high:.{digits}f} ({b})"


def reading(
    runs: Sequence[ScenarioRun], figures: Mapping[str, Sequence[Row]], checks: Sequence[Target]
) -> list[str]:
    """What dominates the error and what to try next, worded from this run's figures only."""
    totals = {run.name: {r.group: r for r in figures[run.name]} for run in runs}
    modelled = [run.name for run in runs if run.model is not None and totals[run.name][ALL].rounds]
    other = [run.name for run in runs if run.model is None and totals[run.name][ALL].rounds]
    lines = ["## What the figures say, and what next", ""]

    def mae_ratio(name: str, estimator: str, group: str = ALL) -> float:
        row = totals[name][group]
        return row.mae[estimator] / (row.yardstick_mae or 1.0)

    if modelled:
        lines.append(
            f"- **Against the least possible ({len(modelled)} Erlang scenarios).** MAE over the "
            "least possible, overall: "
            + "; ".join(
                f"{e} {_spread_words([(n, mae_ratio(n, e)) for n in modelled])}" for e in ESTIMATORS
            )
            + "."
        )
        worst = [
            (name, row)
            for name in modelled
            for row in totals[name].values()
            if row.group != ALL and row.rounds and (row.ratio or 0.0) > MAE_FACTOR
        ]
        if worst:
            name, row = max(worst, key=lambda item: item[1].ratio or 0.0)
            told = "longer" if (row.bias or 0.0) > 0 else "shorter"
            lines.append(
                f"- **Where live is furthest from it.** {len(worst)} position groups of the Erlang "
                f"scenarios are above {MAE_FACTOR}x; the worst is {name} at position {row.group}: "
                f"{_f(row.ratio)}x, live telling on average {abs(row.bias or 0.0):.0f} s {told} "
                f"than the wait that followed (mean wait {row.mean_wait or 0:.0f} s)."
            )
        else:
            lines.append(
                f"- **Every position group** of the Erlang scenarios is within {MAE_FACTOR}x of "
                "the least possible."
            )
        coverage = [(n, totals[n][ALL].coverage or 0.0) for n in modelled]
        width = [(n, totals[n][ALL].width_ratio or 0.0) for n in modelled]
        model_coverage = [(n, totals[n][ALL].reference_coverage or 0.0) for n in modelled]
        lines.append(
            "- **The ranges** (live's, in seconds) hold for "
            + _spread_words([(n, 100 * v) for n, v in coverage], 0)
            + " % of waits, at "
            + _spread_words(width)
            + "x the width of the model's 10th-90th percentiles (which hold for "
            + _spread_words([(n, 100 * v) for n, v in model_coverage], 0)
            + " %: the model's check)."
        )
    heard = [
        (run.name, totals[run.name][ALL])
        for run in runs
        if totals[run.name][ALL].heard and totals[run.name][ALL].heard_width_ratio is not None
    ]
    if heard:
        lines.append(
            "- **As heard** (whole minutes), the ranges hold for "
            + _spread_words([(n, 100 * (r.heard_inside or 0.0)) for n, r in heard], 0)
            + " % of callers, at "
            + _spread_words([(n, r.heard_width_ratio or 0.0) for n, r in heard])
            + "x the 10th-90th percentile width."
        )
    if other:
        better = [n for n in other if totals[n][ALL].mae["live"] <= totals[n][ALL].mae["legacy"]]
        lines.append(
            f"- **Without a model ({len(other)} scenarios)**, live's MAE is "
            + _spread_words([(n, mae_ratio(n, "live")) for n in other])
            + "x the position-only predictor's (legacy: "
            + _spread_words([(n, mae_ratio(n, "legacy")) for n in other])
            + f"x); live is no worse than legacy in {len(better)} of {len(other)}"
            + (
                "."
                if len(better) == len(other)
                else f" (worse in {', '.join(n for n in other if n not in better)})."
            )
        )
    missed = [c for c in checks if not c.met]
    if missed:
        lines.append(
            f"- **Next:** {len(missed)} of {len(checks)} targets missed (the table above); "
            "start with "
            + "; ".join(f"{c.scenario}: {c.target} ({c.measured})" for c in missed[:3])
            + "."
        )
    else:
        lines.append(f"- **Next:** all {len(checks)} targets are met in this run.")
    return [*lines, ""]


# --- the document -------------------------------------------------------------------------------

TABLE_HEADER = (
    "| position | rounds | mean wait s | MAE live s | MAE legacy s | MAE formula s | {yardstick} s "
    "| live / {short} | live bias s | live range holds | live width / 10-90 | 10-90 holds "
    "| heard | heard holds | heard width / 10-90 |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def table_row(row: Row) -> str:
    mae = [_s(row.mae.get(e)) for e in ESTIMATORS]
    bias = "–" if row.bias is None else f"{row.bias:+.0f}"
    return (
        f"| {row.group} | {row.rounds} | {_s(row.mean_wait)} | {' | '.join(mae)} | "
        f"{_s(row.yardstick_mae)} | {_f(row.ratio)} | {bias} | {_pct(row.coverage)} | "
        f"{_f(row.width_ratio)} | {_pct(row.reference_coverage)} | {row.heard} | "
        f"{_pct(row.heard_inside)} | {_f(row.heard_width_ratio)} |"
    )


def model_words(model: Model | None) -> str:
    if model is None:
        return (
            "No model (not of the Erlang kind): the yardstick is the best position-only predictor, "
            "the run's own median wait per position, and the reference range its 10th-90th "
            "percentiles per position."
        )
    kind = "Erlang C (M/M/s)" if model.patience_mean is None else "Erlang A (M/M/s+M)"
    patience = "" if model.patience_mean is None else f", patience {model.patience_mean:.0f} s"
    return (
        f"{kind}: {model.agents} agents, service {model.service_mean:.1f} s (the talk, the "
        f"agent's whisper and connect {model.connect:.1f} s, as measured in the run; the connect "
        f"time is part of every wait){patience}. The yardstick is the least possible MAE (the "
        "model's median)."
    )


def report(
    runs: Sequence[ScenarioRun],
    figures: Mapping[str, Sequence[Row]],
    checks: Sequence[Target],
    command: str,
    commit: str,
    now: datetime,
) -> str:
    lines = [
        "# How right the announced waits are",
        "",
        f"Generated by `{command}` at commit {commit} on {now:%Y-%m-%d %H:%M} UTC; do not edit by "
        "hand (run it again).",
        "",
        "Every hold round of the load scenarios in `scenarios/waits/` carries three estimates made",
        "on the same line state: `live` (the shipped estimator, what callers hear), `legacy` (the",
        "`live` estimator before issue 21, `bench/waits_legacy.py`) and `formula`, and the wait",
        "that followed, from the round to the agent answering. The figures are over the rounds",
        "with every agent of the line busy and a caller who was answered; callers who gave up,",
        "asked for a callback or were still holding have no wait to measure.",
        "",
        "The yardstick: on scenarios of the Erlang kind (exponential talk, one stream of callers,",
        "no callbacks, a fixed team), the **least possible MAE**, that of the median of the wait's",
        "distribution for a caller with k = position - 1 callers ahead (`bench/waits_models.py`:",
        "Erlang(k+1, s mu) plus the connect time; with abandonment, Ibrahim and Whitt's QL",
        "predictor for a caller who stays, stages Exp(s mu + (i+1) theta)); elsewhere the best",
        "**position-only** predictor, the run's own median wait per position (in-sample). The",
        "reference range is the model's 10th-90th percentiles, else the run's per position.",
        "*Bias* is median told minus wait: positive, callers were answered sooner than told.",
        "*Heard* is the same for the ranges as callers heard them, in whole minutes (every",
        "estimate heard by a caller who was answered and heard a position, whatever the agents",
        "were doing).",
        "",
        "## Targets (issue 21)",
        "",
        "| scenario | target | measured | met |",
        "|---|---|---|---|",
        *[
            f"| {c.scenario} | {c.target} | {c.measured} | {'yes' if c.met else '**no**'} |"
            for c in checks
        ],
        "",
        *reading(runs, figures, checks),
        "![estimate against wait, and MAE ratio by position](../waits.png)",
        "",
        "Top: each dot is one round with every agent busy (the median told against the wait that",
        "followed); on the diagonal the wait was exactly as told. Bottom: live's MAE over the",
        "yardstick's, per position group and scenario.",
        "",
        "## By scenario",
        "",
    ]
    for run in runs:
        fates = ", ".join(f"{k} {v}" for k, v in sorted(run.fates.items())) or "–"
        short = "least" if run.model is not None else "position-only"
        yardstick = "least possible MAE" if run.model is not None else "position-only MAE"
        lines += [
            f"### {run.name}",
            "",
            f"{run.description}. `{run.file}`. Callers: {run.calls} ({fates}).",
            "",
            model_words(run.model),
            "",
            TABLE_HEADER.format(yardstick=yardstick, short=short),
            *[table_row(row) for row in figures[run.name]],
            "",
        ]
    return "\n".join(lines)


def as_json(
    runs: Sequence[ScenarioRun],
    figures: Mapping[str, Sequence[Row]],
    checks: Sequence[Target],
    commit: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "commit": commit,
        "at": now.isoformat(),
        "targets": [asdict(c) for c in checks],
        "scenarios": [
            {
                "name": run.name,
                "file": run.file,
                "description": run.description,
                "model": None if run.model is None else asdict(run.model),
                "calls": run.calls,
                "fates": dict(run.fates),
                "position_rises": run.position_rises,
                "rule_off_rises": run.rule_off_rises,
                "abandoned_after_assignment_unrecorded": run.unrecorded,
                "rows": [asdict(row) for row in figures[run.name]],
            }
            for run in runs
        ],
    }


def plot(runs: Sequence[ScenarioRun], figures: Mapping[str, Sequence[Row]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(2, len(ESTIMATORS))
    top = 0.0
    scatter = [fig.add_subplot(grid[0, i]) for i in range(len(ESTIMATORS))]
    for ax, estimator in zip(scatter, ESTIMATORS, strict=True):
        for kind, colour in (("Erlang scenarios", "tab:blue"), ("other scenarios", "tab:orange")):
            xs: list[float] = []
            ys: list[float] = []
            for run in runs:
                if (run.model is not None) != (kind == "Erlang scenarios"):
                    continue
                for r in comparable(run.rounds):
                    xs.append(r.estimates[estimator].median / 60)
                    ys.append((r.actual or 0.0) / 60)
            stride = max(1, len(xs) // 4000)  # readable, and the same points every run
            ax.scatter(xs[::stride], ys[::stride], s=4, alpha=0.3, color=colour, label=kind)
            top = max([top, *xs, *ys])
        ax.set_title(estimator)
        ax.set_xlabel("median told, minutes")
        ax.grid(True, alpha=0.3)
    for ax in scatter:
        ax.plot([0, top], [0, top], color="black", linewidth=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
    scatter[0].set_ylabel("wait that followed, minutes")
    scatter[0].legend(loc="upper left", fontsize=8, markerscale=3)
    ratio = fig.add_subplot(grid[1, :])
    for run in runs:
        points = [
            (row.group, row.ratio)
            for row in figures[run.name]
            if row.group != ALL and row.ratio is not None
        ]
        if points:
            style = "-" if run.model is not None else "--"
            ratio.plot(
                [GROUPS.index(g) for g, _ in points],
                [r or 0.0 for _, r in points],
                style,
                marker="o",
                label=run.name,
            )
    ratio.axhline(MAE_FACTOR, color="black", linewidth=0.8, linestyle=":")
    ratio.axhline(1.0, color="grey", linewidth=0.6)
    ratio.set_xticks(range(len(GROUPS)), GROUPS)
    ratio.set_xlabel("position")
    ratio.set_ylabel("live MAE / yardstick MAE")
    ratio.set_title("solid: Erlang scenarios (least possible); dashed: position-only")
    ratio.grid(True, alpha=0.3)
    ratio.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- running it ---------------------------------------------------------------------------------


def scenario_files() -> list[Path]:
    files = sorted(SCENARIOS.glob("*.yaml"))  # the rules copies are in rules/
    rank = {name: i for i, name in enumerate(ORIGINAL)}
    return sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def compared() -> dict[str, Estimator]:
    """`legacy` and `formula`, made at every hold round from the line state `live` was made from.
    Each says its range as it did: the queue's `wait_range` factors around its estimate."""

    def legacy(made: EstimateMade) -> WaitEstimate | None:
        seconds = legacy_estimate(
            made.place.position,
            made.place.priority,
            made.load.agents_available,
            made.load.busy_seconds,
            made.load.recent_talk_seconds,
            made.queue.default_handle_time,
            made.history,
        )
        if seconds is None:
            return None
        return formula_estimate(seconds, made.queue.wait_range, made.place.position)

    def formula(made: EstimateMade) -> WaitEstimate | None:
        queue = made.queue.model_copy(update={"wait_estimate": "formula"})
        return line_estimate(queue, made.place.position, made.place.priority, made.load, None)

    return {"legacy": legacy, "formula": formula}


def run_all(files: Sequence[Path]) -> list[ScenarioRun]:
    """Each scenario once with `live`; the original five again without the position rule."""
    from ivr.simulator.load import load_scenario, run_load

    runs = []
    for path in files:
        scenario = load_scenario(path)
        print(f"bench.waits: {scenario.name} ...", file=sys.stderr, flush=True)
        result = run_load(scenario, RULES, PROMPTS, "live", compare=compared())
        off = None
        if scenario.name in ORIGINAL:
            rule_off = {"position_only_down": False}
            off = run_load(scenario, RULES, PROMPTS, "live", rule_off).position_rises
        runs.append(scenario_run(result, off))
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated scenario names: run these and print their targets, writing nothing",
    )
    args = parser.parse_args(argv)
    files = scenario_files()
    if args.only:
        names = set(args.only.split(","))
        files = [f for f in files if f.stem in names]
    runs = run_all(files)
    figures = {run.name: rows(run) for run in runs}
    checks = targets(runs, figures)
    if args.only:
        for c in checks:
            print(f"{'met' if c.met else 'MISSED'}: {c.scenario}: {c.target}: {c.measured}")
        return
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    now = datetime.now(UTC)
    RESULTS.write_text(
        json.dumps(as_json(runs, figures, checks, commit, now), indent=1, ensure_ascii=False)
    )
    REPORT.write_text(report(runs, figures, checks, ".venv/bin/python -m bench.waits", commit, now))
    plot(runs, figures, PLOT)
    print(
        f"wrote {REPORT.relative_to(ROOT)}, {PLOT.relative_to(ROOT)}, {RESULTS.relative_to(ROOT)}"
    )
    for c in checks:
        print(f"{'met' if c.met else 'MISSED'}: {c.scenario}: {c.target}: {c.measured}")


if __name__ == "__main__":
    main()
