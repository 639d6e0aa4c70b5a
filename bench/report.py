"""Figures of a benchmark run: latency percentiles, throughput, errors, ratios to the floor.

Outputs are plain data (the JSON file), a markdown table and a PNG plot of the latencies.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadgen import KINDS, CallRecord, PhaseRun

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


CALL_FIGURES = ("server_p50_ms", "server_p99_ms", "wall_p50_s", "wall_p99_s")


def call_stats(calls: list[CallRecord]) -> dict[str, Any]:
    """Figures of whole calls: p50/p99 of each call's server time (the sum of its webhooks'
    latencies) and of its wall time (pauses included), failed calls (a webhook failed), calls
    that reached the hold, and those whose first hold answer told no place in line."""
    server = sorted(c.server_seconds for c in calls)
    wall = sorted(c.wall_seconds for c in calls)
    holding = [c for c in calls if c.position_told is not None]
    return {
        "calls": len(calls),
        "server_p50_ms": round(percentile(server, 0.50) * 1000, 2),
        "server_p99_ms": round(percentile(server, 0.99) * 1000, 2),
        "wall_p50_s": round(percentile(wall, 0.50), 2),
        "wall_p99_s": round(percentile(wall, 0.99), 2),
        "failed_calls": sum(1 for c in calls if c.errors),
        "reached_hold": len(holding),
        "no_position": sum(1 for c in holding if not c.position_told),
    }


def round_ratios(app_runs: list[PhaseRun], floor_runs: list[PhaseRun]) -> list[dict[str, Any]]:
    """Per round (the runs in the order they were made), app / floor of the p99 of every webhook,
    of whole calls' server time, and of requests/s."""
    rounds = []
    for number, (app, floor) in enumerate(zip(app_runs, floor_runs, strict=False), start=1):
        a, f = kind_stats([app], "all"), kind_stats([floor], "all")
        ca, cf = call_stats(app.calls), call_stats(floor.calls)
        rounds.append(
            {
                "round": number,
                "webhook_p99": ratio(a["p99_ms"], f["p99_ms"]),
                "call_p99": ratio(ca["server_p99_ms"], cf["server_p99_ms"]),
                "rps": ratio(a["rps"], f["rps"]),
            }
        )
    return rounds


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
    app_calls = call_stats([c for run in app_runs for c in run.calls])
    floor_calls = call_stats([c for run in floor_runs for c in run.calls])
    summary["calls"] = {
        "app": app_calls,
        "floor": floor_calls,
        "ratio": {name: ratio(app_calls[name], floor_calls[name]) for name in CALL_FIGURES},
    }
    summary["rounds"] = round_ratios(app_runs, floor_runs)
    return summary


