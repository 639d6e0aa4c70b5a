"""Reading tickets for the call-handling code: one ticket, a call's journal records, the callbacks
waiting to be placed, the agents logged in.

Nothing here changes a ticket (`ivr.tickets.writes` does). Every function is one unit of work
(`ivr.tickets.unit_of_work`) on the session it is given, so its transaction ends before it returns,
and the objects it returns stay readable after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.models import QueueEventRow, Ticket, TicketChangeRow
from ivr.tickets.projection import in_order
from ivr.tickets.records import BadRecord, JournalRecord, NewerRecord
from ivr.tickets.unit_of_work import unit_of_work


def changes_of(session: Session, call_sid: str) -> list[JournalRecord]:
    """Every journal record applied to a call's ticket, in the order they happened."""
    with unit_of_work(session):
        bodies = session.scalars(
            select(TicketChangeRow.body).where(TicketChangeRow.call_sid == call_sid)
        )
        return in_order(JournalRecord.from_json(b) for b in bodies)


def get_ticket(session: Session, call_sid: str) -> Ticket | None:
    """The ticket of a call, if there is one."""
    with unit_of_work(session):
        return session.scalars(select(Ticket).where(Ticket.call_sid == call_sid)).one_or_none()


def find_by_reference(session: Session, reference: str) -> Ticket | None:
    """The ticket with a reference, ignoring the spaces of its spoken form."""
    digits = "".join(ch for ch in reference if ch in "0123456789")
    with unit_of_work(session):
        return session.scalars(select(Ticket).where(Ticket.reference == digits)).one_or_none()


@dataclass(frozen=True)
class CallbackTry:
    """One try at an after-hours callback, as its CALLBACKDIAL events tell it."""

    placed_at: datetime
    """When an agent was free and the call was placed (or could not be placed)."""
    ended_at: datetime | None
    """When the try ended without an answer: its final status came (busy, no-answer, failed,
    canceled), or the call could not be placed at all. None while nothing said so."""


@dataclass(frozen=True)
class CallbackRequest:
    """A caller who asked to be called back and whom no agent has answered yet: while holding
    (`pending_callbacks`: they keep their place) or while their team was closed
    (`after_hours_callbacks`: they never queued)."""

    call_sid: str
    reference: str
    queue: str
    language: str
    priority: int
    number: str
    our_number: str | None
    """The number the caller called: the callback is placed from it."""
    asked_at: datetime
    queued_at: datetime | None = None
    """When the caller joined the hold queue, the place the callback keeps; None after hours."""
    tries: tuple[CallbackTry, ...] = ()
    """After hours: the tries so far, oldest first (a kept place is called once, when it comes up)."""
    given_up: bool = False
    """After hours: a CALLBACKGIVEUP was logged, no more tries."""
    callback_code: str | None = None
    """The code the caller was given (the callback opens with it); None on older tickets."""


def _callback_request(
    ticket: Ticket,
    asked_at: datetime,
    *,
    queued_at: datetime | None = None,
    tries: tuple[CallbackTry, ...] = (),
    given_up: bool = False,
) -> CallbackRequest:
    """The callback `ticket` asks for (its queue, language and callback number are set)."""
    assert ticket.queue and ticket.language and ticket.callback_number
    return CallbackRequest(
        call_sid=ticket.call_sid,
        reference=ticket.reference,
        queue=ticket.queue,
        language=ticket.language,
        priority=ticket.priority if ticket.priority is not None else 0,
        number=ticket.callback_number,
        our_number=ticket.called,
        asked_at=asked_at,
        queued_at=queued_at,
        tries=tries,
        given_up=given_up,
        callback_code=ticket.callback_code,
    )


def pending_callbacks(session: Session, *, since: datetime) -> list[CallbackRequest]:
    """Callbacks asked for since `since` (from the hold queue) that nobody has placed yet."""
    asked = (
        select(QueueEventRow.call_sid, func.max(QueueEventRow.at).label("asked_at"))
        .where(QueueEventRow.event == QueueEvent.CALLBACK, QueueEventRow.at >= since)
        .group_by(QueueEventRow.call_sid)
        .subquery()
    )
    dialled = select(QueueEventRow.call_sid).where(
        QueueEventRow.event == QueueEvent.CALLBACKDIAL, QueueEventRow.at >= since
    )
    query = (
        select(Ticket, asked.c.asked_at)
        .join(asked, asked.c.call_sid == Ticket.call_sid)
        .where(
            Ticket.outcome == Outcome.CALLBACK,
            Ticket.answered_at.is_(None),
            Ticket.queued_at.is_not(None),
            Ticket.callback_number.is_not(None),
            Ticket.call_sid.not_in(dialled),
        )
        .order_by(Ticket.queued_at)
    )
    with unit_of_work(session):
        rows = session.execute(query).all()
    found = []
    for ticket, asked_at in rows:
        if not (ticket.queue and ticket.language and ticket.queued_at and ticket.callback_number):
            continue
        found.append(_callback_request(ticket, asked_at, queued_at=ticket.queued_at))
    return found


