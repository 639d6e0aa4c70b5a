"""What the simulator prints: a transcript a person can read, or one JSON record per line."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from ivr.simulator.engine import Record

_LABELS = {
    "say": "hears",
    "play": "music",
    "pause": "pause",
    "press": "presses",
    "speech": "says",
    "unheard": "unheard",
    "silence": "silence",
    "wait": "waits",
    "queue": "queue",
    "position": "position",
    "record": "records",
    "dial": "dials",
    "whisper": "whisper",
    "agent": "agent",
    "redirect": "moved",
    "outbound": "callback",
    "hangup": "hang-up",
    "error": "ERROR",
    "request": "request",
    "ticket": "ticket",
    "status": "status",
}


def human_line(record: Record) -> str:
    """One transcript line: time, what happened, and for speech the language and voice."""
    label = _LABELS.get(record.kind, record.kind)
    text = record.text
    if record.kind == "say":
        text = f'{record.data.get("language")} {record.data.get("voice")}: "{text}"'
    return f"{record.at:8.1f}s  {record.call[-6:]}  {label:<9} {text}"


def printer(out: TextIO, as_json: bool, verbose: bool = False) -> Callable[[Record], None]:
    """A callback printing each record as it happens."""

    def emit(record: Record) -> None:
        if record.kind == "request" and not verbose and not as_json:
            return
        print(record.as_json() if as_json else human_line(record), file=out, flush=True)

    return emit


def ticket_fields(ticket: Any) -> dict[str, Any]:
    """The ticket as plain values, for printing and for scenario expectations."""
    return {
        "reference": ticket.reference,
        "caller": ticket.caller,
        "language": ticket.language,
        "menu_path": list(ticket.menu_path or []),
        "issue": ticket.issue,
        "queue": ticket.queue,
        "team": ticket.team,
        "outcome": str(ticket.outcome) if ticket.outcome else None,
        "wait_seconds": ticket.wait_seconds,
        "agent": ticket.agent,
        "satisfaction": ticket.satisfaction,
        "recording_url": ticket.recording_url,
        "callback_number": ticket.callback_number,
        "callback_code": ticket.callback_code,
        "call_status": ticket.call_status,
        "account": ticket.account,
        "verified_by": ticket.verified_by,
        "locked": ticket.locked_at is not None,
    }


def ticket_line(fields: dict[str, Any]) -> str:
    path = " > ".join(fields["menu_path"]) or "-"
    parts = [
        f"ticket {fields['reference']}",
        f"language {fields['language'] or '-'}",
        f"path {path}",
        f"issue {fields['issue'] or '-'}",
        f"queue {fields['queue'] or '-'}",
        f"outcome {fields['outcome'] or '-'}",
    ]
    if fields["wait_seconds"] is not None:
        parts.append(f"waited {fields['wait_seconds']} s")
    for name in ("agent", "satisfaction", "callback_number", "recording_url", "account"):
        if fields[name] is not None:
            parts.append(f"{name.replace('_', ' ')} {fields[name]}")
    if fields["verified_by"]:
        parts.append(f"verified by a code to the {fields['verified_by']}")
    if fields["locked"]:
        parts.append("account locked")
    return ", ".join(parts)


def ticket_record(call: str, fields: dict[str, Any]) -> str:
    return json.dumps({"kind": "ticket", "call": call, **fields}, ensure_ascii=False)


def summary_of(calls: list[tuple[str, dict[str, Any] | None, list[Record]]]) -> dict[str, Any]:
    """The `--calls` breakdown: outcomes overall, by caller script and by queue; waits; and how many
    callers a full queue (`max_length`) turned away, whatever they did next.

    Each call is (its script, its ticket's fields or None, its records). Outcomes are the tickets':
    a caller who heard a self-service answer and hung up is `self_served`, not abandoned."""
    outcomes: Counter[str] = Counter()
    by_script: dict[str, Counter[str]] = {}
    by_queue: Counter[str] = Counter()
    waits: list[int] = []
    turned_away = 0
    for script, fields, records in calls:
        outcome = (fields or {}).get("outcome") or "no ticket"
        outcomes[outcome] += 1
        by_script.setdefault(script, Counter())[outcome] += 1
        if fields and fields["queue"]:
            by_queue[fields["queue"]] += 1
        if fields and fields["wait_seconds"] is not None:
            waits.append(int(fields["wait_seconds"]))
        if any(r.kind == "say" and r.data.get("prompt") == "queue_full" for r in records):
            turned_away += 1
    return {
        "outcomes": dict(outcomes),
        "by_script": {script: dict(counts) for script, counts in by_script.items()},
        "by_queue": dict(by_queue),
        "wait_seconds": _wait_statistics(waits),
        "turned_away_queue_full": turned_away,
    }


def _wait_statistics(waits: list[int]) -> dict[str, float | int | None]:
    if not waits:
        return {"count": 0, "mean": None, "median": None, "max": None}
    return {
        "count": len(waits),
        "mean": round(statistics.fmean(waits), 1),
        "median": statistics.median(waits),
        "max": max(waits),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The breakdown for a person: one line per script and per queue, then the waits."""
    lines = []
    for script, counts in summary["by_script"].items():
        lines.append(
            f"  script {script}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    queues = ", ".join(f"{q} {n}" for q, n in sorted(summary["by_queue"].items())) or "-"
    lines.append(f"by queue: {queues}")
    wait = summary["wait_seconds"]
    if wait["count"]:
        lines.append(
            f"waits: {wait['count']} callers, mean {wait['mean']} s, median {wait['median']} s, "
            f"max {wait['max']} s"
        )
    else:
        lines.append("waits: -")
    lines.append(f"turned away (queue full): {summary['turned_away_queue_full']}")
    return lines