def configurations_summary(
    runs: dict[str, list[PhaseRun]], records: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """One phase, per configuration (app direct, behind nginx, ..., floor): the figures of all
    webhooks over all rounds, their ratio to the floor's, and the tickets and instances of the
    run records (`records`: the JSON's runs of that phase and configuration)."""
    stats = {name: kind_stats(name_runs, "all") for name, name_runs in runs.items()}
    floor = stats.get("floor")
    summary: dict[str, Any] = {}
    for name, figures in stats.items():
        row: dict[str, Any] = {"all": figures}
        if floor is not None:
            row["ratio_to_floor"] = {f: ratio(figures[f], floor[f]) for f in FIGURES}
        mine = records.get(name, [])
        row["calls"] = sum(r["calls"] for r in mine)
        if any("tickets" in r for r in mine):
            row["tickets"] = {
                key: sum(r["tickets"][key] for r in mine) for key in ("written", "complete")
            }
        served: Counter[str] = Counter()
        for r in mine:
            served.update(r.get("served_by", {}))
        if served:
            row["served_by"] = dict(sorted(served.items()))
        summary[name] = row
    return summary


def scaling(summary: dict[str, Any]) -> dict[str, float | None]:
    """From a phase's configurations: `throughput` = two instances' requests/s over one instance's,
    both behind nginx (the scaling), and what the proxy alone costs (one instance behind nginx over
    direct), for requests/s and the p50 and p99 latencies."""

    def of(name: str, figure: str) -> float:
        return float(summary[name]["all"][figure]) if name in summary else 0.0

    return {
        "throughput": ratio(of("app-2-nginx", "rps"), of("app-nginx", "rps")),
        "p50": ratio(of("app-2-nginx", "p50_ms"), of("app-nginx", "p50_ms")),
        "p99": ratio(of("app-2-nginx", "p99_ms"), of("app-nginx", "p99_ms")),
        "proxy_throughput": ratio(of("app-nginx", "rps"), of("app", "rps")),
        "proxy_p50": ratio(of("app-nginx", "p50_ms"), of("app", "p50_ms")),
        "proxy_p99": ratio(of("app-nginx", "p99_ms"), of("app", "p99_ms")),
    }


def instances_lines(results: dict[str, Any]) -> list[str]:
    """The `--instances 2` section: a table of configurations per phase, and the scaling."""
    section = results.get("instances")
    if not section:
        return []
    labels = {c["name"]: c["label"] for c in section["configurations"]}
    lines = [
        "",
        "### One instance and two, behind nginx",
        "",
        f"Each instance: gunicorn {' '.join(section['gunicorn_per_instance'])}; one `ivr worker` "
        f"for all; nginx with worker_processes {section.get('nginx', {}).get('worker_processes', 1)}, "
        "no upstream keep-alive (docs/operators/instances.md's configuration). "
        "Cells: figure (×ratio to the floor); latencies in ms over all webhooks.",
        "",
        "| phase | configuration | p50 | p99 | requests/s | errors | complete tickets / calls "
        "| webhooks per instance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in results["phases"]:
        rows = section["summary"].get(phase["name"], {})
        for name, row in rows.items():
            figures = row["all"]
            ratios = {} if name == "floor" else row.get("ratio_to_floor", {})
            tickets = row.get("tickets")
            ticket_cell = f"{tickets['complete']} / {row['calls']}" if tickets else "—"
            served = ", ".join(f"{k}: {v}" for k, v in row.get("served_by", {}).items()) or "—"
            lines.append(
                f"| {phase['label']} | {labels.get(name, name)} | "
                f"{_with_ratio(_ms(figures['p50_ms']), ratios.get('p50_ms'))} | "
                f"{_with_ratio(_ms(figures['p99_ms']), ratios.get('p99_ms'))} | "
                f"{_with_ratio(format(figures['rps'], 'g'), ratios.get('rps'))} | {figures['errors']} | "
                f"{ticket_cell} | {served} |"
            )
    lines += [
        "",
        "Scaling = two instances / one instance, both behind nginx; proxy = one instance behind "
        "nginx / direct.",
        "",
        "| phase | scaling: requests/s | p50 | p99 | proxy: requests/s | p50 | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in results["phases"]:
        sc = section["scaling"].get(phase["name"], {})
        keys = ("throughput", "p50", "p99", "proxy_throughput", "proxy_p50", "proxy_p99")
        lines.append(f"| {phase['label']} | " + " | ".join(_ratio(sc.get(k)) for k in keys) + " |")
    return lines


def _with_ratio(shown: str, value: float | None) -> str:
    return shown if value is None else f"{shown} (×{value:g})"


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
    serving = (
        f"`{settings['app_command']}` and `{settings['worker_command']}`, Redis with "
        f"{' and '.join(settings['redis'])}, the floor under gunicorn {' '.join(settings['gunicorn'])}"
        if "app_command" in settings
        else f"gunicorn {' '.join(settings['gunicorn'])}"
    )
    lines = [
        f"Run {results['started_at']} ({'quick' if settings['quick'] else 'full'}, "
        f"{results['wall_seconds']:.0f} s, commit {results['commit']}{results['dirty']}): "
        f"{serving}; {settings.get('connections', 'keep-alive, one per call')}, "
        + (
            "a caller's pace between a paced call's webhooks (--caller-pace); "
            if settings.get("caller_pace")
            else f"{settings['pause']:g} s (±20 %) between a paced call's webhooks; "
        )
        + f"{settings['rounds']} round(s) of {settings['seconds']:g} s per phase and target, "
        "interleaved." + (f" Note: {settings['note']}" if settings.get("note") else ""),
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
        lines += ["", "### Whole calls", "", *calls_table(results)]
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
    lines += instances_lines(results)
    lines += scale_lines(results)
    lines += [
        "",
        "### Tickets (app)",
        "",
        "| round | phase | calls placed | tickets | complete | ended | menu path | outcome | waited |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if not any(run["target"] != "floor" for run in results["runs"]):
        lines[-2:] = ["no HTTP phase run"]
    for run in results["runs"]:
        if run["target"] == "floor":
            continue
        t = run["tickets"]
        where = "" if run["target"] == "app" else f" ({run['target']})"
        lines.append(
            f"| {run['round']} | {run['phase']}{where} | {run['calls']} | {t['written']} | "
            f"{t['complete']} | {t['ended']} | {t['menu_path']} | {t['outcome']} | "
            f"{t['waited_seconds']:g} s |"
        )
    lines += ["", "### Micro-benchmarks", ""]
    if not results["micro"]:
        lines.append("not run (`--only` another part)")
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


def _call_cell(calls: dict[str, Any], name: str) -> str:
    a, f = calls["app"][name], calls["floor"][name]
    shown = (_ms(a), _ms(f)) if name.endswith("_ms") else (f"{a:g}", f"{f:g}")
    return f"{shown[0]} / {shown[1]} ({_ratio(calls['ratio'][name])})"


def calls_table(results: dict[str, Any]) -> list[str]:
    """One row per phase: whole calls' server time (the sum of their webhooks' latencies) and
    wall time, app / floor (×ratio), callers on hold told no place, and per round the p99 ratios."""
    lines = [
        "| phase | calls | server p50 ms | server p99 ms | wall p50 s | wall p99 s "
        "| failed calls | holding without a position | per round: webhook p99, call p99, requests/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in results["phases"]:
        summary = results["summary"][phase["name"]]
        calls = summary.get("calls")
        if calls is None:
            continue
        app, floor = calls["app"], calls["floor"]

        rounds = "; ".join(
            f"{r['round']}: {_ratio(r['webhook_p99'])}, {_ratio(r['call_p99'])}, {_ratio(r['rps'])}"
            for r in summary.get("rounds", [])
        )
        lines.append(
            f"| {phase['label']} | {app['calls']} / {floor['calls']} | "
            f"{_call_cell(calls, 'server_p50_ms')} | {_call_cell(calls, 'server_p99_ms')} | "
            f"{_call_cell(calls, 'wall_p50_s')} | {_call_cell(calls, 'wall_p99_s')} | "
            f"{app['failed_calls']} / {floor['failed_calls']} | "
            f"{app['no_position']} of {app['reached_hold']} | {rounds} |"
        )
    return lines


def _kind_row(label: str, stats: dict[str, Any], calls: dict[str, Any], redis_errors: float) -> str:
    cells = " | ".join(_ms(stats[kind]["p99_ms"]) for kind in ("join", "hold", "all"))
    return (
        f"| {label} | {calls['calls']} | {cells} | {_ms(calls['server_p99_ms'])} | "
        f"{stats['all']['rps']:g} | {stats['all']['errors']} | {redis_errors:g} | "
        f"{calls['no_position']} of {calls['reached_hold']} |"
    )


def scale_lines(results: dict[str, Any]) -> list[str]:
    """The scale cases: per case and variant the p99 of joining, holding, every webhook and whole
    calls, Redis errors and callers told no place; the agents cases' ratios; the soak's memory."""
    scaled = results.get("scale") or {}
    if not scaled:
        return []
    lines = [
        "",
        "### Scale cases",
        "",
        "p99 in ms; app only (no floor); Redis errors: `ivr_redis_errors_total` counted during the run.",
        "",
        "| case | calls | join p99 | hold p99 | all p99 | whole calls p99 | requests/s | errors "
        "| Redis errors | holding without a position |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, found in scaled.items():
        if "variants" in found:
            for which in ("baseline", "scaled"):
                v = found["variants"][which]
                label = f"{case}: {v['agents']} agents"
                lines.append(_kind_row(label, v["stats"], v["calls"], v["redis_errors"]))
        elif "stats" in found:
            lines.append(_kind_row(case, found["stats"], found["calls"], found["redis_errors"]))
    for case, found in scaled.items():
        if "comparison" not in found:
            continue
        c = found["comparison"]
        lines += [
            "",
            f"{case} ({found['label']}): p99 with {c['agents']} / with {c['baseline_agents']}: "
            + ", ".join(
                f"{kind} {_ratio(c[kind]['ratio'])}" for kind in ("join", "hold", "all", "calls")
            )
            + "; agents at the end of each run (scaled): "
            + "; ".join(
                ", ".join(f"{k} {n}" for k, n in sorted(counted.items()))
                for counted in found["variants"]["scaled"]["agents_at_end"]
            ),
        ]
    soak = scaled.get("soak")
    if soak:
        first, last = soak["windows"]["first"], soak["windows"]["last"]
        lines += [
            "",
            f"#### Soak: {soak['label']}",
            "",
            f"RSS sampled every {soak['sample_seconds']:g} s; settled = the first sample at or "
            f"after {soak['settled_seconds']:g} s. Every webhook, first {soak['settled_seconds']:g} "
            f"s: p50 {_ms(first['p50_ms'])} ms, p99 {_ms(first['p99_ms'])} ms; last as long: p50 "
            f"{_ms(last['p50_ms'])} ms, p99 {_ms(last['p99_ms'])} ms. Redis errors "
            f"{soak['redis_errors']:g}; {soak['calls']['no_position']} of "
            f"{soak['calls']['reached_hold']} holding callers told no place.",
            "",
            "| process | settled MiB | at | last MiB | at | last / settled |",
            "|---|---|---|---|---|---|",
        ]
        for name, g in soak["rss"].items():
            lines.append(
                f"| {name} | {g['settled_mib']:g} | {g['settled_at_seconds']} s | "
                f"{g['last_mib']:g} | {g['last_at_seconds']} s | {_ratio(g['ratio'])} |"
            )
    return lines


def plot_soak(results: dict[str, Any], path: Path) -> None:
    """The soak's RSS of every process over time (MiB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    soak = results["scale"]["soak"]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    names = list(soak["rss"])
    for name in names:
        points = [
            (s["seconds"], s["rss_kib"][name] / 1024)
            for s in soak["samples"]
            if name in s["rss_kib"]
        ]
        axis.plot([p[0] / 60 for p in points], [p[1] for p in points], label=name)
    axis.axvline(soak["settled_seconds"] / 60, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("minutes into the soak")
    axis.set_ylabel("RSS (MiB)")
    axis.set_title(f"soak: {soak['label']} ({results['started_at']})", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    section = results.get("instances")
    rows = 2 if section else 1
    figure, axes = plt.subplots(
        rows, len(phases), figsize=(4.2 * len(phases), 4.4 * rows), squeeze=False, sharey="row"
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
    if section:
        _plot_instances(section, phases, axes[1])
    figure.suptitle(
        f"ivr (app) vs floor: all webhooks of whole calls, ×ratio app/floor "
        f"({results['started_at']})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


CONFIGURATION_COLORS = {
    "app": "tab:red",
    "app-nginx": "tab:orange",
    "app-2-nginx": "tab:green",
    "floor": "tab:blue",
}


def _plot_instances(section: dict[str, Any], phases: list[dict[str, Any]], axes: Any) -> None:
    """The second row: p50 and p99 per configuration, requests/s and scaling in the title."""
    from matplotlib.ticker import FuncFormatter

    labels = {c["name"]: c["label"] for c in section["configurations"]}
    names = ("p50_ms", "p99_ms")
    highest = 1.0
    for axis, phase in zip(axes, phases, strict=True):
        rows = section["summary"].get(phase["name"], {})
        width = 0.8 / max(1, len(rows))
        for offset, (config, row) in enumerate(rows.items()):
            values = [max(row["all"][name], 0.01) for name in names]
            highest = max(highest, *values)
            xs = [i + (offset - (len(rows) - 1) / 2) * width for i in range(len(names))]
            shown = f"{labels.get(config, config)}: {row['all']['rps']:g} req/s"
            color = CONFIGURATION_COLORS.get(config)
            axis.bar(xs, values, width, label=shown, color=color)
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_xticks(range(len(names)), [n.removesuffix("_ms") for n in names])
        scale = section["scaling"].get(phase["name"], {}).get("throughput")
        scaled = "—" if scale is None else f"×{scale:g}"
        axis.set_title(f"{phase['label']}\nscaling 1 → 2 instances: {scaled}", fontsize=9)
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.legend(loc="upper left", fontsize=7)
    axes[0].set_ylim(0.5, highest * 6)
    axes[0].set_ylabel("latency per webhook (ms, log scale)")
