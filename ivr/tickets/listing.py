"""Finding tickets, telling a ticket's story, and writing tickets out (CSV, JSON) for people.

Shared by the `ivr tickets` commands and the admin dashboard. Caller numbers are masked unless the
caller of these functions asks for them in full: a ticket list is often pasted where not everybody
should see who called.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ivr.tickets.changes import SAID_OPERATOR, SAID_UNDERSTOOD_NOT, Outcome, QueueEvent
from ivr.tickets.events import events_of
from ivr.tickets.models import QueueEventRow, Ticket
from ivr.tickets.reads import changes_of
from ivr.tickets.records import JournalRecord
from ivr.tickets.unit_of_work import unit_of_work

DATE_HELP = (
    "an ISO date and time with a zone (2026-11-23T15:00Z, 2026-11-23T16:00+01:00) "
    "or a date (2026-11-23: the whole day, UTC)"
)
"""How the `since` and `until` filters are written (for help texts and error messages)."""

# E.164 country calling codes of two digits; 1 and 7 have one digit, every other code has three
# (ITU-T E.164 Annex to Operational Bulletin). Enough to show "+49" and hide the rest.
_TWO_DIGIT_CODES = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "  # noqa: SIM905
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)
_SHOWN_DIGITS = 3
_HIDDEN = "*** ***"


@dataclass(frozen=True)
class TicketFilter:
    """Which tickets to show; every field left None matches all tickets."""

    since: datetime | None = None
    """Calls that arrived at or after this instant."""
    until: datetime | None = None
    """Calls that arrived before this instant."""
    language: str | None = None
    issue: str | None = None
    queue: str | None = None
    outcome: str | None = None
    reference: str | None = None
    caller: str | None = None
    """Digits the caller's number contains."""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> TicketFilter:
        """A filter from query-string-like strings (blank means no filter; other keys are ignored);
        ValueError with a clear message for a bad date, outcome, reference or number."""
        given = {
            name: args[name].strip() for name in _FILTER_NAMES if (args.get(name) or "").strip()
        }
        since = (
            _parse_time(given.pop("since"), "since", end_of_day=False) if "since" in given else None
        )
        until = (
            _parse_time(given.pop("until"), "until", end_of_day=True) if "until" in given else None
        )
        if since is not None and until is not None and since >= until:
            raise ValueError(
                f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
            )
        if "outcome" in given:
            given["outcome"] = _outcome(given["outcome"]).value
        for name in ("reference", "caller"):
            if name in given:
                digits = _digits(given[name])
                if not digits:
                    raise ValueError(f"{name} {given[name]!r} has no digits")
                given[name] = digits
        return cls(since=since, until=until, **given)

    def as_args(self) -> dict[str, str]:
        """The filter as query-string-like strings that `from_args` reads back (set fields only)."""
        found: dict[str, str] = {}
        for name in _FILTER_NAMES:
            value = getattr(self, name)
            if value is not None:
                found[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return found


_FILTER_NAMES = tuple(f.name for f in fields(TicketFilter))


def _parse_time(text: str, name: str, *, end_of_day: bool) -> datetime:
    """An aware instant; a bare date is its whole day in UTC (`until` a date: the next midnight)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date or time: write {DATE_HELP}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name} {text!r} has no time zone: write {DATE_HELP}")
    return moment.astimezone(UTC)


def _outcome(text: str) -> Outcome:
    try:
        return Outcome(text.strip().lower())
    except ValueError:
        known = ", ".join(o.value for o in Outcome)
        raise ValueError(f"unknown outcome {text!r} (one of: {known})") from None


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch in "0123456789")


def _conditions(filter: TicketFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter."""
    t = Ticket
    found: list[ColumnElement[bool]] = []
    if filter.since is not None:
        found.append(t.arrived_at >= filter.since)
    if filter.until is not None:
        found.append(t.arrived_at < filter.until)
    for column, value in (
        (t.language, filter.language),
        (t.issue, filter.issue),
        (t.queue, filter.queue),
    ):
        if value is not None:
            found.append(column == value)
    if filter.outcome is not None:
        found.append(t.outcome == _outcome(filter.outcome))
    if filter.reference is not None:
        found.append(t.reference == _digits(filter.reference))
    if filter.caller is not None:
        # Numbers are stored as E.164 ("+4915112345678"): digits after the plus, nothing to escape.
        found.append(t.caller.contains(_digits(filter.caller)))
    return found


def find_tickets(
    session: Session, filter: TicketFilter, *, limit: int = 50, offset: int = 0
) -> list[Ticket]:
    """The tickets matching `filter`, newest first (by arrival), `limit` of them from `offset`."""
    query = (
        select(Ticket)
        .where(*_conditions(filter))
        .order_by(Ticket.arrived_at.desc(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with unit_of_work(session):
        return list(session.scalars(query))


def count_tickets(session: Session, filter: TicketFilter) -> int:
    """How many tickets match `filter`."""
    query = select(func.count(Ticket.id)).where(*_conditions(filter))
    with unit_of_work(session):
        return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class TimelineEntry:
    """One moment of a call's story."""

    at: datetime
    kind: str
    """call, language, menu, speech, issue, route, queue (an event), agent, recording, callback,
    survey, outcome or end."""
    text: str


def timeline(
    session: Session, ticket: Ticket, *, full_numbers: bool = False
) -> list[TimelineEntry]:
    """The call's story, oldest first: menu path, queue events, agent, recording, survey, end.

    Told from the journal records the ticket was folded from (`service.changes_of`) and the queue
    events stored with them (`events.events_of`); entries of one instant keep their order."""
    number = _number_shown(full_numbers)
    events: dict[str | None, list[QueueEventRow]] = {}
    for row in events_of(session, ticket.call_sid):
        events.setdefault(row.change_id, []).append(row)
    entries: list[TimelineEntry] = []
    for index, record in enumerate(changes_of(session, ticket.call_sid)):
        entries += _record_entries(record, first=index == 0, number=number)
        # A record's queue events right after its own facts: a hang-up journaled in the same
        # instant as the conversation's end still comes last.
        entries += [_event_entry(row, number) for row in events.pop(record.id, [])]
    entries += [_event_entry(row, number) for rows in events.values() for row in rows]
    return sorted(_without_repeats(entries), key=lambda e: e.at)  # stable: keeps journal order


# Facts a later webhook may journal again (the agent's leg and the caller's both name the agent).
_STATES = frozenset(
    {
        "language",
        "issue",
        "route",
        "agent",
        "recording",
        "callback",
        "survey",
        "outcome",
        "account",
        "verified",
        "locked",
    }
)


def _without_repeats(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """The entries without a fact that only repeats what the call's story said last of its kind."""
    last: dict[str, str] = {}
    kept = []
    for entry in entries:
        if entry.kind in _STATES:
            if last.get(entry.kind) == entry.text:
                continue
            last[entry.kind] = entry.text
        kept.append(entry)
    return kept


def _record_entries(
    record: JournalRecord, *, first: bool, number: Callable[[str | None], str]
) -> list[TimelineEntry]:
    change, at = record.change, record.at
    found: list[TimelineEntry] = []

    def add(kind: str, text: str) -> None:
        found.append(TimelineEntry(at, kind, text))

    if first:
        add(
            "call",
            f"call from {number(record.caller) or 'an unknown number'}"
            + (f" to {record.called}" if record.called else ""),
        )
    if change.language is not None:
        add("language", f"language {change.language}")
    if change.menu_step is not None:
        menu, _, key = change.menu_step.rpartition(":")
        if menu and key == _SPOKEN:
            words = "spoke" if change.said is None else f"said {quoted(change.said)}"
            add("menu", f"menu {menu}: {words}")
        else:
            add("menu", f"menu {menu}: pressed {key}" if menu else f"menu {change.menu_step}")
    if change.said_checked:
        add("speech", "unsure what the words meant: the line asked once")
    if change.said_to is not None:
        add("speech", f"the words led to {_said_to_words(change.said_to)}")
    if change.issue is not None:
        add("issue", f"issue {change.issue}")
    if change.queue is not None:
        details = [f"team {change.team}"] if change.team else []
        if change.priority is not None:
            details.append(f"priority {change.priority}")
        add(
            "route",
            f"routed to queue {change.queue}" + (f" ({', '.join(details)})" if details else ""),
        )
    if change.agent is not None:
        add("agent", f"agent {change.agent}")
    if change.recording_url is not None:
        seconds = (
            f" ({change.recording_duration} s)" if change.recording_duration is not None else ""
        )
        add("recording", f"recording {change.recording_url}{seconds}")
    if change.callback_number is not None:
        add("callback", f"callback to {number(change.callback_number)}")
    if change.satisfaction is not None:
        add("survey", f"survey score {change.satisfaction} of 5")
    if change.account is not None:
        add("account", f"known caller: account {change.account}")
    if change.verified is not None:
        add("verified", f"verified: the code the exchange sent to the caller's {change.verified}")
    if change.locked:
        add("locked", "account locked at the exchange (withdrawals and logins stopped)")
    if change.callback_code is not None:
        add("callback", f"callback code {change.callback_code} given")
    if change.incident is not None:
        add("incident", f"heard incident notice {change.incident}")
    if change.outcome is not None:
        add("outcome", f"outcome {change.outcome.value}")
    if record.end is not None:
        duration = f" after {record.end.duration} s" if record.end.duration is not None else ""
        add("end", f"call ended: {record.end.status}{duration}")
    return found


_SPOKEN = "said"
"""The key of a menu path step for words said at a menu (`ivr.flow.engine.SPOKEN`): "main:said"."""


def _said_to_words(said_to: str) -> str:
    if said_to == SAID_UNDERSTOOD_NOT:
        return "the keypad menu (not understood or not confirmed)"
    if said_to == SAID_OPERATOR:
        return "the operator"
    return said_to


def quoted(text: str) -> str:
    """Untrusted text (a caller's words, via Twilio's speech recognition) between double quotes,
    on one line and harmless at a terminal: quotes and backslashes escaped, and every character
    that does not print (a control character, an escape sequence's ESC, a line separator, a
    right-to-left override) written as its code, \\u001b."""
    shown = []
    for char in text:
        if char in '"\\':
            shown.append("\\" + char)
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(shown) + '"'


def said_line(ticket: Ticket) -> str | None:
    """What the caller said and where it led, for people: `"my withdrawal never arrived" ->
    withdrawal (asked once)`; None when the caller said nothing at a menu that listens."""
    if ticket.said is None:
        return None
    line = quoted(ticket.said)
    if ticket.said_to is not None:
        line += f" -> {ticket.said_to}"
    if ticket.said_checked:
        line += " (asked once)"
    return line


_GIVE_UP_WORDS = {
    "tries": "callback given up after {tries} unanswered tries",
    "expired": "callback given up: not reached in time ({tries} tries)",
}


def _event_words(row: QueueEventRow, number: Callable[[str | None], str]) -> list[str]:
    """What an event's data says, in words for the after-hours callback's steps."""
    data = dict(row.data or {})
    if row.event == QueueEvent.CALLBACKQUEUED:
        return [
            f"callback try {data.get('try', '?')} of {data.get('of', '?')}: waiting for an agent"
        ]
    if row.event == QueueEvent.CALLBACKGIVEUP:
        words = _GIVE_UP_WORDS.get(data.get("reason", ""), "callback given up ({tries} tries)")
        return [words.format(tries=data.get("tries", "?"))]
    if "to" in data and row.event == QueueEvent.CALLBACKDIAL:
        data["to"] = number(data["to"])  # the caller's number, shown as the reader may see it
    return [f"{key} {value}" for key, value in sorted(data.items())]


def _event_entry(row: QueueEventRow, number: Callable[[str | None], str]) -> TimelineEntry:
    parts = [row.event.value]
    if row.queue:
        parts.append(row.queue + (f" ({row.language})" if row.language else ""))
    if row.agent:
        parts.append(f"agent {row.agent}")
    if row.position is not None:
        parts.append(f"position {row.position}")
    if row.wait_seconds is not None:
        parts.append(f"waited {row.wait_seconds} s")
    if row.talk_seconds is not None:
        parts.append(f"talked {row.talk_seconds} s")
    parts += _event_words(row, number)
    return TimelineEntry(row.at, "queue", ", ".join(parts))


def mask_number(number: str | None) -> str:
    """A phone number with only its country code and last 3 digits shown: "+49 *** *** 456".

    A number too short to keep 3 digits hidden shows none of them; text without digits (Twilio's
    "anonymous") is shown as it is, there is nothing to hide."""
    if not number:
        return ""
    digits = _digits(number)
    if not digits:
        return number
    code = ""
    if number.lstrip().startswith("+"):
        length = 1 if digits[0] in "17" else 2 if digits[:2] in _TWO_DIGIT_CODES else 3
        code, digits = digits[:length], digits[length:]
    tail = digits[-_SHOWN_DIGITS:] if len(digits) > 2 * _SHOWN_DIGITS else ""
    return " ".join(part for part in (f"+{code}" if code else "", _HIDDEN, tail) if part)


def _number_shown(full_numbers: bool) -> Callable[[str | None], str]:
    """How numbers are shown to the reader: in full, or masked."""
    if full_numbers:
        return lambda number: number or ""
    return mask_number


EXPORT_COLUMNS = (
    "reference",
    "arrived_at",
    "language",
    "menu_path",
    "issue",
    "queue",
    "team",
    "priority",
    "outcome",
    "wait_seconds",
    "duration_seconds",
    "agent",
    "caller",
    "called",
    "callback_number",
    "queued_at",
    "answered_at",
    "ended_at",
    "call_status",
    "recording_url",
    "recording_duration",
    "satisfaction",
    "account",
    "verified_by",
    "verified_at",
    "locked_at",
    "said",
    "said_to",
    "said_checked",
)
"""The columns of an export, in order (`ticket_row`)."""


def ticket_row(ticket: Ticket, *, full_numbers: bool = False) -> dict[str, str | int | None]:
    """The export columns of a ticket: times in ISO 8601 (UTC), the menu path as "a > b", the
    caller's and the callback number masked unless `full_numbers` (our own number, `called`, never)."""
    number = _number_shown(full_numbers)
    return {
        "reference": ticket.reference,
        "arrived_at": _iso(ticket.arrived_at),
        "language": ticket.language,
        "menu_path": " > ".join(ticket.menu_path or []),
        "issue": ticket.issue,
        "queue": ticket.queue,
        "team": ticket.team,
        "priority": ticket.priority,
        "outcome": None if ticket.outcome is None else ticket.outcome.value,
        "wait_seconds": ticket.wait_seconds,
        "duration_seconds": ticket.duration_seconds,
        "agent": ticket.agent,
        "caller": number(ticket.caller) or None,
        "called": ticket.called,
        "callback_number": number(ticket.callback_number) or None,
        "queued_at": _iso(ticket.queued_at),
        "answered_at": _iso(ticket.answered_at),
        "ended_at": _iso(ticket.ended_at),
        "call_status": ticket.call_status,
        "recording_url": ticket.recording_url,
        "recording_duration": ticket.recording_duration,
        "satisfaction": ticket.satisfaction,
        "account": ticket.account,
        "verified_by": ticket.verified_by,
        "verified_at": _iso(ticket.verified_at),
        "locked_at": _iso(ticket.locked_at),
        "said": ticket.said,
        "said_to": ticket.said_to,
        "said_checked": ticket.said_checked,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: str | int | None) -> str | int | None:
    """A value as a spreadsheet shows it as text: one that starts like a formula (`+49 *** ...`, a
    caller's `=HYPERLINK(...)` in a field) gets a leading apostrophe, which the spreadsheet hides."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_of(tickets: Iterable[Ticket], *, full_numbers: bool = False) -> str:
    """Tickets as CSV: a header row, RFC 4180 quoting and CRLF line ends, plain UTF-8 (no BOM);
    an empty cell for a value the ticket does not have, and no cell a spreadsheet would run as a
    formula (`spreadsheet_cell`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for ticket in tickets:
        row = ticket_row(ticket, full_numbers=full_numbers)
        writer.writerow({name: spreadsheet_cell(value) for name, value in row.items()})
    return out.getvalue()


def json_of(tickets: Iterable[Ticket], *, full_numbers: bool = False) -> str:
    """Tickets as a JSON array of `ticket_row` objects (null for a value the ticket does not have)."""
    rows = [ticket_row(t, full_numbers=full_numbers) for t in tickets]
    return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
