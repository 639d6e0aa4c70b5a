"""Queue events: logged once per journal record, a call's history in order, per-queue statistics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, inspect, select

from ivr.db import Database
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.events import (
    TALK_SAMPLES,
    QueueStats,
    events_of,
    incident_counts,
    line_histories,
    queue_stats,
    speech_counts,
)
from ivr.tickets.models import QueueEventRow, Ticket
from ivr.tickets.records import NO_CALL, CallEnd
from tests.support import downgrade, journal_record, write_records

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = datetime(2026, 3, 2, tzinfo=UTC)
E = QueueEvent


def _later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def _count(database: Database, model: type[QueueEventRow] | type[Ticket]) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _history(database: Database, call_sid: str) -> list[QueueEventRow]:
    with database.sessions() as session:
        return events_of(session, call_sid)


def _log(
    database: Database, call_sid: str, at: datetime, *events: EventRecord, **change: Any
) -> None:
    write_records(database, journal_record(call_sid, at, events=events, **change))


# --- logging ---------------------------------------------------------------------------------


def test_a_record_delivered_again_logs_its_events_once(database: Database) -> None:
    record = journal_record(
        "CA1",
        NOW,
        id="idem-1",
        queue="funds",
        queued=True,
        outcome=Outcome.QUEUED,
        events=(EventRecord(E.ENTERQUEUE, queue="funds", language="en-US", position=3),),
    )
    for _ in range(2):
        write_records(database, record)

    (row,) = _history(database, "CA1")
    assert (row.event, row.queue, row.language, row.position, row.at) == (
        E.ENTERQUEUE,
        "funds",
        "en-US",
        3,
        NOW,
    )


def test_two_records_with_the_same_events_log_both(database: Database) -> None:
    ring = EventRecord(E.RINGNOANSWER, agent="alice")
    _log(database, "CA1", NOW, ring)
    _log(database, "CA1", _later(20), ring)

    assert [row.at for row in _history(database, "CA1")] == [NOW, _later(20)]


def test_events_of_one_record_keep_their_order(database: Database) -> None:
    _log(
        database,
        "CA1",
        NOW,
        EventRecord(E.EXITWITHKEY, data={"key": "2", "to": "callback"}),
        EventRecord(E.CALLBACK),
    )

    assert [row.event for row in _history(database, "CA1")] == [E.EXITWITHKEY, E.CALLBACK]


# --- a call's history ------------------------------------------------------------------------


def test_events_of_a_call_in_order_linked_to_its_ticket(database: Database) -> None:
    _log(
        database,
        "CA1",
        NOW,
        EventRecord(E.ENTERQUEUE, queue="funds", position=1),
        EventRecord(E.CALLBACK, queue="funds", data={"number": "+4917012345"}),
        queue="funds",
        language="de-DE",
        queued=True,
    )
    _log(database, "CA1", _later(300), EventRecord(E.CALLBACKDIAL))
    _log(database, "CA1", _later(310), EventRecord(E.CONNECT, wait_seconds=310))
    _log(database, "CA2", _later(5), EventRecord(E.ENTERQUEUE, queue="funds"))
    with database.sessions() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.call_sid == "CA1"))

    rows = _history(database, "CA1")

    assert [row.event for row in rows] == [E.ENTERQUEUE, E.CALLBACK, E.CALLBACKDIAL, E.CONNECT]
    assert [row.at for row in rows] == [NOW, NOW, _later(300), _later(310)]
    assert {row.ticket_id for row in rows} == {ticket_id}
    assert {row.call_sid for row in rows} == {"CA1"}
    # Events that name no queue or language are about the ones on the call's ticket.
    assert {(row.queue, row.language) for row in rows} == {("funds", "de-DE")}
    assert rows[1].data == {"number": "+4917012345"}
    assert rows[0].data == {}
    assert rows[3].wait_seconds == 310
    assert all(row.at.tzinfo is UTC for row in rows)


def test_agent_events_belong_to_no_call_and_take_nothing_from_a_ticket(
    database: Database,
) -> None:
    _log(database, "CA-line", NOW, queue="operator")
    _log(database, NO_CALL, NOW, EventRecord(E.AGENTLOGIN, agent="alice", data={"ext": "101"}))
    _log(database, "CA-line", _later(9), EventRecord(E.AGENTLOGOFF, agent="bob"))

    (login,) = _history(database, NO_CALL)
    assert (login.event, login.agent, login.ticket_id, login.queue) == (
        E.AGENTLOGIN,
        "alice",
        None,
        None,
    )
    (logoff,) = _history(database, "CA-line")
    assert logoff.ticket_id is not None
    assert logoff.queue is None


def test_deleting_a_ticket_keeps_its_events(database: Database) -> None:
    _log(database, "CA1", NOW, EventRecord(E.ENTERQUEUE, queue="funds"))
    with database.session() as session:
        session.execute(delete(Ticket))

    (row,) = _history(database, "CA1")
    assert row.ticket_id is None
    assert row.event is E.ENTERQUEUE


def test_event_records_are_frozen_and_hashable() -> None:
    data = {"key": "1", "to": "callback"}
    record = EventRecord(E.EXITWITHKEY, queue="funds", data=data)
    data["to"] = "voicemail"

    assert record.data == {"key": "1", "to": "callback"}
    assert record == EventRecord(E.EXITWITHKEY, queue="funds", data={"to": "callback", "key": "1"})
    assert len({record, EventRecord(E.EXITWITHKEY, queue="funds", data=dict(record.data))}) == 1
    assert hash(TicketChange(events=(record,))) == hash(TicketChange(events=(record,)))
    with pytest.raises(TypeError):
        record.data["key"] = "2"  # type: ignore[index]
    assert EventRecord("CONNECT").event is E.CONNECT  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EventRecord("HANGUP")  # type: ignore[arg-type]


# --- statistics ------------------------------------------------------------------------------


def _at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def _script_day(database: Database) -> None:
    """A day of two queues, journaled call by call the way the webhooks would."""
    funds_waits = [10, 20, 30, 70, 90, 200]
    for i in range(10):
        call = f"CA-funds-{i}"
        # Joining the queue updates the ticket; the later events (dispatch, status callbacks)
        # do not name the queue and are counted under the ticket's.
        _log(
            database,
            call,
            _at(9, i),
            EventRecord(E.ENTERQUEUE, queue="funds", position=i + 1),
            queue="funds",
            queued=True,
            outcome=Outcome.QUEUED,
        )
        if i < 6:
            ended = E.COMPLETECALLER if i % 2 else E.COMPLETEAGENT
            talk = EventRecord(ended, agent="alice", talk_seconds=100 * (i + 1))
            connect = EventRecord(E.CONNECT, agent="alice", wait_seconds=funds_waits[i])
            _log(database, call, _at(10, i), connect)
            _log(database, call, _at(11, i), talk)
        elif i < 9:
            _log(database, call, _at(10, i), EventRecord(E.ABANDON, position=1, wait_seconds=300))
        else:
            key = EventRecord(E.EXITWITHKEY, data={"key": "1", "to": "callback"})
            _log(database, call, _at(10, i), key, EventRecord(E.CALLBACK))
    _log(database, "CA-full", _at(12), EventRecord(E.EXITFULL, queue="funds"))

    for i, wait in enumerate([5, 45, 85]):
        _log(
            database,
            f"CA-sec-{i}",
            _at(14, i),
            EventRecord(E.ENTERQUEUE, queue="security"),
            EventRecord(E.CONNECT, queue="security", wait_seconds=wait),
        )
    _log(
        database,
        "CA-sec-3",
        _at(15),
        EventRecord(E.ENTERQUEUE, queue="security"),
        EventRecord(E.EXITWITHTIMEOUT, queue="security", wait_seconds=600),
    )
    _log(database, "CA-empty", _at(23), EventRecord(E.EXITEMPTY, queue="security"))
    _log(database, NO_CALL, _at(8), EventRecord(E.AGENTLOGIN, agent="alice"))
    # The days before and after.
    _log(database, "CA-y", _at(-1), EventRecord(E.ENTERQUEUE, queue="funds"))
    _log(database, "CA-t", _at(24), EventRecord(E.ABANDON, queue="funds"))


def _stats(
    database: Database,
    *,
    since: datetime = DAY,
    until: datetime = DAY + timedelta(days=1),
    service_level: Mapping[str, int] | int = 60,
    queue: str | None = None,
) -> dict[str, QueueStats]:
    with database.sessions() as session:
        rows = queue_stats(
            session, since=since, until=until, service_level=service_level, queue=queue
        )
    return {row.queue: row for row in rows}


def test_queue_stats_of_a_scripted_day(database: Database) -> None:
    _script_day(database)

    stats = _stats(database)

    assert list(stats) == ["funds", "security"]
    assert stats["funds"] == QueueStats(
        queue="funds",
        offered=10,
        answered=6,
        abandoned=3,
        callbacks=1,
        exited=1,
        refused=1,
        average_wait_seconds=70.0,
        longest_wait_seconds=200,
        average_talk_seconds=350.0,
        abandon_rate=0.3,
        service_level=3 / 9,
    )
    assert stats["security"] == QueueStats(
        queue="security",
        offered=4,
        answered=3,
        abandoned=0,
        callbacks=0,
        exited=1,
        refused=1,
        average_wait_seconds=45.0,
        longest_wait_seconds=85,
        average_talk_seconds=None,
        abandon_rate=0.0,
        service_level=2 / 3,
    )
    assert isinstance(stats["funds"].average_wait_seconds, float)


def test_queue_stats_service_level_targets(database: Database) -> None:
    _script_day(database)

    def levels(service_level: Mapping[str, int] | int) -> dict[str, float | None]:
        stats = _stats(database, service_level=service_level)
        return {name: row.service_level for name, row in stats.items()}

    assert levels(30) == {"funds": 3 / 9, "security": 1 / 3}
    assert levels(200) == {"funds": 6 / 9, "security": 3 / 3}
    # Per queue; a queue missing from the mapping gets the 60 s default.
    assert levels({"funds": 90, "security": 5}) == {"funds": 5 / 9, "security": 1 / 3}
    assert levels({"funds": 90}) == {"funds": 5 / 9, "security": 2 / 3}
    assert levels({}) == {"funds": 3 / 9, "security": 2 / 3}


def test_queue_stats_of_one_queue(database: Database) -> None:
    _script_day(database)

    assert list(_stats(database, queue="security")) == ["security"]
    assert _stats(database, queue="security")["security"].offered == 4
    assert _stats(database, queue="nobody") == {}


def test_queue_stats_without_answers_have_no_averages_or_levels(database: Database) -> None:
    _script_day(database)

    (only,) = _stats(database, since=_at(9), until=_at(10)).values()

    assert (only.queue, only.offered, only.answered, only.abandoned) == ("funds", 10, 0, 0)
    assert only.average_wait_seconds is None
    assert only.longest_wait_seconds is None
    assert only.average_talk_seconds is None
    assert only.abandon_rate == 0.0
    assert only.service_level is None


def test_queue_stats_range_includes_since_and_excludes_until(database: Database) -> None:
    since, until = _at(9), _at(10)
    for call, at in [
        ("CA-before", since - timedelta(microseconds=1)),
        ("CA-first", since),
        ("CA-last", until - timedelta(microseconds=1)),
        ("CA-after", until),
    ]:
        _log(database, call, at, EventRecord(E.ENTERQUEUE, queue="funds"))

    assert _stats(database, since=since, until=until)["funds"].offered == 2
    assert _stats(database, since=until, until=_at(11))["funds"].offered == 1


def test_queue_stats_of_an_empty_range(database: Database) -> None:
    _script_day(database)

    assert _stats(database, since=_at(30), until=_at(40)) == {}


# --- speech at the menus that listen, for the dashboard -------------------------------------------


def test_speech_counts_who_reached_a_listening_menu_spoke_there_and_was_asked(
    database: Database,
) -> None:
    calls: list[dict[str, Any]] = [
        {"path": ["language:2", "main:said"], "said": "withdrawal", "said_checked": False},
        {"path": ["language:2", "main:said", "funds:2"], "said": "money", "said_checked": True},
        {"path": ["language:2", "main:said"], "said": "hm", "said_checked": False},
        {"path": ["language:2", "main:1", "account:2"]},  # keys at the listening menu
        {"path": ["language:2", "main:0"]},  # the operator, by key
        {"path": ["language:2"]},  # hung up before the main menu's first key
        {"path": ["language:2", "domain:1"]},  # "domain:" is not a step at "main"
        {"path": ["language:2", "self9service:1"]},  # "_" in "self_service" is no wildcard
    ]
    for i, call in enumerate(calls):
        sid = f"CA{i}"
        write_records(
            database,
            *[
                journal_record(sid, _later(i + n / 10), menu_step=step)
                for n, step in enumerate(call["path"])
            ],
        )
        if "said" in call:
            _log(
                database, sid, _later(i + 0.9), said=call["said"], said_checked=call["said_checked"]
            )
    # Yesterday's speaker is not today's.
    _log(database, "CAold", NOW - timedelta(days=1), menu_step="main:said", said="old")

    with database.sessions() as session:
        found = speech_counts(
            session, since=DAY, until=DAY + timedelta(days=1), listening=["main", "self_service"]
        )
        nothing_listens = speech_counts(
            session, since=DAY, until=DAY + timedelta(days=1), listening=[]
        )
    assert (found.reached, found.spoke, found.said, found.asked) == (5, 3, 3, 1)
    assert (nothing_listens.reached, nothing_listens.spoke) == (0, 0)
    assert (nothing_listens.said, nothing_listens.asked) == (3, 1)


# --- incident notices, for the dashboard ------------------------------------------------------


def test_incident_counts_who_heard_a_notice_and_who_hung_up_after_it_without_queueing(
    database: Database,
) -> None:
    def call(sid: str, start: datetime, *changes: dict[str, Any], ended: bool = True) -> None:
        records = [journal_record(sid, start, issue="withdrawal", queue="funds")]
        records += [
            journal_record(sid, start + timedelta(seconds=n + 1), **c)
            for n, c in enumerate(changes)
        ]
        if ended:
            records.append(
                journal_record(sid, start + timedelta(seconds=60), end=CallEnd("completed"))
            )
        write_records(database, *records)

    queued = {"queued": True, "outcome": Outcome.QUEUED}
    call("CA-saved-1", _later(0), {"incident": 3})  # heard it, hung up
    call("CA-saved-2", _later(1), {"incident": 3})
    call("CA-waited", _later(2), {"incident": 3}, queued)  # heard it, queued, hung up while waiting
    call("CA-called-back", _later(3), {"incident": 3}, {**queued, "outcome": Outcome.CALLBACK})
    call("CA-listening", _later(4), {"incident": 3}, ended=False)  # still hearing it
    call("CA-voicemail", _later(5), {"incident": 3}, {"outcome": Outcome.VOICEMAIL})
    call("CA-login", _later(6), queued)  # no notice
    call("CA-yesterday", NOW - timedelta(days=1), {"incident": 2})

    with database.sessions() as session:
        today = incident_counts(session, since=DAY, until=DAY + timedelta(days=1))
        nothing = incident_counts(
            session, since=DAY + timedelta(days=1), until=DAY + timedelta(days=2)
        )
    assert (today.heard, today.saved) == (6, 2)
    assert (nothing.heard, nothing.saved) == (0, 0)


# --- schema ----------------------------------------------------------------------------------


def test_migration_0002_downgrades_and_upgrades_again(empty_database: Database) -> None:
    empty_database.upgrade("0002")

    def tables() -> set[str]:
        with empty_database.engine.connect() as connection:
            return set(inspect(connection).get_table_names())

    def indexes() -> set[str | None]:
        with empty_database.engine.connect() as connection:
            return {i["name"] for i in inspect(connection).get_indexes("queue_events")}

    assert "queue_events" in tables()
    assert indexes() == {
        "ix_queue_events_call_sid",
        "ix_queue_events_ticket_id",
        "ix_queue_events_queue_at",
        "ix_queue_events_event_at",
    }

    downgrade(empty_database, "0001")

    assert "queue_events" not in tables()
    assert "tickets" in tables()
    assert empty_database.current_revision() == "0001"

    empty_database.upgrade("0002")
    assert "queue_events" in tables()
    assert empty_database.current_revision() == "0002"


def test_migration_0003_downgrades_and_upgrades_again(empty_database: Database) -> None:
    empty_database.upgrade()

    def tables() -> set[str]:
        with empty_database.engine.connect() as connection:
            return set(inspect(connection).get_table_names())

    assert {"ticket_changes", "reference_blocks"} <= tables()
    assert "processed_webhooks" not in tables()
    downgrade(empty_database, "0002")
    assert not {"ticket_changes", "reference_blocks"} & tables()
    assert "processed_webhooks" in tables()

    empty_database.upgrade()
    assert empty_database.current_revision() == empty_database.head_revision()
    assert empty_database.schema().ready


# --- a line's history, for the live wait estimate ---------------------------------------------------


def test_line_history_reads_talk_times_patience_and_who_joins(database: Database) -> None:
    now = _at(12)
    funds = {"queue": "funds", "language": "en-US"}
    for i, talk in enumerate([100, 200, 300]):
        _log(
            database,
            f"CA-t{i}",
            _at(10, i),
            EventRecord(E.COMPLETEAGENT, talk_seconds=talk, **funds),
        )
    # Waited 600 s in all, two of them gave up: 2 abandons per 600 s waited.
    _log(database, "CA-w1", _at(10), EventRecord(E.CONNECT, wait_seconds=200, **funds))
    _log(database, "CA-w2", _at(10), EventRecord(E.ABANDON, wait_seconds=300, **funds))
    _log(database, "CA-w3", _at(10), EventRecord(E.ABANDON, wait_seconds=100, **funds))
    # An overnight callback is not time spent holding.
    _log(database, "CA-w4", _at(10), EventRecord(E.CONNECT, wait_seconds=9 * 3600, **funds))
    # Joining: two emergencies in the last hour, one ordinary caller at this hour yesterday.
    for sid, at, priority in (
        ("CA-j1", _at(11, 10), 100),
        ("CA-j2", _at(11, 40), 100),
        ("CA-j3", _at(12, 5) - timedelta(days=1), 30),
    ):
        _log(database, sid, at, EventRecord(E.ENTERQUEUE, **funds), priority=priority)
    # Another line's events do not count.
    _log(
        database,
        "CA-o",
        _at(10),
        EventRecord(E.ABANDON, wait_seconds=5, queue="funds", language="de-DE"),
    )

    with database.sessions() as session:
        histories = line_histories(session, now)
    history = histories[("funds", "en-US")]
    assert histories[("funds", "de-DE")].abandon_rate == pytest.approx(1 / 5)

    assert sorted(history.talk_seconds) == [100.0, 200.0, 300.0]
    assert history.abandon_rate == pytest.approx(2 / 600)
    assert history.arrivals_per_second == pytest.approx({100: 2 / 3600, 30: 1 / 3600})
    assert history.faster_arrivals(30) == pytest.approx(2 / 3600)
    assert history.usual_arrivals_per_second == pytest.approx({30: 1 / 3600})


def test_a_line_nobody_called_has_no_history(database: Database) -> None:
    with database.sessions() as session:
        assert line_histories(session, NOW) == {}


def test_a_line_keeps_only_its_newest_conversations(database: Database) -> None:
    funds = {"queue": "funds", "language": "en-US"}
    for i in range(TALK_SAMPLES + 5):
        talk = EventRecord(E.COMPLETEAGENT, talk_seconds=1000 if i < 5 else 100, **funds)
        _log(database, f"CA-{i}", NOW - timedelta(hours=1) + timedelta(seconds=i), talk)
    with database.sessions() as session:
        history = line_histories(session, NOW)[("funds", "en-US")]
    assert history.talk_seconds == (100.0,) * TALK_SAMPLES  # the 5 oldest, long ones, left out
