"""What the simulator prints: a transcript a person can read, or one JSON record per line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

from ivr.simulator.engine import Record

_LABELS = {
    "say": "hears",
    "play": "music",
    "pause": "pause",
    "press": "presses",
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
        "call_status": ticket.call_status,
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
    for name in ("agent", "satisfaction", "callback_number", "recording_url"):
        if fields[name] is not None:
            parts.append(f"{name.replace('_', ' ')} {fields[name]}")
    return ", ".join(parts)


def ticket_record(call: str, fields: dict[str, Any]) -> str:
    return json.dumps({"kind": "ticket", "call": call, **fields}, ensure_ascii=False)
