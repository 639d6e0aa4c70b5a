"""Ticket operations. Each function is one unit of work on the session it is given.

Every function commits before returning (and rolls back if it raises), so callers pass a fresh
`Database.sessions()` session or one from `Database.session()`, and get back objects that stay
readable after the commit. Writers lock the call's ticket row first, so concurrent webhooks for the
same call apply their changes one after the other instead of overwriting each other.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.models import ProcessedWebhook, QueueEventRow, Ticket

REFERENCE_DIGITS = 7
# A collision among 9 million references is rare; several in a row means something else is wrong.
_CREATE_ATTEMPTS = 5
# Events about an agent, not a caller: the queue and language of a ticket say nothing about them.
_AGENT_EVENTS = frozenset({QueueEvent.AGENTLOGIN, QueueEvent.AGENTLOGOFF})


@contextmanager
def _unit_of_work(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def new_reference() -> str:
    """A random reference the caller can note down: 7 digits, never starting with 0."""
    low = 10 ** (REFERENCE_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))


def ensure_ticket(
    session: Session,
    call_sid: str,
    *,
    caller: str | None = None,
    called: str | None = None,
    now: datetime,
) -> Ticket:
    """The call's ticket, created on first sight; exactly one per call even under races."""
    with _unit_of_work(session):
        return _lock_or_create(session, call_sid, caller=caller, called=called, now=now)


def apply_change(
    session: Session,
    call_sid: str,
    change: TicketChange,
    *,
    now: datetime,
    token: str | None = None,
    caller: str | None = None,
    called: str | None = None,
) -> Ticket:
    """Record what one webhook learned and log its events; a retried webhook applies once."""
    with _unit_of_work(session):
        ticket = _lock_or_create(session, call_sid, caller=caller, called=called, now=now)
        if change.is_empty():
            return ticket
        if token is not None and not _claim_token(session, token, call_sid, now):
            return ticket
        _apply(ticket, change, now)
        _insert_events(session, call_sid, ticket, change.events, now)
        return ticket


def close_ticket(
    session: Session,
    call_sid: str,
    *,
    call_status: str,
    now: datetime,
    duration: int | None,
    caller: str | None = None,
    called: str | None = None,
) -> Ticket:
    """Record the end of a call from Twilio's final status callback; safe to repeat."""
    with _unit_of_work(session):
        # A status callback for a call we never saw still gets a ticket: no call goes unrecorded.
        ticket = _lock_or_create(session, call_sid, caller=caller, called=called, now=now)
        ticket.call_status = call_status
        if ticket.ended_at is None:
            ticket.ended_at = now
        if duration is not None:
            ticket.duration_seconds = duration
        if ticket.outcome in (None, Outcome.QUEUED):
            ticket.outcome = Outcome.ABANDONED
        if ticket.queued_at is not None:
            waited_until = ticket.answered_at or ticket.ended_at
            ticket.wait_seconds = max(0, round((waited_until - ticket.queued_at).total_seconds()))
        return ticket


def get_ticket(session: Session, call_sid: str) -> Ticket | None:
    """The ticket of a call, if there is one."""
    with _unit_of_work(session):
        return session.scalars(select(Ticket).where(Ticket.call_sid == call_sid)).one_or_none()


def find_by_reference(session: Session, reference: str) -> Ticket | None:
    """The ticket with a reference, ignoring the spaces of its spoken form."""
    digits = "".join(ch for ch in reference if ch in "0123456789")
    with _unit_of_work(session):
        return session.scalars(select(Ticket).where(Ticket.reference == digits)).one_or_none()


def list_tickets(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: Outcome | None = None,
    queue: str | None = None,
    language: str | None = None,
    limit: int = 100,
) -> list[Ticket]:
    """Tickets of calls that arrived in [since, until), newest first, optionally filtered."""
    query = select(Ticket).order_by(Ticket.arrived_at.desc(), Ticket.id.desc()).limit(limit)
    if since is not None:
        query = query.where(Ticket.arrived_at >= since)
    if until is not None:
        query = query.where(Ticket.arrived_at < until)
    if outcome is not None:
        query = query.where(Ticket.outcome == outcome)
    if queue is not None:
        query = query.where(Ticket.queue == queue)
    if language is not None:
        query = query.where(Ticket.language == language)
    with _unit_of_work(session):
        return list(session.scalars(query))


