"""Queue events: logged once per webhook, a call's history in order, and per-queue statistics."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import delete, func, inspect, select

from ivr.db import Database
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.events import NO_CALL, QueueStats, events_of, log_events, queue_stats
from ivr.tickets.models import ProcessedWebhook, QueueEventRow, Ticket
from ivr.tickets.service import apply_change, ensure_ticket

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = datetime(2026, 3, 2, tzinfo=UTC)
E = QueueEvent


def _later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def _count(database: Database, model: type[QueueEventRow] | type[ProcessedWebhook]) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _history(database: Database, call_sid: str) -> list[QueueEventRow]:
    with database.sessions() as session:
        return events_of(session, call_sid)


# --- logging ---------------------------------------------------------------------------------


def test_a_retried_change_logs_its_events_once(database: Database) -> None:
    change = TicketChange(
        queue="funds",
        queued=True,
        outcome=Outcome.QUEUED,
        events=(EventRecord(E.ENTERQUEUE, queue="funds", language="en-US", position=3),),
    )
    for _ in range(2):
        with database.sessions() as session:
            apply_change(session, "CA1", change, now=NOW, token="idem-1")

    (row,) = _history(database, "CA1")
    assert (row.event, row.queue, row.language, row.position, row.at) == (
        E.ENTERQUEUE,
        "funds",
        "en-US",
        3,
        NOW,
    )
    assert _count(database, ProcessedWebhook) == 1


def test_a_change_of_events_only_is_not_empty_and_claims_its_token(database: Database) -> None:
    change = TicketChange(events=(EventRecord(E.RINGNOANSWER, agent="alice"),))
    with database.sessions() as session:
        apply_change(session, "CA1", change, now=NOW, token="t1")
        apply_change(session, "CA1", change, now=NOW, token="t1")

    assert [row.event for row in _history(database, "CA1")] == [E.RINGNOANSWER]
    assert _count(database, ProcessedWebhook) == 1


def test_concurrent_retries_of_a_change_log_its_events_once(database: Database) -> None:
    change = TicketChange(
        outcome=Outcome.ANSWERED,
        events=(EventRecord(E.CONNECT, queue="funds", agent="alice", wait_seconds=42),),
    )
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            barrier.wait(timeout=10)
            with database.sessions() as session:
                apply_change(session, "CA1", change, now=NOW, token="same")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert [row.event for row in _history(database, "CA1")] == [E.CONNECT]


def test_a_change_without_a_token_logs_its_events_every_time(database: Database) -> None:
    change = TicketChange(events=(EventRecord(E.RINGNOANSWER, agent="alice"),))
    with database.sessions() as session:
        apply_change(session, "CA1", change, now=NOW)
        apply_change(session, "CA1", change, now=_later(20))

    assert [row.at for row in _history(database, "CA1")] == [NOW, _later(20)]


def test_log_events_is_idempotent_with_a_token(database: Database) -> None:
    records = [EventRecord(E.ABANDON, queue="funds", position=2, wait_seconds=95)]
    for _ in range(3):
        with database.sessions() as session:
            log_events(session, "CA1", records, now=NOW, token="status-1")
    with database.sessions() as session:
        log_events(session, "CA1", records, now=_later(1), token="status-2")

    assert [row.at for row in _history(database, "CA1")] == [NOW, _later(1)]


def test_log_events_and_a_change_of_the_same_webhook_both_apply(database: Database) -> None:
    # One webhook may update the ticket and log events separately under its one token.
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(outcome=Outcome.ANSWERED), now=NOW, token="w")
        log_events(session, "CA1", [EventRecord(E.CONNECT, queue="funds")], now=NOW, token="w")
        log_events(session, "CA1", [EventRecord(E.CONNECT, queue="funds")], now=NOW, token="w")

    assert [row.event for row in _history(database, "CA1")] == [E.CONNECT]
    assert _count(database, ProcessedWebhook) == 2


def test_log_events_without_records_claims_nothing(database: Database) -> None:
    with database.sessions() as session:
        log_events(session, "CA1", [], now=NOW, token="t")

    assert _count(database, ProcessedWebhook) == 0
    assert _count(database, QueueEventRow) == 0


# --- a call's history ------------------------------------------------------------------------


def test_events_of_a_call_in_order_linked_to_its_ticket(database: Database) -> None:
    with database.sessions() as session:
        apply_change(
            session,
            "CA1",
            TicketChange(
                queue="funds",
                language="de-DE",
                queued=True,
                events=(
                    EventRecord(E.ENTERQUEUE, queue="funds", position=1),
                    EventRecord(E.CALLBACK, queue="funds", data={"number": "+4917012345"}),
                ),
            ),
            now=NOW,
            token="t1",
        )
        log_events(session, "CA1", [EventRecord(E.CALLBACKDIAL)], now=_later(300), token="t2")
        log_events(session, "CA1", [EventRecord(E.CONNECT, wait_seconds=310)], now=_later(310))
        log_events(session, "CA2", [EventRecord(E.ENTERQUEUE, queue="funds")], now=_later(5))
        ticket_id = ensure_ticket(session, "CA1", now=NOW).id

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


def test_events_of_a_call_without_a_ticket_are_kept_unlinked(database: Database) -> None:
    with database.sessions() as session:
        log_events(session, "CA-unknown", [EventRecord(E.ABANDON, queue="funds")], now=NOW)

    (row,) = _history(database, "CA-unknown")
    assert row.ticket_id is None
    assert row.queue == "funds"
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_agent_events_belong_to_no_call_and_take_nothing_from_a_ticket(
    database: Database,
) -> None:
    with database.sessions() as session:
        apply_change(session, "CA-line", TicketChange(queue="operator"), now=NOW)
        log_events(
            session,
            NO_CALL,
            [EventRecord(E.AGENTLOGIN, agent="alice", data={"extension": "101"})],
            now=NOW,
        )
        log_events(session, "CA-line", [EventRecord(E.AGENTLOGOFF, agent="bob")], now=_later(9))

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
    change = TicketChange(events=(EventRecord(E.ENTERQUEUE, queue="funds"),))
    with database.sessions() as session:
        apply_change(session, "CA1", change, now=NOW)
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
    """A day of two queues, logged call by call the way the webhooks would."""
    funds_waits = [10, 20, 30, 70, 90, 200]
    with database.sessions() as session:
        for i in range(10):
            call = f"CA-funds-{i}"
            # Joining the queue updates the ticket; the later events (dispatch, status callbacks)
            # do not name the queue and are counted under the ticket's.
            joined = TicketChange(
                queue="funds",
                queued=True,
                outcome=Outcome.QUEUED,
                events=(EventRecord(E.ENTERQUEUE, queue="funds", position=i + 1),),
            )
            apply_change(session, call, joined, now=_at(9, i), token=f"join-{i}")
            if i < 6:
                ended = E.COMPLETECALLER if i % 2 else E.COMPLETEAGENT
                talk = EventRecord(ended, agent="alice", talk_seconds=100 * (i + 1))
                connect = EventRecord(E.CONNECT, agent="alice", wait_seconds=funds_waits[i])
                log_events(session, call, [connect], now=_at(10, i))
                log_events(session, call, [talk], now=_at(11, i))
            elif i < 9:
                abandon = EventRecord(E.ABANDON, position=1, wait_seconds=300)
                log_events(session, call, [abandon], now=_at(10, i))
            else:
                key = EventRecord(E.EXITWITHKEY, data={"key": "1", "to": "callback"})
                log_events(session, call, [key, EventRecord(E.CALLBACK)], now=_at(10, i))
        log_events(session, "CA-full", [EventRecord(E.EXITFULL, queue="funds")], now=_at(12))

        for i, wait in enumerate([5, 45, 85]):
            records = [
                EventRecord(E.ENTERQUEUE, queue="security"),
                EventRecord(E.CONNECT, queue="security", wait_seconds=wait),
            ]
            log_events(session, f"CA-sec-{i}", records, now=_at(14, i))
        timeout = [
            EventRecord(E.ENTERQUEUE, queue="security"),
            EventRecord(E.EXITWITHTIMEOUT, queue="security", wait_seconds=600),
        ]
        log_events(session, "CA-sec-3", timeout, now=_at(15))
        log_events(session, "CA-empty", [EventRecord(E.EXITEMPTY, queue="security")], now=_at(23))
        log_events(session, NO_CALL, [EventRecord(E.AGENTLOGIN, agent="alice")], now=_at(8))
        # The days before and after.
        log_events(session, "CA-y", [EventRecord(E.ENTERQUEUE, queue="funds")], now=_at(-1))
        log_events(session, "CA-t", [EventRecord(E.ABANDON, queue="funds")], now=_at(24))


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
    with database.sessions() as session:
        for call, at in [
            ("CA-before", since - timedelta(microseconds=1)),
            ("CA-first", since),
            ("CA-last", until - timedelta(microseconds=1)),
            ("CA-after", until),
        ]:
            log_events(session, call, [EventRecord(E.ENTERQUEUE, queue="funds")], now=at)

    assert _stats(database, since=since, until=until)["funds"].offered == 2
    assert _stats(database, since=until, until=_at(11))["funds"].offered == 1


def test_queue_stats_of_an_empty_range(database: Database) -> None:
    _script_day(database)

    assert _stats(database, since=_at(30), until=_at(40)) == {}


# --- schema ----------------------------------------------------------------------------------


def test_migration_0002_downgrades_and_upgrades_again(empty_database: Database) -> None:
    empty_database.upgrade()

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

    config = empty_database.alembic_config()
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")

    assert "queue_events" not in tables()
    assert "tickets" in tables()
    assert empty_database.current_revision() == "0001"

    empty_database.upgrade()
    assert "queue_events" in tables()
    assert empty_database.current_revision() == "0002"
