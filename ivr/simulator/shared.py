"""What the simulator's commands share: reading a time the way QA writes it, and a call's ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytz

from ivr.simulator.report import ticket_fields

EXAMPLES = "'2026-12-25 09:00 Europe/Berlin', '2026-12-25T09:00+01:00' or '2026-12-25T09:00Z'"


def parse_when(text: str) -> datetime:
    """An instant as QA writes it: '2026-12-25T09:00+01:00', '2026-12-25T09:00Z' (UTC), or
    '2026-12-25 09:00 Europe/Berlin' (a wall-clock time in an IANA zone; 'UTC' works too).

    A time without a zone is refused rather than guessed: teams open by their own zone's clock,
    so a silent guess would simulate another hour than QA meant. A wall-clock time that does not
    exist (clocks jump forward) or happens twice (clocks go back) is refused, naming the change.
    Every refusal is a `ValueError` whose message says what to write instead."""
    text = text.strip()
    zone: pytz.BaseTzInfo | None = None
    head, _, last = text.rpartition(" ")
    if head and ("/" in last or last.upper() == "UTC"):
        try:
            zone = pytz.timezone("UTC" if last.upper() == "UTC" else last)
        except pytz.UnknownTimeZoneError:
            raise ValueError(
                f"unknown time zone {last!r} in {text!r}: use an IANA name like Europe/Berlin"
            ) from None
        text = head.strip()
    try:
        moment = datetime.fromisoformat(
            text.replace(" ", "T", 1).removesuffix("Z") + ("+00:00" if text.endswith("Z") else "")
        )
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time; write e.g. {EXAMPLES}") from None
    if moment.tzinfo is not None:
        if zone is not None:
            raise ValueError(f"{text!r} has an offset and a zone: give only one")
        return moment.astimezone(UTC)
    if zone is None:
        raise ValueError(f"{text!r} has no time zone; write e.g. {EXAMPLES}")
    try:
        return zone.localize(moment, is_dst=None).astimezone(UTC)
    except pytz.NonExistentTimeError:
        change = _clock_change(zone, moment)
        raise ValueError(
            f"{moment:%Y-%m-%d %H:%M} does not exist in {zone.zone}: {change}, "
            "so that wall-clock time is skipped; pick a time outside the gap"
        ) from None
    except pytz.AmbiguousTimeError:
        change = _clock_change(zone, moment)
        first, second = (zone.localize(moment, is_dst=d) for d in (True, False))
        raise ValueError(
            f"{moment:%Y-%m-%d %H:%M} happens twice in {zone.zone}: {change}; give the offset, "
            f"{first.isoformat(timespec='minutes')} (the first) or "
            f"{second.isoformat(timespec='minutes')} (the second)"
        ) from None


def _clock_change(zone: pytz.BaseTzInfo, moment: datetime) -> str:
    """'clocks go forward from UTC+01:00 to UTC+02:00 on 2026-03-29' for a DST change near `moment`."""
    before = zone.localize(moment - timedelta(hours=6), is_dst=False).utcoffset()
    after = zone.localize(moment + timedelta(hours=6), is_dst=False).utcoffset()
    assert before is not None and after is not None
    direction = "forward" if after > before else "back"
    return (
        f"clocks go {direction} from UTC{_offset(before)} to UTC{_offset(after)} "
        f"on {moment:%Y-%m-%d} (daylight saving time)"
    )


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def ticket_of(app: Any, call_sid: str) -> dict[str, Any] | None:
    """The ticket the in-process app wrote for a call, as plain values.

    The simulated app journals ticket changes like a real one and writes them only when asked:
    here, so a simulated call costs no database work until someone looks at its ticket."""
    if app is None:
        return None
    from ivr.tickets.reads import get_ticket

    s = app.extensions["ivr"]
    s.writer.drain()
    with s.db.session() as session:
        ticket = get_ticket(session, call_sid)
        return ticket_fields(ticket) if ticket else None
