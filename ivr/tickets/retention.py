"""Retention for `ticket_changes`: the journal records of calls that ended long ago are deleted.

A ticket is folded from all of its call's records (`projection.project`), so records are pruned a
whole call at a time, and only for a call whose ticket ended (its final status callback came) before
the cutoff; the ticket itself is never touched. What is kept of the call's records is their ids, in
`pruned_calls` (about 330 bytes a call instead of about 3,100 for its 5 records), and the writer
reads them under the ticket's row lock (`writes.apply_records`):

- a late repeat of a pruned record (a retried webhook, a spool file or `ivr journal replay` delivering
  it again) is known as applied and changes nothing;
- a late *new* record for a pruned call is refused: the writer sets it aside with the reason, like any
  record no database takes (`ivr:{journal}:rejected`, or `rejected.txt`), and counts it in `/healthz`.
  It is never folded into the ticket, which could not be recomputed from the kept ids alone.

Agent records (logins and logouts, which belong to no call) are deleted once older than the cutoff:
their queue events stay, and a late repeat of one stores its row again and adds no event (the events'
own key, record id and place, is unique).

`ivr tickets show` of a pruned ticket shows its queue events, not its menu keys: those were in the
records. Queue events and tickets are kept; this prunes only the records they were made from. An
after-hours callback whose call's records are gone is timed from the call's arrival instead of the
moment the caller asked (minutes earlier); that only happens with a retention shorter than the
rules' `callback_keep_days`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ivr.db import Database
from ivr.tickets.models import PrunedCall, Ticket, TicketChangeRow
from ivr.tickets.records import NO_CALL
from ivr.tickets.unit_of_work import unit_of_work

BATCH_CALLS = 200
"""Calls pruned in one transaction: about 1,000 records (5 a call on the shipped rules), so no
statement holds many rows and no lock is held for long."""
BATCH_AGENT_RECORDS = 1000
"""Agent records deleted in one transaction."""


@dataclass(frozen=True)
class Pruned:
    """What a pruning pass deleted (or, dry, would delete)."""

    calls: int
    """Calls whose records were all deleted (their ids kept in `pruned_calls`)."""
    records: int
    """Records deleted: the calls' and the agents'."""

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.calls + other.calls, self.records + other.records)


def cutoff(now: datetime, days: int) -> datetime:
    """Records of calls that ended before this instant are pruned."""
    return now - timedelta(days=days)


def prune_batch(
    session: Session,
    *,
    before: datetime,
    now: datetime,
    calls: int = BATCH_CALLS,
    agent_records: int = BATCH_AGENT_RECORDS,
) -> Pruned:
    """Delete the records of at most `calls` calls whose ticket ended before `before`, and at most
    `agent_records` agent records older than that, in one transaction; idempotent.

    Each call is taken under its ticket's row lock, skipping a ticket a writer holds now (the next
    pass takes it), and its record ids are kept in `pruned_calls`, stamped `now`."""
    with unit_of_work(session):
        candidates = list(
            session.scalars(
                select(TicketChangeRow.call_sid)
                .join(Ticket, Ticket.call_sid == TicketChangeRow.call_sid)
                .where(TicketChangeRow.at < before, Ticket.ended_at < before)
                .distinct()
                .limit(calls)
            )
        )
        locked = _lock_ended(session, candidates, before)
        deleted = _delete_records(session, locked)
        _keep_ids(session, deleted, now)
        agents = select(TicketChangeRow.id).where(
            TicketChangeRow.call_sid == NO_CALL, TicketChangeRow.at < before
        )
        agent_ids = list(session.scalars(agents.limit(agent_records)))
        if agent_ids:
            session.execute(delete(TicketChangeRow).where(TicketChangeRow.id.in_(agent_ids)))
    records = sum(len(ids) for ids in deleted.values()) + len(agent_ids)
    return Pruned(len(deleted), records)


def prune(
    database: Database, *, before: datetime, now: datetime, max_batches: int = 1000
) -> Pruned:
    """Prune in batches (`prune_batch`, each its own transaction) until one finds nothing to delete,
    or after `max_batches`; what was deleted in all."""
    total = Pruned(0, 0)
    for _ in range(max_batches):
        with database.sessions() as session:
            done = prune_batch(session, before=before, now=now)
        if not done.records:
            break
        total += done
    return total


def would_prune(session: Session, *, before: datetime) -> Pruned:
    """What `prune` would delete now (`ivr tickets prune --dry-run`); changes nothing."""
    with unit_of_work(session):
        ended = select(Ticket.call_sid).where(Ticket.ended_at < before)
        calls, call_records = session.execute(
            select(func.count(func.distinct(TicketChangeRow.call_sid)), func.count()).where(
                TicketChangeRow.call_sid.in_(ended)
            )
        ).one()
        agent_records = session.scalar(
            select(func.count()).where(
                TicketChangeRow.call_sid == NO_CALL, TicketChangeRow.at < before
            )
        )
    return Pruned(int(calls), int(call_records) + int(agent_records or 0))


def _lock_ended(session: Session, calls: Sequence[str], before: datetime) -> list[str]:
    if not calls:
        return []
    query = (
        select(Ticket.call_sid)
        .where(Ticket.call_sid.in_(calls), Ticket.ended_at < before)
        .order_by(Ticket.call_sid)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def _delete_records(session: Session, calls: Sequence[str]) -> dict[str, list[str]]:
    deleted: dict[str, list[str]] = defaultdict(list)
    if not calls:
        return deleted
    rows = session.execute(
        delete(TicketChangeRow)
        .where(TicketChangeRow.call_sid.in_(calls))
        .returning(TicketChangeRow.call_sid, TicketChangeRow.id)
    )
    for call_sid, record_id in rows:
        deleted[call_sid].append(record_id)
    return deleted


def _keep_ids(session: Session, deleted: dict[str, list[str]], now: datetime) -> None:
    if not deleted:
        return
    kept = {
        row.call_sid: row
        for row in session.scalars(select(PrunedCall).where(PrunedCall.call_sid.in_(list(deleted))))
    }
    for call_sid, ids in deleted.items():
        row = kept.get(call_sid)
        if row is None:
            session.add(PrunedCall(call_sid=call_sid, pruned_at=now, record_ids=sorted(ids)))
        else:  # pruned before, and records stored since (see `writes.apply_records`)
            row.record_ids = sorted({*row.record_ids, *ids})
            row.pruned_at = now
