"""What the simulator's commands share: reading a time the way QA writes it, and a call's ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytz

from ivr.simulator.report import ticket_fields


def parse_when(text: str) -> datetime:
    """'2026-12-25T09:00+01:00', '2026-12-25T09:00Z', or '2026-12-25 09:00 Europe/Berlin'."""
    text = text.strip()
    zone = None
    if (" " in text and "/" in text.rsplit(" ", 1)[1]) or text.rsplit(" ", 1)[-1] == "UTC":
        text, zone_name = text.rsplit(" ", 1)
        try:
            zone = pytz.timezone(zone_name)
        except pytz.UnknownTimeZoneError as exc:
            raise ValueError(f"unknown time zone {zone_name!r}") from exc
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if moment.tzinfo is None:
        moment = zone.localize(moment) if zone else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def ticket_of(app: Any, call_sid: str) -> dict[str, Any] | None:
    """The ticket the in-process app wrote for a call, as plain values.

    The simulated app journals ticket changes like a real one and writes them only when asked:
    here, so a simulated call costs no database work until someone looks at its ticket."""
    if app is None:
        return None
    from ivr.tickets.service import get_ticket

    s = app.extensions["ivr"]
    s.writer.drain()
    with s.db.session() as session:
        ticket = get_ticket(session, call_sid)
        return ticket_fields(ticket) if ticket else None
