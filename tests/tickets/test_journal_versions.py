"""Journal records across releases: what a newer release wrote waits for a newer writer, never in
the rejected stream; and what an older release set aside is applied once a writer can read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import update

from ivr.db import Database
from ivr.services import services
from ivr.tickets import records
from ivr.tickets import writer as writer_module
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent
from ivr.tickets.journal import REJECTED_KEY, STREAM_KEY, Journal, newer_key
from ivr.tickets.models import TicketChangeRow
from ivr.tickets.records import JournalRecord
from tests.support import journal_record, ticket_of, write_records
from tests.test_metrics import scrape, value
from tests.tickets.test_journal import unreachable_redis
from tests.tickets.test_writer import NOW, a_call, journaled, refuse_records_of, writer_for


@pytest.fixture
def journal(redis_client: redis.Redis, tmp_path: Path) -> Journal:
    return Journal(redis_client, tmp_path / "spool")


def renamed_event(record: JournalRecord, name: str) -> str:
    """The record's line with its event renamed: what a newer release writes for an event this
    code does not know, still as version 1 (it did not bump: nothing else changed)."""
    body = json.loads(record.to_json())
    body["change"]["events"][0]["event"] = name
    return json.dumps(body)


def as_version(record: JournalRecord, version: int) -> str:
    body = json.loads(record.to_json())
    body["v"] = version
    return json.dumps(body)


def callback_queued(sid: str) -> JournalRecord:
    return journal_record(
        sid,
        NOW,
        caller="+14155550100",
        outcome=Outcome.CALLBACK,
        events=(EventRecord(QueueEvent.CALLBACKQUEUED, queue="funds", data={"try": "1"}),),
    )


def entries(client: redis.Redis, key: str) -> list[dict[str, str]]:
    found: Any = client.xrange(key, "-", "+")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in found]


def test_records_a_newer_release_wrote_wait_for_it_and_are_not_rejected(
    journal: Journal, database: Database, redis_client: redis.Redis
) -> None:
    journaled(journal, *a_call("CA1"))
    newer_event = renamed_event(callback_queued("CA2"), "CALLBACKMOVED")
    newer_version = as_version(callback_queued("CA3"), 2)
    for line in (newer_event, newer_version):
        redis_client.xadd(STREAM_KEY, {"r": line})
    writer = writer_for(journal, database)

    writer.drain()

    assert ticket_of(database, "CA1").outcome is Outcome.ABANDONED
    assert writer.status.rejected == 0
    backlog = journal.backlog()
    assert (backlog.stream, backlog.rejected, backlog.newer) == (0, 0, {2: 2})
    assert [e["r"] for e in entries(redis_client, newer_key(2))] == [newer_event, newer_version]


def test_a_record_held_for_version_2_that_this_code_reads_after_all_is_applied(
    journal: Journal, database: Database, redis_client: redis.Redis
) -> None:
    # An older writer held a record naming CALLBACKQUEUED (new to it) for a newer process; this
    # code knows the name though it reads version 1 only: the release that wrote it did not bump.
    still_newer = as_version(callback_queued("CA5"), 2)
    journal.stream.hold_lines([(callback_queued("CA4").to_json(), 2), (still_newer, 2)])
    writer = writer_for(journal, database)

    assert writer.drain() == 1

    assert ticket_of(database, "CA4").outcome is Outcome.CALLBACK
    assert [e["r"] for e in entries(redis_client, newer_key(2))] == [still_newer]
    assert journal.backlog().newer == {2: 1}


def test_records_an_older_release_rejected_are_applied_once_this_one_reads_them(
    journal: Journal, database: Database, redis_client: redis.Redis
) -> None:
    readable = callback_queued("CA6")
    reason = "unreadable journal record: ValueError(\"'CALLBACKQUEUED' is not a valid QueueEvent\")"
    redis_client.xadd(REJECTED_KEY, {"r": readable.to_json(), "reason": reason})
    redis_client.xadd(REJECTED_KEY, {"r": "not a record", "reason": "unreadable"})
    newer = as_version(callback_queued("CA7"), 3)
    redis_client.xadd(REJECTED_KEY, {"r": newer, "reason": "not a version 1 journal record"})
    writer = writer_for(journal, database)

    assert writer.drain() == 1

    ticket = ticket_of(database, "CA6")
    assert ticket.outcome is Outcome.CALLBACK
    assert [e["r"] for e in entries(redis_client, REJECTED_KEY)] == ["not a record"]
    assert [e["r"] for e in entries(redis_client, newer_key(3))] == [newer]
    # Rejected again by an older writer: a writer applies it again, which is applying it once.
    redis_client.xadd(REJECTED_KEY, {"r": readable.to_json(), "reason": reason})
    assert writer_for(journal, database, "writer-2").drain() == 1
    assert ticket_of(database, "CA6").reference == ticket.reference
    assert [e["r"] for e in entries(redis_client, REJECTED_KEY)] == ["not a record"]


def test_a_writer_that_reads_version_2_takes_records_held_for_it_and_new_ones(
    journal: Journal, database: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release that bumps to version 2 (simulated): its writer reads the streams up to v3.
    monkeypatch.setattr(records, "READS_UP_TO", 2)
    monkeypatch.setattr(writer_module, "NEWER_READ", (newer_key(2), newer_key(3)))
    journal.stream.hold_lines([(as_version(callback_queued("CA8"), 2), 2)])
    redis_client.xadd(STREAM_KEY, {"r": as_version(callback_queued("CA9"), 2)})
    waits = as_version(callback_queued("CA10"), 3)
    redis_client.xadd(STREAM_KEY, {"r": waits})

    assert writer_for(journal, database).drain() == 2

    assert ticket_of(database, "CA8").outcome is Outcome.CALLBACK
    assert ticket_of(database, "CA9").outcome is Outcome.CALLBACK
    assert journal.backlog().newer == {3: 1}


def test_spooled_records_of_a_newer_release_stay_on_disk_while_redis_is_away(
    tmp_path: Path, database: Database, redis_client: redis.Redis
) -> None:
    (tmp_path / "spool").mkdir()
    dead = tmp_path / "spool" / "web-1-4242-dead.jsonl"
    newer = renamed_event(callback_queued("CA11"), "CALLBACKMOVED")
    dead.write_text("".join(r.to_json() + "\n" for r in a_call("CA12")) + newer + "\n")
    away = Journal(unreachable_redis(), tmp_path / "spool")

    writer_for(away, database).drain()

    assert ticket_of(database, "CA12").outcome is Outcome.ABANDONED
    assert dead.read_text() == newer + "\n"  # the newer release's record, and only it, waits
    assert writer_for(away, database).drain() == 0  # and is not applied nor dropped meanwhile
    assert dead.read_text() == newer + "\n"

    back = Journal(redis_client, tmp_path / "spool")
    writer_for(back, database).drain()
    assert not dead.exists()
    assert [e["r"] for e in entries(redis_client, newer_key(2))] == [newer]
    assert not (tmp_path / "spool" / "rejected.txt").exists()


def test_health_and_metrics_say_how_many_records_wait_for_a_newer_release(
    app: Flask, redis_client: redis.Redis
) -> None:
    assert app.test_client().get("/healthz").get_json()["journal"]["waiting_for_newer"] == {}
    redis_client.xadd(STREAM_KEY, {"r": as_version(callback_queued("CA13"), 4)})
    with app.app_context():
        journal = services().journal
        delivery = journal.stream.read("writer-1", 10)[0]
        assert delivery.newer == 4 and delivery.record is None
        journal.stream.hold(delivery, 4)

    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok"  # a rolling upgrade is no fault
    assert body["journal"]["waiting_for_newer"] == {"4": 1}
    assert value(scrape(app), "ivr_journal_newer_entries", version="4") == 1


def test_what_the_database_refuses_again_stays_in_the_rejected_stream_for_an_operator(
    journal: Journal, database: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison, fine = callback_queued("CA-poison"), callback_queued("CA14")
    for record in (poison, fine):
        redis_client.xadd(REJECTED_KEY, {"r": record.to_json(), "reason": "some older verdict"})
    broken = "not a record"
    journal.stream.hold_lines([(broken, 2)])  # nothing a newer release would read either
    refuse_records_of(monkeypatch, "CA-poison")
    assert writer_for(journal, database).drain() == 1

    assert ticket_of(database, "CA14").outcome is Outcome.CALLBACK
    rejected = entries(redis_client, REJECTED_KEY)
    assert [e["r"] for e in rejected] == [poison.to_json(), broken]
    assert rejected[1]["reason"].startswith("unreadable journal record")
    assert journal.backlog().newer == {}


def test_a_call_a_newer_release_wrote_to_goes_on_being_written_by_this_one(
    journal: Journal, database: Database
) -> None:
    first, *rest = a_call("CA15")
    write_records(database, first)
    with database.sessions() as session, session.begin():  # as a version 2 release stores it
        row = update(TicketChangeRow).where(TicketChangeRow.id == first.id)
        session.execute(row.values(body=as_version(first, 2)))
    journaled(journal, *rest)

    assert writer_for(journal, database).drain() == 3  # no crash on the stored version 2 record

    ticket = ticket_of(database, "CA15")
    assert ticket.menu_path == ["language:2"] and ticket.outcome is Outcome.ABANDONED
