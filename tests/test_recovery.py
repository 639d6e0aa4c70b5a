"""After Redis lost its data: kept callbacks and agent logins come back from the database, once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import redis
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.recovery import rebuild_if_lost
from ivr.services import Services
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent
from ivr.tickets.records import NO_CALL, CallEnd
from tests.conftest import MONDAY_AFTERNOON
from tests.support import journal_record, write_records

E = QueueEvent


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["ivr"]
    return found


def kept_callback(database: Database, sid: str, asked: datetime, *, dialled: bool = False) -> None:
    """A caller who joined `funds`, asked to be called back keeping their place, and hung up."""
    joined = asked - timedelta(minutes=3)
    records = [
        journal_record(sid, joined - timedelta(seconds=20), reference="4821093", called="+1800"),
        journal_record(
            sid,
            joined,
            language="en-US",
            queue="funds",
            priority=30,
            outcome=Outcome.QUEUED,
            queued=True,
            events=(EventRecord(E.ENTERQUEUE, "funds", "en-US"),),
        ),
        journal_record(
            sid,
            asked,
            outcome=Outcome.CALLBACK,
            callback_number="+14155550100",
            callback_code="0472",
            events=(EventRecord(E.CALLBACK, "funds", "en-US"),),
        ),
        journal_record(sid, asked + timedelta(seconds=5), end=CallEnd("completed", 200)),
    ]
    if dialled:
        records.append(
            journal_record(
                sid,
                asked + timedelta(minutes=1),
                events=(EventRecord(E.CALLBACKDIAL, data={"result": "dialled"}),),
            )
        )
    write_records(database, *records)


def agent_event(database: Database, at: datetime, event: QueueEvent, agent: str) -> None:
    write_records(database, journal_record(NO_CALL, at, events=(EventRecord(event, agent=agent),)))


def test_a_kept_callback_gets_its_place_back_with_its_arrival_time_once(
    app: Flask, database: Database, redis_client: redis.Redis
) -> None:
    kept_callback(database, "CA-kept", MONDAY_AFTERNOON - timedelta(minutes=10))
    s = services_of(app)

    assert rebuild_if_lost(s)
    place = s.queue.place("CA-kept")
    assert place is not None and (place.queue, place.language, place.priority) == (
        "funds",
        "en-US",
        30,
    )
    assert place.enqueued_at == MONDAY_AFTERNOON - timedelta(minutes=13)
    s.queue.agent_available("emma", [("funds", "en-US")])
    handed = s.queue.claim_next("emma")
    # The callback still opens with the code the caller was told.
    assert handed is not None and handed.callback_code == "0472"
    assert not rebuild_if_lost(s)  # once per Redis lifetime

    redis_client.flushdb()  # lost again
    assert rebuild_if_lost(s)


def test_callbacks_placed_already_or_older_than_a_day_stay_with_the_ticket(
    app: Flask, database: Database
) -> None:
    kept_callback(database, "CA-dialled", MONDAY_AFTERNOON - timedelta(minutes=10), dialled=True)
    kept_callback(database, "CA-old", MONDAY_AFTERNOON - timedelta(hours=25))
    s = services_of(app)

    assert rebuild_if_lost(s)
    assert s.queue.place("CA-dialled") is None and s.queue.place("CA-old") is None


def test_agents_whose_last_word_was_a_login_are_logged_in_again(
    app: Flask, database: Database, clock: FrozenClock
) -> None:
    hour = timedelta(hours=1)
    agent_event(database, MONDAY_AFTERNOON - hour, E.AGENTLOGIN, "emma")
    agent_event(database, MONDAY_AFTERNOON - 2 * hour, E.AGENTLOGIN, "anna")
    agent_event(database, MONDAY_AFTERNOON - hour, E.AGENTLOGOFF, "anna")
    agent_event(database, MONDAY_AFTERNOON - 30 * hour, E.AGENTLOGIN, "lucas")
    s = services_of(app)

    assert rebuild_if_lost(s)
    assert s.queue.agent_statuses(["emma", "anna", "lucas"]) == {
        "emma": "available",
        "anna": "offline",
        "lucas": "offline",
    }


def test_a_rebuild_that_fails_is_tried_again(app: Flask, database: Database) -> None:
    s = services_of(app)
    live = s.db
    s.db = Database("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(SQLAlchemyError):
        rebuild_if_lost(s)
    s.db = live
    kept_callback(database, "CA-kept", MONDAY_AFTERNOON - timedelta(minutes=10))
    assert rebuild_if_lost(s)
    assert s.queue.place("CA-kept") is not None
