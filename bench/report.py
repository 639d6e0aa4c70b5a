"""Figures of a benchmark run: latency percentiles, throughput, errors, ratios to the floor.

Outputs are plain data (the JSON file), a markdown table and a PNG plot of the latencies.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadgen import KINDS, PhaseRun

ROWS = (*KINDS, "all")
FIGURES = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "rps", "errors")


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def kind_stats(runs: list[PhaseRun], kind: str) -> dict[str, Any]:
    """Figures of one webhook kind ("all" for every request) over runs of one phase and target.

    Latency percentiles count every request, errors included (a timeout counts as 15 s);
    requests/s is every request over the run's time, from its start until its last call ended.
    """
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    seconds = 0.0
    for run in runs:
        seconds += run.wall_seconds
        for sample in run.samples:
            if kind != "all" and sample.kind != kind:
                continue
            latencies.append(sample.seconds)
            if sample.error:
                errors[sample.error] += 1
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 2),
        "rps": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
    }


def ratio(app: float, floor: float) -> float | None:
    """app / floor, None when the floor's figure is 0."""
    return round(app / floor, 2) if floor else None


def phase_summary(app_runs: list[PhaseRun], floor_runs: list[PhaseRun]) -> dict[str, Any]:
    """Per kind, the app's and the floor's figures and their ratio, over all rounds."""
    summary: dict[str, Any] = {}
    for kind in ROWS:
        app, floor = kind_stats(app_runs, kind), kind_stats(floor_runs, kind)
        summary[kind] = {
            "app": app,
            "floor": floor,
            "ratio": {name: ratio(app[name], floor[name]) for name in FIGURES},
        }
    return summary


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"×{value:g}"


def _cell(row: dict[str, Any], name: str) -> str:
    app, floor = row["app"][name], row["floor"][name]
    if name == "errors":
        return f"{app} / {floor}"
    shown = (f"{app:g}", f"{floor:g}") if name == "rps" else (_ms(app), _ms(floor))
    return f"{shown[0]} / {shown[1]} ({_ratio(row['ratio'][name])})"


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown: targets, one table per phase, tickets, micro-benchmarks."""
    settings = results["settings"]
    lines = [
        f"Run {results['started_at']} ({'quick' if settings['quick'] else 'full'}, "
        f"{results['wall_seconds']:.0f} s, commit {results['commit']}{results['dirty']}): "
        f"gunicorn {' '.join(settings['gunicorn'])}, {settings['rounds']} round(s) of "
        f"{settings['seconds']:g} s per phase and target, app and floor interleaved."
        + (f" Note: {settings['note']}" if settings.get("note") else ""),
        "",
        "### Targets (reported, not asserted)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    if not results["targets"]:
        lines[-2:] = ["none measured (no HTTP phases)"]
    for target in results["targets"]:
        met = {True: "yes", False: "**no**", None: "—"}[target["met"]]
        lines.append(f"| {target['name']} | {target['measured']} | {met} |")
    if results["phases"]:
        lines += ["", "### All webhooks of whole calls", "", *summary_table(results)]
    for phase in results["phases"]:
        summary = results["summary"][phase["name"]]
        lines += [
            "",
            f"### {phase['label']}",
            "",
            "app / floor (×ratio); latencies in ms",
            "",
            "| kind | p50 | p95 | p99 | max | requests/s | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind in ROWS:
            cells = " | ".join(_cell(summary[kind], name) for name in FIGURES)
            label = f"**{kind}**" if kind == "all" else kind
            lines.append(f"| {label} | {cells} |")
        errors = summary["all"]["app"]["error_kinds"] | {
            f"floor {k}": v for k, v in summary["all"]["floor"]["error_kinds"].items()
        }
        if errors:
            lines += ["", "Errors: " + ", ".join(f"{k}: {v}" for k, v in errors.items())]
    lines += [
        "",
        "### Tickets (app)",
        "",
        "| round | phase | calls placed | tickets | complete | ended | menu path | outcome | waited |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if not results["phases"]:
        lines[-2:] = ["HTTP phases not run (`--only micro`)"]
    for run in results["runs"]:
        if run["target"] != "app":
            continue
        t = run["tickets"]
        lines.append(
            f"| {run['round']} | {run['phase']} | {run['calls']} | {t['written']} | "
            f"{t['complete']} | {t['ended']} | {t['menu_path']} | {t['outcome']} | "
            f"{t['waited_seconds']:g} s |"
        )
    lines += ["", "### Micro-benchmarks", ""]
    if not results["micro"]:
        lines.append("not run (`--only http`)")
    for name, result in results["micro"].items():
        lines += [f"**{name}**", "", *_micro_lines(result), ""]
    return "\n".join(lines).rstrip() + "\n"


def summary_table(results: dict[str, Any]) -> list[str]:
    """One row per phase: every webhook's figures, app / floor (×ratio), and the app's tickets."""
    lines = [
        "| phase | p50 ms | p95 ms | p99 ms | max ms | requests/s | errors | complete tickets / calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in results["phases"]:
        row = results["summary"][phase["name"]]["all"]
        runs = [r for r in results["runs"] if r["phase"] == phase["name"] and r["target"] == "app"]
        tickets = sum(r["tickets"]["complete"] for r in runs)
        calls = sum(r["calls"] for r in runs)
        cells = " | ".join(_cell(row, name) for name in FIGURES)
        lines.append(f"| {phase['label']} | {cells} | {tickets} / {calls} |")
    return lines


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        pairs: list[tuple[str, Any]] = []
        for key, inner in value.items():
            pairs += _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return pairs
    return [(prefix, value)]


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _micro_lines(result: dict[str, Any]) -> list[str]:
    """A micro-benchmark's result as a two-column table (its shape is the module's own)."""
    if "skipped" in result:
        return [f"not run: {result['skipped']}"]
    if "error" in result:
        return [f"failed: {result['error']}"]
    pairs = _flatten(result.get("result", {}))
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {key} | {_value(value)} |" for key, value in pairs[:200]]
    if len(pairs) > 200:
        lines.append(f"| … | {len(pairs) - 200} more in the JSON |")
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    """Per phase, p50/p95/p99/max of all webhooks, app against floor, on one log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    phases = results["phases"]
    figure, axes = plt.subplots(
        1, len(phases), figsize=(4.2 * len(phases), 4.4), squeeze=False, sharey=True
    )
    names = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    width = 0.38
    highest = 1.0
    for axis, phase in zip(axes[0], phases, strict=True):
        row = results["summary"][phase["name"]]["all"]
        for offset, (who, color) in enumerate((("app", "tab:red"), ("floor", "tab:blue"))):
            values = [max(row[who][name], 0.01) for name in names]
            highest = max(highest, *values)
            xs = [i + (offset - 0.5) * width for i in range(len(names))]
            axis.bar(xs, values, width, label=who, color=color)
        for i, name in enumerate(names):
            top = max(row["app"][name], row["floor"][name], 0.01)
            value = row["ratio"][name]
            text = "—" if value is None else f"×{value:.1f}"
            axis.annotate(text, (i, top * 1.08), ha="center", va="bottom", fontsize=9)
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_xticks(range(len(names)), [n.removesuffix("_ms") for n in names])
        axis.set_title(phase["label"], fontsize=10)
        axis.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylim(0.5, highest * 3)
    axes[0][0].set_ylabel("latency per webhook (ms, log scale)")
    axes[0][0].legend(loc="upper left")
    figure.suptitle(
        f"ivr (app) vs floor: all webhooks of whole calls, ×ratio app/floor "
        f"({results['started_at']})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
