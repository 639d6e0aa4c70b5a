"""The ticket writer: the journal reaches the database in batches, whatever the database is doing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.tickets import writes
from ivr.tickets.changes import Outcome
from ivr.tickets.journal import Journal
from ivr.tickets.records import CallEnd, JournalRecord
from ivr.tickets.references import References
from ivr.tickets.retention import cutoff, prune
from ivr.tickets.writer import StoreUnavailable, TicketWriter
from tests.faults import free_port
from tests.support import journal_record, ticket_of
from tests.tickets.test_journal import unreachable_redis

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def writer_for(journal: Journal, database: Database, name: str = "writer-1") -> TicketWriter:
    def lease() -> int:
        with database.sessions() as session:
            return writes.lease_reference_block(session, now=NOW)

    return TicketWriter(journal, database, References(lease), FrozenClock(NOW), consumer=name)


def a_call(sid: str, start: int = 0) -> list[JournalRecord]:
    at = NOW + timedelta(seconds=start)
    return [
        journal_record(sid, at, reference=None, caller="+14155550100"),
        journal_record(sid, at + timedelta(seconds=5), language="en-US", menu_step="language:2"),
        journal_record(
            sid, at + timedelta(seconds=9), queue="funds", outcome=Outcome.QUEUED, queued=True
        ),
        journal_record(sid, at + timedelta(seconds=60), end=CallEnd("completed", 60)),
    ]


@pytest.fixture
def journal(redis_client: redis.Redis, tmp_path: Path) -> Journal:
    return Journal(redis_client, tmp_path / "spool")


def journaled(journal: Journal, *records: JournalRecord) -> None:
    """Records as webhooks leave them: spooled, then shipped to the stream (`ivr-journal`)."""
    for record in records:
        journal.append(record)
    journal.forward_spool()


def test_drain_writes_every_waiting_record_and_empties_the_stream(
    journal: Journal, database: Database
) -> None:
    for sid in ("CA1", "CA2"):
        journaled(journal, *a_call(sid))
    writer = writer_for(journal, database)

    assert writer.drain() == 8
    for sid in ("CA1", "CA2"):
        ticket = ticket_of(database, sid)
        assert ticket.menu_path == ["language:2"]
        assert ticket.outcome is Outcome.ABANDONED and ticket.wait_seconds == 51
        assert len(ticket.reference) == 7
    assert journal.backlog().stream == 0
    assert writer.drain() == 0


def test_while_the_database_is_down_records_wait_and_are_written_when_it_is_back(
    journal: Journal, database: Database
) -> None:
    journaled(journal, *a_call("CA1"))
    writer = writer_for(journal, database)
    live = writer.db
    writer.db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")

    with pytest.raises(StoreUnavailable, match="unreachable"):
        writer.step()
    assert journal.backlog().stream == 4  # nothing acknowledged

    writer.db = live
    assert writer.drain() == 4
    assert ticket_of(database, "CA1").outcome is Outcome.ABANDONED
    assert journal.backlog().stream == 0


def test_a_batch_that_failed_midway_is_read_again_by_the_same_writer(
    journal: Journal, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    journaled(journal, *a_call("CA1"))
    writer = writer_for(journal, database)
    real = writes.apply_records
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writes, "apply_records", flaky)
    with pytest.raises(StoreUnavailable):
        writer.step()
    assert writer.drain() == 4
    assert ticket_of(database, "CA1").menu_path == ["language:2"]


def test_nothing_is_written_while_the_schema_is_behind(
    journal: Journal, empty_database: Database, database: Database
) -> None:
    journaled(journal, a_call("CA1")[0])
    writer = writer_for(journal, empty_database)

    with pytest.raises(StoreUnavailable, match="run `ivr db upgrade`"):
        writer.step()
    assert journal.backlog().stream == 1

    empty_database.upgrade()
    assert writer.step() == 1


def test_spooled_records_are_written_straight_from_disk_when_redis_is_away(
    tmp_path: Path, database: Database
) -> None:
    away = Journal(unreachable_redis(), tmp_path / "spool")
    for record in a_call("CA1"):
        assert away.append(record) == "spool"
    writer = writer_for(away, database)

    # The writer's own process spooled them: it seals its file and drains it.
    assert writer.step() == 0
    assert writer.drain() == 4
    assert ticket_of(database, "CA1").outcome is Outcome.ABANDONED
    assert away.spool.files() == []


def test_a_dead_processs_spool_is_drained_by_another_writer(
    tmp_path: Path, database: Database, journal: Journal
) -> None:
    (tmp_path / "spool").mkdir()
    dead = tmp_path / "spool" / "web-1-4242-dead.jsonl"
    dead.write_text("".join(r.to_json() + "\n" for r in a_call("CA7")))

    assert writer_for(journal, database).drain() == 4
    assert ticket_of(database, "CA7").menu_path == ["language:2"]
    assert not dead.exists()


def refuse_records_of(monkeypatch: pytest.MonkeyPatch, call_sid: str) -> None:
    """The database refuses (a check constraint) every batch holding a record of `call_sid`."""
    real = writes.apply_records

    def refuse(session: object, records: list[JournalRecord], **kw: object) -> object:
        if any(r.call_sid == call_sid for r in records):
            raise IntegrityError("INSERT", {}, Exception("violates check constraint"))
        return real(session, records, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(writes, "apply_records", refuse)


def test_unreadable_and_refused_records_are_set_aside_and_the_rest_is_written(
    journal: Journal, database: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = journal_record("CA-poison", NOW, menu_step="x")
    journaled(journal, *a_call("CA1"), poison)
    redis_client.xadd("ivr:{journal}", {"r": "not a record"})
    refuse_records_of(monkeypatch, "CA-poison")
    writer = writer_for(journal, database)
    writer.drain()

    assert ticket_of(database, "CA1").outcome is Outcome.ABANDONED
    assert writer.status.rejected == 2
    backlog = journal.backlog()
    assert (backlog.stream, backlog.rejected) == (0, 2)


def test_several_writers_at_once_write_every_ticket_once(
    journal: Journal, database: Database
) -> None:
    calls = [f"CA{i}" for i in range(30)]
    for i, sid in enumerate(calls):
        journaled(journal, *a_call(sid, start=i))
    writers = [writer_for(journal, database, f"writer-{i}") for i in range(3)]
    for writer in writers:
        writer.batch_size = 7
    errors: list[BaseException] = []

    def run(writer: TicketWriter) -> None:
        try:
            writer.drain()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    assert sum(w.status.applied for w in writers) == 120
    for sid in calls:
        ticket = ticket_of(database, sid)
        assert ticket.menu_path == ["language:2"] and ticket.ended_at is not None
    references = {ticket_of(database, sid).reference for sid in calls}
    assert len(references) == 30


def test_the_writer_loop_backs_off_while_the_database_is_away_and_stops_when_told(
    journal: Journal, database: Database
) -> None:
    journaled(journal, a_call("CA1")[0])
    writer = writer_for(journal, Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x"))
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    try:
        for _ in range(100):
            if writer.status.problem:
                break
            stop.wait(0.05)
        assert writer.status.running
        assert writer.status.problem and "unreachable" in writer.status.problem
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and not writer.status.running
    assert journal.backlog().stream == 1


def test_entries_read_while_redis_stalled_are_read_again_by_the_same_writer(
    journal: Journal, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis took the read (the entries are now this writer's, pending) but its answer never came.
    journaled(journal, *a_call("CA1"))
    writer = writer_for(journal, database)
    writer.step()  # nothing pending yet: remembers that
    journaled(journal, *a_call("CA2"))
    real_read = journal.stream.read

    def answer_lost(*args: object, **kwargs: object) -> object:
        real_read(*args, **kwargs)  # type: ignore[arg-type]
        raise RedisConnectionError("Timeout reading from socket")

    monkeypatch.setattr(journal.stream, "read", answer_lost)
    assert writer.step() == 0
    monkeypatch.setattr(journal.stream, "read", real_read)

    writer.drain()
    assert ticket_of(database, "CA2").menu_path == ["language:2"]
    assert journal.backlog().stream == 0


def test_a_late_record_for_a_pruned_call_is_set_aside_with_the_reason_and_a_repeat_is_not(
    journal: Journal, database: Database, redis_client: redis.Redis
) -> None:
    call = a_call("CA1")
    journaled(journal, *call)
    writer = writer_for(journal, database)
    writer.drain()
    later = NOW + timedelta(days=31)
    assert prune(database, before=cutoff(later, 30), now=later).calls == 1
    ticket = ticket_of(database, "CA1")
    late = journal_record("CA1", NOW + timedelta(seconds=30), satisfaction=5)

    journaled(journal, call[-1], late)  # a retried status callback, and a record never seen
    writer.drain()

    assert (writer.status.applied, writer.status.rejected) == (4 + 1, 1)
    assert journal.backlog().rejected == 1
    (_, fields), *_ = redis_client.xrange("ivr:{journal}:rejected")
    assert fields[b"reason"].decode() == writes.REFUSED_PRUNED
    assert JournalRecord.from_json(fields[b"r"]).id == late.id  # kept whole for an operator
    again = ticket_of(database, "CA1")
    assert (again.satisfaction, again.updated_at) == (None, ticket.updated_at)