def logged_in_agents(session: Session, *, since: datetime) -> list[str]:
    """Agents whose latest login or logout since `since` was a login."""
    e = QueueEventRow
    ranked = (
        select(
            e.agent,
            e.event,
            func.row_number()
            .over(partition_by=e.agent, order_by=(e.at.desc(), e.id.desc()))
            .label("newest"),
        )
        .where(
            e.event.in_([QueueEvent.AGENTLOGIN, QueueEvent.AGENTLOGOFF]),
            e.at >= since,
            e.agent.is_not(None),
        )
        .subquery()
    )
    query = (
        select(ranked.c.agent)
        .where(ranked.c.newest == 1, ranked.c.event == QueueEvent.AGENTLOGIN.value)
        .order_by(ranked.c.agent)
    )
    with unit_of_work(session):
        return [agent for agent in session.scalars(query) if agent]


# --- after-hours callbacks (`ivr.callbacks`) ------------------------------------------------------

_IN_BATCH = 500
"""Call SIDs per IN (...) list: well under every database's limit on bound parameters."""


def after_hours_callbacks(session: Session, *, since: datetime) -> list[CallbackRequest]:
    """Callbacks asked for after hours (the caller never queued) by calls that arrived since
    `since` and that no agent has answered, the earliest request first, each with its tries."""
    query = (
        select(Ticket)
        .where(
            Ticket.outcome == Outcome.CALLBACK,
            Ticket.answered_at.is_(None),
            Ticket.queued_at.is_(None),
            Ticket.callback_number.is_not(None),
            Ticket.queue.is_not(None),
            Ticket.language.is_not(None),
            Ticket.arrived_at >= since,
        )
        .order_by(Ticket.arrived_at, Ticket.id)
    )
    with unit_of_work(session):
        found = list(session.scalars(query))
        calls = [t.call_sid for t in found]
        events: dict[str, list[QueueEventRow]] = defaultdict(list)
        asked: dict[str, datetime] = {}
        for start in range(0, len(calls), _IN_BATCH):
            batch = calls[start : start + _IN_BATCH]
            rows = session.scalars(
                select(QueueEventRow)
                .where(
                    QueueEventRow.call_sid.in_(batch),
                    QueueEventRow.event.in_([QueueEvent.CALLBACKDIAL, QueueEvent.CALLBACKGIVEUP]),
                )
                .order_by(QueueEventRow.at, QueueEventRow.id)
            )
            for row in rows:
                events[row.call_sid].append(row)
            asked.update(_callbacks_asked(session, batch))
    requests = []
    for ticket in found:
        history = events[ticket.call_sid]
        requests.append(
            _callback_request(
                ticket,
                asked.get(ticket.call_sid, ticket.arrived_at),
                tries=_callback_tries(history),
                given_up=any(e.event == QueueEvent.CALLBACKGIVEUP for e in history),
            )
        )
    return sorted(requests, key=lambda r: (r.asked_at, r.call_sid))


def _callbacks_asked(session: Session, calls: Sequence[str]) -> dict[str, datetime]:
    """When each call asked for its callback: the latest journal record that set the outcome."""
    rows = session.execute(
        select(TicketChangeRow.call_sid, TicketChangeRow.body).where(
            TicketChangeRow.call_sid.in_(calls),
            TicketChangeRow.body.contains(f'"{Outcome.CALLBACK.value}"'),  # skip parsing the rest
        )
    )
    asked: dict[str, datetime] = {}
    for call_sid, body in rows:
        try:
            record = JournalRecord.from_json(body)
        except (BadRecord, NewerRecord):
            continue
        if record.change.outcome == Outcome.CALLBACK:
            asked[call_sid] = max(record.at, asked.get(call_sid, record.at))
    return asked


def _callback_tries(events: Sequence[QueueEventRow]) -> tuple[CallbackTry, ...]:
    """The tries the CALLBACKDIAL events tell: the switchboard logs one with the number (`to`)
    when it places the call (result dialled or failed), and one with the final status (no `to`)
    when the placed call ended unanswered."""
    tries: list[CallbackTry] = []
    for event in events:
        if event.event != QueueEvent.CALLBACKDIAL:
            continue
        result = (event.data or {}).get("result", "")
        if "to" in (event.data or {}):
            placed = result == "dialled"
            tries.append(CallbackTry(event.at, None if placed else event.at))
        elif tries and tries[-1].ended_at is None:
            tries[-1] = replace(tries[-1], ended_at=event.at)
    return tuple(tries)