def prune_processed_webhooks(session: Session, *, before: datetime) -> int:
    """Forget idempotency tokens processed before an instant; returns how many were removed."""
    with _unit_of_work(session):
        result = session.connection().execute(
            delete(ProcessedWebhook).where(ProcessedWebhook.processed_at < before)
        )
        return result.rowcount


def _lock_or_create(
    session: Session,
    call_sid: str,
    *,
    caller: str | None,
    called: str | None,
    now: datetime,
) -> Ticket:
    for _ in range(_CREATE_ATTEMPTS):
        ticket = session.scalars(
            select(Ticket)
            .where(Ticket.call_sid == call_sid)
            .with_for_update()
            # The session may hold an older copy; the locked row is the truth.
            .execution_options(populate_existing=True)
        ).one_or_none()
        if ticket is not None:
            if ticket.caller is None and caller:
                ticket.caller = caller
            if ticket.called is None and called:
                ticket.called = called
            return ticket
        ticket = Ticket(
            call_sid=call_sid,
            reference=new_reference(),
            caller=caller or None,
            called=called or None,
            menu_path=[],
            arrived_at=now,
        )
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:
            # Either a concurrent request created this call's ticket first (the next select finds
            # and locks it) or the random reference was taken (the next attempt draws another).
            continue
        return ticket
    raise RuntimeError(f"could not create a ticket for call {call_sid} in {_CREATE_ATTEMPTS} tries")


def _claim_token(session: Session, token: str, call_sid: str, now: datetime) -> bool:
    # Insert rather than look up first: of two identical retries racing, exactly one insert wins,
    # and the claim commits or rolls back together with the change it guards.
    try:
        with session.begin_nested():
            session.execute(
                insert(ProcessedWebhook).values(token=token, call_sid=call_sid, processed_at=now)
            )
    except IntegrityError:
        return False
    return True


def _apply(ticket: Ticket, change: TicketChange, now: datetime) -> None:
    if change.language is not None:
        ticket.language = change.language
    if change.menu_step is not None:
        ticket.menu_path = [*ticket.menu_path, change.menu_step]
    if change.issue is not None:
        ticket.issue = change.issue
    if change.queue is not None:
        ticket.queue = change.queue
    if change.team is not None:
        ticket.team = change.team
    if change.priority is not None:
        ticket.priority = change.priority
    if change.outcome is not None:
        ticket.outcome = change.outcome
        if change.outcome is Outcome.ANSWERED and ticket.answered_at is None:
            ticket.answered_at = now
    if change.queued and ticket.queued_at is None:
        ticket.queued_at = now
    if change.callback_number is not None:
        ticket.callback_number = change.callback_number
    if change.recording_url is not None:
        ticket.recording_url = change.recording_url
    if change.recording_duration is not None:
        ticket.recording_duration = change.recording_duration
    if change.agent is not None:
        ticket.agent = change.agent
    if change.satisfaction is not None:
        ticket.satisfaction = change.satisfaction


def _insert_events(
    session: Session,
    call_sid: str,
    ticket: Ticket | None,
    records: Sequence[EventRecord],
    now: datetime,
) -> None:
    if not records:
        return
    rows: list[dict[str, object]] = []
    for record in records:
        queue, language = record.queue, record.language
        # A call's event that does not name its queue or language is about the one the call is in
        # (a status callback knows the call, not the queue); the reports group by these columns.
        if ticket is not None and record.event not in _AGENT_EVENTS:
            queue = ticket.queue if queue is None else queue
            language = ticket.language if language is None else language
        rows.append(
            {
                "call_sid": call_sid,
                "ticket_id": None if ticket is None else ticket.id,
                "event": record.event,
                "at": now,
                "queue": queue,
                "language": language,
                "agent": record.agent,
                "position": record.position,
                "wait_seconds": record.wait_seconds,
                "talk_seconds": record.talk_seconds,
                "data": dict(record.data),
            }
        )
    session.execute(insert(QueueEventRow), rows)
