"""Retention: the journal records of calls that ended long ago go, their tickets stay as they were, and
a record that comes late for a pruned call is known (a repeat) or refused (new), never folded alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, inspect, select

from ivr.db import Database
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent
from ivr.tickets.events import events_of
from ivr.tickets.models import PrunedCall, Ticket, TicketChangeRow
from ivr.tickets.records import NO_CALL, CallEnd, JournalRecord
from ivr.tickets.retention import Pruned, cutoff, prune, prune_batch, would_prune
from ivr.tickets.writes import Applied, apply_records
from tests.support import journal_record

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=40)
BEFORE = cutoff(NOW, 30)
_references = iter(range(5_000_001, 6_000_000))


def a_call(sid: str, start: datetime, *, ended: bool = True) -> list[JournalRecord]:
    """A call's records: greeted, chose German, queued, (hung up after a minute)."""
    records = [
        journal_record(sid, start, id=f"{sid}-1", caller="+4930123456", reference=None),
        journal_record(
            sid, start + timedelta(seconds=5), id=f"{sid}-2", language="de-DE", menu_step="lang:2"
        ),
        journal_record(
            sid,
            start + timedelta(seconds=9),
            id=f"{sid}-3",
            queue="funds",
            outcome=Outcome.QUEUED,
            queued=True,
            events=(EventRecord(QueueEvent.ENTERQUEUE, position=1),),
        ),
    ]
    if ended:
        end = start + timedelta(seconds=60)
        records.append(journal_record(sid, end, id=f"{sid}-4", end=CallEnd("completed", 60)))
    return records


def apply(database: Database, *records: JournalRecord) -> Applied:
    with database.sessions() as session:
        return apply_records(session, records, new_reference=lambda: str(next(_references)))


def ticket_row(database: Database, sid: str) -> dict[str, Any]:
    """Every column of a call's ticket, bookkeeping included."""
    with database.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.call_sid == sid)).one()
        return {c.key: getattr(ticket, c.key) for c in inspect(Ticket).mapper.column_attrs}


def stored_ids(database: Database, sid: str) -> set[str]:
    with database.sessions() as session:
        return set(
            session.scalars(select(TicketChangeRow.id).where(TicketChangeRow.call_sid == sid))
        )


def record_count(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(TicketChangeRow)) or 0


def prune_all(database: Database) -> Pruned:
    return prune(database, before=BEFORE, now=NOW)


def test_only_the_records_of_calls_that_ended_before_the_cutoff_go_and_tickets_stay_the_same(
    database: Database,
) -> None:
    apply(database, *a_call("CA-old", LONG_AGO))
    apply(database, *a_call("CA-old-open", LONG_AGO, ended=False))  # its status callback was lost
    apply(database, *a_call("CA-recent", NOW - timedelta(days=29)))
    login = journal_record(NO_CALL, LONG_AGO, events=(EventRecord(QueueEvent.AGENTLOGIN),))
    recent_login = journal_record(NO_CALL, NOW, events=(EventRecord(QueueEvent.AGENTLOGIN),))
    apply(database, login, recent_login)
    tickets = {sid: ticket_row(database, sid) for sid in ("CA-old", "CA-old-open", "CA-recent")}
    events = {sid: len(events_of_call(database, sid)) for sid in tickets}

    assert prune_all(database) == Pruned(calls=1, records=5)

    assert stored_ids(database, "CA-old") == set()
    assert stored_ids(database, "CA-old-open") == {f"CA-old-open-{i}" for i in (1, 2, 3)}
    assert stored_ids(database, "CA-recent") == {f"CA-recent-{i}" for i in (1, 2, 3, 4)}
    assert stored_ids(database, NO_CALL) == {recent_login.id}
    assert {sid: ticket_row(database, sid) for sid in tickets} == tickets
    assert {sid: len(events_of_call(database, sid)) for sid in tickets} == events  # events stay
    with database.sessions() as session:
        kept = session.scalars(select(PrunedCall)).one()
    assert (kept.call_sid, kept.pruned_at) == ("CA-old", NOW)
    assert kept.record_ids == [f"CA-old-{i}" for i in (1, 2, 3, 4)]


def events_of_call(database: Database, sid: str) -> list[Any]:
    with database.sessions() as session:
        return list(events_of(session, sid))


def test_pruning_again_deletes_nothing_and_changes_nothing(database: Database) -> None:
    apply(database, *a_call("CA1", LONG_AGO))
    prune_all(database)
    ticket = ticket_row(database, "CA1")

    assert prune_all(database) == Pruned(0, 0)
    assert ticket_row(database, "CA1") == ticket
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PrunedCall)) == 1


def test_one_batch_takes_at_most_its_share_of_calls_and_the_run_takes_them_all(
    database: Database,
) -> None:
    for n in range(5):
        apply(database, *a_call(f"CA{n}", LONG_AGO + timedelta(minutes=n)))

    with database.sessions() as session:
        first = prune_batch(session, before=BEFORE, now=NOW, calls=2)

    assert first == Pruned(calls=2, records=8)
    assert record_count(database) == 12
    assert prune_all(database) == Pruned(calls=3, records=12)
    assert record_count(database) == 0


def test_a_dry_run_counts_what_pruning_deletes(database: Database) -> None:
    apply(database, *a_call("CA-old", LONG_AGO), *a_call("CA-recent", NOW))
    apply(database, journal_record(NO_CALL, LONG_AGO, events=(EventRecord(QueueEvent.AGENTLOGIN),)))

    with database.sessions() as session:
        counted = would_prune(session, before=BEFORE)

    assert record_count(database) == 9  # nothing deleted
    assert counted == prune_all(database) == Pruned(calls=1, records=5)


def test_a_late_repeat_of_a_pruned_record_is_known_and_changes_nothing(
    database: Database,
) -> None:
    records = a_call("CA1", LONG_AGO)
    apply(database, *records)
    prune_all(database)
    ticket = ticket_row(database, "CA1")

    # Twilio's retry of the final status callback, or a spool file that comes back a month late.
    applied = apply(database, records[-1], records[0])

    assert applied == Applied(records=0, tickets=0, refused=())
    assert ticket_row(database, "CA1") == ticket
    assert stored_ids(database, "CA1") == set()


def test_a_late_new_record_for_a_pruned_call_is_refused_not_folded_into_the_ticket(
    database: Database,
) -> None:
    apply(database, *a_call("CA1", LONG_AGO))
    prune_all(database)
    ticket = ticket_row(database, "CA1")
    late = journal_record("CA1", LONG_AGO + timedelta(seconds=30), id="late", satisfaction=5)
    other = a_call("CA2", NOW)[0]

    applied = apply(database, late, other)

    assert applied.refused == ("late",)
    assert (applied.records, applied.tickets) == (1, 1)  # the other call's record is written
    assert ticket_row(database, "CA1") == ticket  # not folded from the late record alone
    assert stored_ids(database, "CA1") == set()
    assert stored_ids(database, "CA2") == {"CA2-1"}


def test_a_late_record_for_a_pruned_call_whose_ticket_was_deleted_makes_no_new_ticket(
    database: Database,
) -> None:
    records = a_call("CA1", LONG_AGO)
    apply(database, *records)
    prune_all(database)
    with database.session() as session:
        session.execute(delete(Ticket).where(Ticket.call_sid == "CA1"))

    applied = apply(database, records[-1], journal_record("CA1", LONG_AGO, id="late"))

    assert applied == Applied(records=0, tickets=0, refused=("late",))
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert stored_ids(database, "CA1") == set()
