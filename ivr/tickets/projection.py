"""A call's ticket, folded from its journal records: the same records give the same ticket, always.

The writer keeps every record it applied (`ticket_changes`) and recomputes a call's ticket from all of
them whenever new ones arrive. Records are folded in the order they happened (`at`, then `seq`), not the
order they reached the writer, so a record that spent an outage in a spool file lands where it belongs,
and a record delivered twice changes nothing. The end of a call is settled last: a call that ended while
queued (or before anything was decided) was abandoned, whatever order the webhooks arrived in.

Pure: no database here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ivr.tickets.changes import LATEST_WINS, EventRecord, Outcome, QueueEvent
from ivr.tickets.records import JournalRecord

AGENT_EVENTS = frozenset({QueueEvent.AGENTLOGIN, QueueEvent.AGENTLOGOFF})
"""Events about an agent, not a caller: the queue and language of a ticket say nothing about them."""


@dataclass
class TicketFields:
    """The columns of one ticket row, as the journal says they are."""

    call_sid: str
    arrived_at: datetime
    reference: str | None = None
    caller: str | None = None
    called: str | None = None
    language: str | None = None
    menu_path: list[str] = field(default_factory=list)
    issue: str | None = None
    queue: str | None = None
    team: str | None = None
    priority: int | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    call_status: str | None = None
    wait_seconds: int | None = None
    duration_seconds: int | None = None
    agent: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    callback_number: str | None = None
    satisfaction: int | None = None
    account: str | None = None
    verified_by: str | None = None
    verified_at: datetime | None = None
    locked_at: datetime | None = None
    callback_code: str | None = None
    said: str | None = None
    said_to: str | None = None
    said_checked: bool | None = None
    incident: int | None = None


@dataclass(frozen=True)
class EventFields:
    """One row of the queue event log, keyed by the record it came from and its place in it."""

    change_id: str
    index: int
    call_sid: str
    at: datetime
    record: EventRecord
    queue: str | None
    language: str | None


def in_order(records: Iterable[JournalRecord]) -> list[JournalRecord]:
    """Records in the order they happened; ties (one instant) by sequence, then id."""
    return sorted(records, key=lambda r: (r.at, r.seq, r.id))


def project(
    call_sid: str, records: Iterable[JournalRecord]
) -> tuple[TicketFields, list[EventFields]]:
    """The ticket of one call and its queue events, from all its journal records (any order, repeats)."""
    unique = {r.id: r for r in records if r.call_sid == call_sid}
    ordered = in_order(unique.values())
    if not ordered:
        raise ValueError(f"no journal records for call {call_sid!r}")
    ticket = TicketFields(call_sid=call_sid, arrived_at=ordered[0].at)
    events: list[EventFields] = []
    for record in ordered:
        _apply(ticket, record)
        for index, event in enumerate(record.change.events):
            queue, language = event.queue, event.language
            # A call's event that does not name its queue or language is about the one the call is
            # in (a status callback knows the call, not the queue); the reports group by these.
            if event.event not in AGENT_EVENTS:
                queue = ticket.queue if queue is None else queue
                language = ticket.language if language is None else language
            events.append(
                EventFields(record.id, index, call_sid, record.at, event, queue, language)
            )
    _settle_end(ticket)
    return ticket, events


def agent_events(records: Iterable[JournalRecord]) -> list[EventFields]:
    """The queue events of records that belong to no call (agent logins and logouts)."""
    return [
        EventFields(r.id, i, r.call_sid, r.at, e, e.queue, e.language)
        for r in in_order(records)
        for i, e in enumerate(r.change.events)
    ]


def _apply(ticket: TicketFields, record: JournalRecord) -> None:
    if record.reference:
        # The newest wins: it is the one the caller's current webhook URLs carry (and read back).
        ticket.reference = record.reference
    # Who called and which number: learned once, never overwritten by a later, poorer webhook.
    ticket.caller = ticket.caller or record.caller
    ticket.called = ticket.called or record.called
    change = record.change
    if change.language is not None:
        ticket.language = change.language
    if change.menu_step is not None:
        ticket.menu_path = [*ticket.menu_path, change.menu_step]
    for name in LATEST_WINS:
        value = getattr(change, name)
        if value is not None:
            setattr(ticket, name, value)
    if change.outcome is not None:
        ticket.outcome = change.outcome
        if change.outcome is Outcome.ANSWERED and ticket.answered_at is None:
            ticket.answered_at = record.at
    if change.queued and ticket.queued_at is None:
        ticket.queued_at = record.at
    if change.verified is not None and ticket.verified_at is None:
        ticket.verified_at, ticket.verified_by = record.at, change.verified
    if change.locked and ticket.locked_at is None:
        ticket.locked_at = record.at
    if record.end is not None:
        ticket.call_status = record.end.status
        if ticket.ended_at is None:
            ticket.ended_at = record.at
        if record.end.duration is not None:
            ticket.duration_seconds = record.end.duration


def _settle_end(ticket: TicketFields) -> None:
    if ticket.ended_at is None:
        return
    if ticket.outcome in (None, Outcome.QUEUED):
        ticket.outcome = Outcome.ABANDONED
    if ticket.queued_at is not None:
        waited_until = ticket.answered_at or ticket.ended_at
        ticket.wait_seconds = max(0, round((waited_until - ticket.queued_at).total_seconds()))
