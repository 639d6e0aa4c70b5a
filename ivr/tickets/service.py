"""Ticket operations on the database. Each function is one unit of work on the session it is given.

Webhooks never call these: they journal what they learned (`ivr.journal`) and a writer applies the
records here in batches (`apply_records`). Every function commits before returning (and rolls back if
it raises), so callers pass a fresh `Database.sessions()` session or one from `Database.session()`, and
get back objects that stay readable after the commit.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ivr.db import insert_for
from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.models import (
    PrunedCall,
    QueueEventRow,
    ReferenceBlock,
    Ticket,
    TicketChangeRow,
)
from ivr.tickets.projection import EventFields, TicketFields, agent_events, in_order, project
from ivr.tickets.records import NO_CALL, BadRecord, JournalRecord, NewerRecord

log = logging.getLogger(__name__)

# A reference taken by another ticket (a database that still holds references of the old random
# scheme) is replaced by a new one; several in a row means something else is wrong.
_CREATE_ATTEMPTS = 5
_TICKET_FIELDS = tuple(f.name for f in fields(TicketFields) if f.name != "call_sid")


@dataclass(frozen=True)
class Applied:
    """What one batch of journal records did."""

    records: int
    """Records in the batch that were new to the database (the others were applied before)."""
    tickets: int
    """Tickets created or brought up to date."""
    refused: tuple[str, ...] = ()
    """Ids of new records for calls whose records retention pruned (`tickets.retention`): not
    applied, for the writer to set aside with `REFUSED_PRUNED`."""


REFUSED_PRUNED = (
    "its call's journal records were pruned (IVR_TICKET_CHANGES_RETENTION_DAYS): a record new to "
    "the call cannot be folded into its ticket"
)


@contextmanager
def _unit_of_work(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


class ParsedRecords:
    """Journal records a writer has parsed already, by id (the newest `size`), so that folding a
    call again does not parse its earlier records again.

    A parsed record holds 1-2 kB: the default keeps the writer within 10-20 MiB of them, the
    records of the last ~1,000 calls (minutes of a busy line; an older one is parsed again if its
    call is folded again). 100,000, as before, grew the writer by 100-180 MiB before it was full."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._records: OrderedDict[str, JournalRecord] = OrderedDict()

    def get(self, record_id: str) -> JournalRecord | None:
        return self._records.get(record_id)

    def add(self, record: JournalRecord) -> None:
        self._records[record.id] = record
        self._records.move_to_end(record.id)
        while len(self._records) > self._size:
            self._records.popitem(last=False)


def apply_records(
    session: Session,
    records: Sequence[JournalRecord],
    *,
    new_reference: Callable[[], str],
    parsed: ParsedRecords | None = None,
) -> Applied:
    """Apply journal records to the tickets and the event log, in one transaction; idempotent.

    Each record is stored once (by id); the ticket of every call the batch touches is then folded
    again from all of that call's records (`projection.project`), under the ticket's row lock, so
    several writers at once, records out of order and records delivered twice all end the same.
    `new_reference` numbers a ticket whose webhooks could give it none; `parsed` spares a writer
    parsing again the records it has seen.

    A call whose records were pruned (`tickets.retention`) keeps its ticket as it is: a repeat of a
    pruned record is known as applied, a new record is not stored and comes back in `refused`.
    """
    unique = list({r.id: r for r in records}.values())
    if not unique:
        return Applied(0, 0)
    parsed = parsed or ParsedRecords()
    with _unit_of_work(session):
        stored = _store_records(session, unique)
        for record in unique:
            if record.id in stored:  # what the database holds now; a repeat may differ from it
                parsed.add(record)
        calls = sorted({r.call_sid for r in unique if r.call_sid != NO_CALL})
        # A call retention pruned takes no record (`tickets.retention`), and gets no new ticket
        # if its own was deleted. Asked again under the row locks, as retention prunes under them.
        pruned = _pruned_ids(session, calls)
        tickets = _lock_or_create(
            session, [sid for sid in calls if sid not in pruned], new_reference, parsed
        )
        pruned |= _pruned_ids(session, list(tickets))
        late = [r for r in unique if r.call_sid in pruned]
        undo = [r.id for r in late if r.id in stored]  # stored again, or new: never kept
        if undo:
            session.execute(delete(TicketChangeRow).where(TicketChangeRow.id.in_(undo)))
            stored -= set(undo)
        refused = tuple(r.id for r in late if r.id not in pruned[r.call_sid])
        if refused:
            log.warning(
                "ticket writer: %d records refused, their calls' records were pruned: %s",
                len(refused),
                ", ".join(sorted({r.call_sid for r in late if r.id in refused})),
            )
        calls = [sid for sid in calls if sid not in pruned]
        # Read only now, under the row locks: a writer that held them before us has committed,
        # so every record of these calls is visible and none is folded in behind our back.
        history = _records_of(session, calls, parsed)
        event_rows: list[dict[str, object]] = []
        for sid in calls:
            ordered = in_order(history[sid])
            ticket_fields, events = project(sid, ordered)
            ticket = tickets[sid]
            _update(session, ticket, ticket_fields)
            # Usually the new records are the call's latest, and only their events are new. A
            # record that arrived out of order may name the queue of events logged before it.
            fresh = {r.id for r in ordered if r.id in stored}
            tail = {r.id for r in ordered[len(ordered) - len(fresh) :]} if fresh else set()
            rewrite = fresh != tail
            event_rows += [
                _event_row(e, ticket.id) for e in events if rewrite or e.change_id in fresh
            ]
        agents = [r for r in unique if r.call_sid == NO_CALL and r.id in stored]
        event_rows += [_event_row(e, None) for e in agent_events(agents)]
        _upsert_events(session, event_rows)
        return Applied(len(stored), len(calls), refused)


