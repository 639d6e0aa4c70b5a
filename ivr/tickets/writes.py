"""Changing tickets: the writer's applying of journal records, and leasing reference blocks.

Webhooks never call these: they journal what they learned (`ivr.tickets.journal`) and a writer
(`ivr.tickets.writer`) applies the records here in batches (`apply_records`). Every function is one
unit of work (`ivr.tickets.unit_of_work`) on the session it is given: it commits before returning
(and rolls back if it raises), so callers pass a fresh `Database.sessions()` session or one from
`Database.session()`. What reads tickets is in `ivr.tickets.reads`.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ivr.db import insert_for
from ivr.tickets.models import (
    PrunedCall,
    QueueEventRow,
    ReferenceBlock,
    Ticket,
    TicketChangeRow,
)
from ivr.tickets.projection import EventFields, TicketFields, agent_events, in_order, project
from ivr.tickets.records import NO_CALL, BadRecord, JournalRecord, NewerRecord
from ivr.tickets.unit_of_work import unit_of_work

# The name these lines have always been logged under (log filters and alerts match it), kept when
# service.py became writes.py.
log = logging.getLogger("ivr.tickets.service")

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
    with unit_of_work(session):
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
    with unit_of_work(session):
        holder = f"{socket.gethostname()}:{os.getpid()}"[:128]
        statement = insert(ReferenceBlock).values(leased_at=now, leased_by=holder)
        block: int = session.execute(statement.returning(ReferenceBlock.id)).scalar_one()
        return block