def _store_records(session: Session, records: Sequence[JournalRecord]) -> set[str]:
    """Store the records not stored yet; the ids of those stored now."""
    rows = [
        {
            "id": r.id,
            "call_sid": r.call_sid,
            "at": r.at,
            "seq": r.seq,
            "body": r.to_json(),
            "written_at": datetime.now(UTC),
        }
        for r in records
    ]
    table = TicketChangeRow.__table__
    statement = insert_for(session, table).on_conflict_do_nothing(index_elements=["id"])
    return set(session.execute(statement.returning(table.c.id), rows).scalars())


def _records_of(
    session: Session, calls: Sequence[str], parsed: ParsedRecords
) -> dict[str, list[JournalRecord]]:
    found: dict[str, list[JournalRecord]] = defaultdict(list)
    if not calls:
        return found
    rows = session.execute(
        select(TicketChangeRow.id, TicketChangeRow.body).where(TicketChangeRow.call_sid.in_(calls))
    )
    for record_id, body in rows:
        record = parsed.get(record_id)
        if record is None:
            try:
                record = JournalRecord.from_json(body)
            except NewerRecord as exc:
                # A newer release applied it: this ticket is folded without it until a newer
                # writer folds the call again (docs/operators/upgrading.md).
                log.warning(
                    "stored journal record %s of a newer release skipped: %s", record_id, exc
                )
                continue
            except BadRecord:
                log.exception("a stored journal record cannot be read any more; skipped")
                continue
            parsed.add(record)
        found[record.call_sid].append(record)
    return found


def _pruned_ids(session: Session, calls: Sequence[str]) -> dict[str, set[str]]:
    """The calls among `calls` whose records retention pruned, with those records' ids."""
    if not calls:
        return {}
    rows = session.execute(
        select(PrunedCall.call_sid, PrunedCall.record_ids).where(PrunedCall.call_sid.in_(calls))
    )
    return {call_sid: set(ids) for call_sid, ids in rows}


def _lock(session: Session, calls: Sequence[str]) -> dict[str, Ticket]:
    query = (
        select(Ticket)
        .where(Ticket.call_sid.in_(calls))
        .order_by(Ticket.call_sid)
        .with_for_update()
        # The session may hold an older copy; the locked row is the truth.
        .execution_options(populate_existing=True)
    )
    return {t.call_sid: t for t in session.scalars(query)}


def _lock_or_create(
    session: Session,
    calls: Sequence[str],
    new_reference: Callable[[], str],
    parsed: ParsedRecords,
) -> dict[str, Ticket]:
    tickets = _lock(session, calls)
    missing = [sid for sid in calls if sid not in tickets]
    history = _records_of(session, missing, parsed)
    for _ in range(_CREATE_ATTEMPTS):
        missing = [sid for sid in calls if sid not in tickets]
        if not missing:
            return tickets
        rows = []
        for sid in missing:
            first, _events = project(sid, history[sid])
            rows.append(
                {
                    "call_sid": sid,
                    "reference": first.reference or new_reference(),
                    "arrived_at": first.arrived_at,
                    "menu_path": [],
                }
            )
        # A row another writer is creating waits for it, then is left alone; a reference already
        # taken leaves the call without a row, and the next round gives it a new reference.
        session.execute(insert_for(session, Ticket).on_conflict_do_nothing(), rows)
        tickets.update(_lock(session, missing))
        for sid in missing:
            if sid not in tickets:
                history[sid] = [_without_reference(r) for r in history[sid]]
    raise RuntimeError(f"could not create tickets for {missing} in {_CREATE_ATTEMPTS} tries")


def _without_reference(record: JournalRecord) -> JournalRecord:
    return replace(record, reference=None)


def _update(session: Session, ticket: Ticket, projected: TicketFields) -> None:
    for name in _TICKET_FIELDS:
        value = getattr(projected, name)
        # A reference is only ever replaced by one nobody else holds.
        if name == "reference" and (
            value is None or value == ticket.reference or _reference_taken(session, value)
        ):
            continue
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)


def _reference_taken(session: Session, reference: str) -> bool:
    return session.scalar(select(Ticket.id).where(Ticket.reference == reference)) is not None


def _event_row(event: EventFields, ticket_id: int | None) -> dict[str, object]:
    record = event.record
    return {
        "change_id": event.change_id,
        "change_index": event.index,
        "call_sid": event.call_sid,
        "ticket_id": ticket_id,
        "event": record.event,
        "at": event.at,
        "queue": event.queue,
        "language": event.language,
        "agent": record.agent,
        "position": record.position,
        "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds,
        "data": dict(record.data),
    }


def _upsert_events(session: Session, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    statement = insert_for(session, QueueEventRow.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["change_id", "change_index"],
        set_={
            "ticket_id": statement.excluded.ticket_id,
            "queue": statement.excluded.queue,
            "language": statement.excluded.language,
        },
    )
    session.execute(statement, rows)


def lease_reference_block(session: Session, *, now: datetime) -> int:
    """A new block of reference serial numbers for this process (`tickets.references`)."""
    with _unit_of_work(session):
        holder = f"{socket.gethostname()}:{os.getpid()}"[:128]
        statement = insert(ReferenceBlock).values(leased_at=now, leased_by=holder)
        block: int = session.execute(statement.returning(ReferenceBlock.id)).scalar_one()
        return block


def changes_of(session: Session, call_sid: str) -> list[JournalRecord]:
    """Every journal record applied to a call's ticket, in the order they happened."""
    with _unit_of_work(session):
        bodies = session.scalars(
            select(TicketChangeRow.body).where(TicketChangeRow.call_sid == call_sid)
        )
        return in_order(JournalRecord.from_json(b) for b in bodies)


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


@dataclass(frozen=True)
class PendingCallback:
    """A caller who asked, while holding, to be called back keeping their place, not yet called."""

    call_sid: str
    reference: str
    queue: str
    language: str
    priority: int
    queued_at: datetime
    number: str
    our_number: str | None
    asked_at: datetime
    callback_code: str | None = None
    """The code the caller was given (the callback opens with it); None on older tickets."""


def pending_callbacks(session: Session, *, since: datetime) -> list[PendingCallback]:
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
    with _unit_of_work(session):
        rows = session.execute(query).all()
    found = []
    for ticket, asked_at in rows:
        if not (ticket.queue and ticket.language and ticket.queued_at and ticket.callback_number):
            continue
        found.append(
            PendingCallback(
                call_sid=ticket.call_sid,
                reference=ticket.reference,
                queue=ticket.queue,
                language=ticket.language,
                priority=ticket.priority if ticket.priority is not None else 0,
                queued_at=ticket.queued_at,
                number=ticket.callback_number,
                our_number=ticket.called,
                asked_at=asked_at,
                callback_code=ticket.callback_code,
            )
        )
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
    with _unit_of_work(session):
        return [agent for agent in session.scalars(query) if agent]


# --- after-hours callbacks (`ivr.callbacks`) ------------------------------------------------------

_IN_BATCH = 500
"""Call SIDs per IN (...) list: well under every database's limit on bound parameters."""


@dataclass(frozen=True)
class CallbackTry:
    """One try at an after-hours callback, as its CALLBACKDIAL events tell it."""

    placed_at: datetime
    """When an agent was free and the call was placed (or could not be placed)."""
    ended_at: datetime | None
    """When the try ended without an answer: its final status came (busy, no-answer, failed,
    canceled), or the call could not be placed at all. None while nothing said so."""


@dataclass(frozen=True)
class AfterHoursCallback:
    """A caller who asked, while their team was closed, to be called back; not answered yet."""

    call_sid: str
    reference: str
    queue: str
    language: str
    priority: int
    number: str
    our_number: str | None
    """The number the caller called: the callback is placed from it."""
    asked_at: datetime
    tries: tuple[CallbackTry, ...]
    """The tries so far, oldest first."""
    given_up: bool
    """A CALLBACKGIVEUP was logged: no more tries."""
    callback_code: str | None = None
    """The code the caller was given (the callback opens with it); None on older tickets."""


def after_hours_callbacks(session: Session, *, since: datetime) -> list[AfterHoursCallback]:
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
    with _unit_of_work(session):
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
        assert ticket.queue and ticket.language and ticket.callback_number
        history = events[ticket.call_sid]
        requests.append(
            AfterHoursCallback(
                call_sid=ticket.call_sid,
                reference=ticket.reference,
                queue=ticket.queue,
                language=ticket.language,
                priority=ticket.priority if ticket.priority is not None else 0,
                number=ticket.callback_number,
                our_number=ticket.called,
                asked_at=asked.get(ticket.call_sid, ticket.arrived_at),
                tries=_callback_tries(history),
                given_up=any(e.event == QueueEvent.CALLBACKGIVEUP for e in history),
                callback_code=ticket.callback_code,
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
