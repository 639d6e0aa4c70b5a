"""Tickets written from journal records (`ivr.tickets.writes`): one per call, each record applied
once, on SQLite and Postgres."""

from __future__ import annotations

import ast
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from ivr.db import Database
from ivr.tickets import changes, projection, records
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.events import events_of
from ivr.tickets.models import Ticket, TicketChangeRow
from ivr.tickets.reads import get_ticket
from ivr.tickets.records import CallEnd, JournalRecord
from ivr.tickets.writes import apply_records, lease_reference_block
from tests.support import journal_record

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
T = TypeVar("T")
_references = itertools.count(3_000_001)


def _later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def rec(call_sid: str, at: datetime = NOW, **fields: Any) -> JournalRecord:
    """A journal record of `call_sid` at `at` (NOW by default); see `support.journal_record`."""
    return journal_record(call_sid, at, **fields)


def new_reference() -> str:
    return str(next(_references))


def apply(database: Database, *batch: JournalRecord) -> None:
    with database.sessions() as session:
        apply_records(session, batch, new_reference=new_reference)


def _count(database: Database, model: type[Ticket] | type[TicketChangeRow]) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _fresh(database: Database, call_sid: str) -> Ticket:
    with database.sessions() as session:
        ticket = get_ticket(session, call_sid)
    assert ticket is not None
    return ticket


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` on `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


# --- one ticket per call, each record once --------------------------------------------------


def test_the_first_record_creates_the_ticket_with_the_reference_the_caller_was_given(
    database: Database,
) -> None:
    apply(database, rec("CA1", reference="4821093", caller="+4930123", called="+4980000"))

    ticket = _fresh(database, "CA1")
    assert ticket.reference == "4821093"
    assert (ticket.caller, ticket.called) == ("+4930123", "+4980000")
    assert ticket.arrived_at == NOW
    assert ticket.menu_path == []


def test_a_record_delivered_twice_is_applied_once(database: Database) -> None:
    twice = rec("CA1", id="same", menu_step="lang:2", language="de-DE")
    apply(database, twice)
    apply(database, twice, twice)

    ticket = _fresh(database, "CA1")
    assert ticket.menu_path == ["lang:2"]
    assert ticket.language == "de-DE"
    assert _count(database, Ticket) == 1
    assert _count(database, TicketChangeRow) == 1


def test_a_retried_webhook_with_other_values_keeps_the_first(database: Database) -> None:
    apply(database, rec("CA1", id="token-x", satisfaction=4))
    apply(database, rec("CA1", _later(1), id="token-x", satisfaction=1))

    assert _fresh(database, "CA1").satisfaction == 4


def test_records_of_one_call_apply_in_the_order_they_happened_whatever_order_they_arrive(
    database: Database,
) -> None:
    first = rec("CA1", NOW, reference="4821093", menu_step="language:2", language="en-US")
    second = rec("CA1", _later(5), menu_step="main:2")
    third = rec("CA1", _later(9), menu_step="funds:1", queue="funds", outcome=Outcome.QUEUED)
    apply(database, third)
    apply(database, first)
    apply(database, second)

    ticket = _fresh(database, "CA1")
    assert ticket.menu_path == ["language:2", "main:2", "funds:1"]
    assert ticket.arrived_at == NOW
    assert ticket.reference == "4821093"


def test_missing_caller_and_called_are_filled_later_but_never_overwritten(
    database: Database,
) -> None:
    apply(database, rec("CA1"))
    apply(database, rec("CA1", _later(1), caller="+4930123", called="+4980000"))
    apply(database, rec("CA1", _later(2), caller="+1555", called="+1666"))

    ticket = _fresh(database, "CA1")
    assert (ticket.caller, ticket.called) == ("+4930123", "+4980000")


def test_a_call_whose_webhooks_had_no_reference_is_numbered_by_the_writer(
    database: Database,
) -> None:
    apply(database, rec("CA1", menu_step="language:1"))

    reference = _fresh(database, "CA1").reference
    assert len(reference) == 7 and reference.isdigit()


def test_a_reference_taken_by_another_ticket_is_replaced(database: Database) -> None:
    apply(database, rec("CA1", reference="1234567"))
    apply(database, rec("CA2", reference="1234567"))

    assert _fresh(database, "CA1").reference == "1234567"
    second = _fresh(database, "CA2").reference
    assert second != "1234567" and len(second) == 7


def test_concurrent_writers_create_one_ticket_and_lose_no_record(database: Database) -> None:
    batches = [[rec("CA-race", _later(i), menu_step=f"step:{i}")] for i in range(6)]

    def writer(i: int) -> int:
        with database.sessions() as session:
            return apply_records(session, batches[i], new_reference=new_reference).records

    assert sum(_in_threads(6, writer)) == 6
    assert _count(database, Ticket) == 1
    assert _fresh(database, "CA-race").menu_path == [f"step:{i}" for i in range(6)]


def test_concurrent_writers_with_the_same_records_apply_them_once(database: Database) -> None:
    same = [rec("CA1", id="r-a", menu_step="main:3"), rec("CA1", _later(1), id="r-b", queued=True)]

    def writer(_: int) -> None:
        with database.sessions() as session:
            apply_records(session, same, new_reference=new_reference)

    _in_threads(6, writer)

    ticket = _fresh(database, "CA1")
    assert ticket.menu_path == ["main:3"]
    assert ticket.queued_at == _later(1)


# --- what a change records ---------------------------------------------------------------------


def test_change_sets_fields_and_queued_at_only_once(database: Database) -> None:
    apply(
        database,
        rec(
            "CA1",
            _later(10),
            issue="withdrawal",
            queue="payments",
            team="tier1",
            priority=2,
            outcome=Outcome.QUEUED,
            queued=True,
            caller="+4930123",
            called="+4980000",
        ),
        rec("CA1", _later(50), queued=True, priority=1),
        rec(
            "CA1",
            _later(60),
            outcome=Outcome.CALLBACK,
            callback_number="+4917012345",
            recording_url="https://api.twilio.com/rec/RE1",
            recording_duration=14,
        ),
    )

    ticket = _fresh(database, "CA1")
    assert (ticket.issue, ticket.queue, ticket.team, ticket.priority) == (
        "withdrawal",
        "payments",
        "tier1",
        1,
    )
    assert ticket.arrived_at == _later(10)
    assert ticket.queued_at == _later(10)
    assert ticket.outcome is Outcome.CALLBACK
    assert ticket.callback_number == "+4917012345"
    assert ticket.recording_url == "https://api.twilio.com/rec/RE1"
    assert ticket.recording_duration == 14
    assert (ticket.caller, ticket.called) == ("+4930123", "+4980000")


def test_answered_records_the_agent_and_the_first_answer(database: Database) -> None:
    apply(
        database,
        rec("CA1", outcome=Outcome.ANSWERED, agent="alice"),
        rec("CA1", _later(30), outcome=Outcome.ANSWERED),
        rec("CA1", _later(300), satisfaction=5),
    )

    ticket = _fresh(database, "CA1")
    assert ticket.agent == "alice"
    assert ticket.satisfaction == 5
    assert ticket.answered_at == NOW


@pytest.mark.parametrize("score", [0, 6, -1, True])
def test_satisfaction_outside_one_to_five_is_refused(score: int) -> None:
    with pytest.raises(ValueError, match="satisfaction"):
        TicketChange(satisfaction=score)


def test_satisfaction_bounds_are_accepted(database: Database) -> None:
    apply(database, rec("CA1", satisfaction=1), rec("CA2", satisfaction=5))

    assert (_fresh(database, "CA1").satisfaction, _fresh(database, "CA2").satisfaction) == (1, 5)


def test_events_are_logged_once_with_the_queue_the_change_sets(database: Database) -> None:
    record = rec(
        "CA1",
        queue="funds",
        language="fr-FR",
        queued=True,
        events=(EventRecord(QueueEvent.ENTERQUEUE, position=2),),
    )
    apply(database, record)
    apply(database, record)
    with database.sessions() as session:
        (row,) = events_of(session, "CA1")

    assert (row.event, row.queue, row.language, row.position) == (
        QueueEvent.ENTERQUEUE,
        "funds",
        "fr-FR",
        2,
    )
    assert row.ticket_id == _fresh(database, "CA1").id


def test_an_event_that_arrived_before_the_queue_was_known_gets_it(database: Database) -> None:
    # The hang-up's ABANDON names no queue; the record that set the queue reached the writer late.
    apply(database, rec("CA1", _later(60), events=(EventRecord(QueueEvent.ABANDON, position=1),)))
    apply(database, rec("CA1", _later(5), queue="security", language="de-DE", queued=True))
    with database.sessions() as session:
        (row,) = events_of(session, "CA1")

    assert (row.queue, row.language) == ("security", "de-DE")


def test_agent_events_belong_to_no_call_and_create_no_ticket(database: Database) -> None:
    login = EventRecord(QueueEvent.AGENTLOGIN, agent="emma", data={"status": "available"})
    apply(database, rec(records.NO_CALL, events=(login,)))

    with database.sessions() as session:
        (row,) = events_of(session, records.NO_CALL)
    assert (row.event, row.agent, row.ticket_id, row.data) == (
        QueueEvent.AGENTLOGIN,
        "emma",
        None,
        {"status": "available"},
    )
    assert _count(database, Ticket) == 0


# --- the end of a call ---------------------------------------------------------------------


def end(status: str = "completed", duration: int | None = 70) -> CallEnd:
    return CallEnd(status, duration)


def test_a_call_that_ends_while_queued_is_abandoned_with_its_wait(database: Database) -> None:
    apply(
        database,
        rec("CA1"),
        rec("CA1", _later(10), outcome=Outcome.QUEUED, queued=True),
        rec("CA1", _later(70), end=end()),
    )

    ticket = _fresh(database, "CA1")
    assert ticket.outcome is Outcome.ABANDONED
    assert ticket.wait_seconds == 60
    assert ticket.ended_at == _later(70)
    assert ticket.duration_seconds == 70
    assert ticket.call_status == "completed"


def test_an_answered_call_keeps_its_outcome_and_waited_until_answered(database: Database) -> None:
    apply(
        database,
        rec("CA1", _later(10), outcome=Outcome.QUEUED, queued=True),
        rec("CA1", _later(40), outcome=Outcome.ANSWERED),
        rec("CA1", _later(300), end=end(duration=300)),
    )

    ticket = _fresh(database, "CA1")
    assert ticket.outcome is Outcome.ANSWERED
    assert ticket.answered_at == _later(40)
    assert ticket.wait_seconds == 30


def test_the_end_arriving_before_the_queue_record_still_makes_it_abandoned(
    database: Database,
) -> None:
    apply(database, rec("CA1", _later(70), end=end()))
    apply(database, rec("CA1", _later(10), outcome=Outcome.QUEUED, queued=True))

    ticket = _fresh(database, "CA1")
    assert ticket.outcome is Outcome.ABANDONED
    assert ticket.wait_seconds == 60


def test_an_end_without_any_outcome_is_abandoned_and_without_queue_has_no_wait(
    database: Database,
) -> None:
    apply(database, rec("CA1"), rec("CA1", _later(4), end=end("canceled", None)))

    ticket = _fresh(database, "CA1")
    assert ticket.outcome is Outcome.ABANDONED
    assert ticket.wait_seconds is None
    assert ticket.duration_seconds is None


def test_the_end_keeps_a_self_served_outcome(database: Database) -> None:
    apply(database, rec("CA1", outcome=Outcome.SELF_SERVED), rec("CA1", _later(30), end=end()))

    assert _fresh(database, "CA1").outcome is Outcome.SELF_SERVED


def test_the_end_of_an_unknown_call_still_leaves_a_ticket(database: Database) -> None:
    apply(database, rec("CA-unknown", end=end("no-answer", 0), caller="+4930123", called="+498"))

    ticket = _fresh(database, "CA-unknown")
    assert ticket.arrived_at == NOW
    assert ticket.ended_at == NOW
    assert ticket.call_status == "no-answer"
    assert ticket.outcome is Outcome.ABANDONED
    assert (ticket.caller, ticket.called) == ("+4930123", "+498")


def test_ending_twice_keeps_the_first_end(database: Database) -> None:
    apply(
        database,
        rec("CA1", _later(10), queued=True),
        rec("CA1", _later(70), end=end(duration=70)),
        rec("CA1", _later(95), end=end(duration=71)),
    )

    ticket = _fresh(database, "CA1")
    assert ticket.ended_at == _later(70)
    assert ticket.wait_seconds == 60
    assert ticket.duration_seconds == 71
    assert ticket.outcome is Outcome.ABANDONED


# --- values --------------------------------------------------------------------------------


def test_datetimes_read_back_aware_in_utc(database: Database) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    apply(database, rec("CA1", NOW.astimezone(berlin_winter), queued=True))

    ticket = _fresh(database, "CA1")
    for value in (ticket.arrived_at, ticket.queued_at, ticket.created_at, ticket.updated_at):
        assert value is not None
        assert value.tzinfo is UTC
    assert ticket.arrived_at == NOW
    assert ticket.arrived_at.hour == 9


def test_leased_blocks_never_repeat(database: Database) -> None:
    def lease(_: int) -> int:
        with database.sessions() as session:
            return lease_reference_block(session, now=NOW)

    blocks = _in_threads(6, lease)
    assert len(set(blocks)) == 6


def test_ticket_change_is_empty() -> None:
    assert TicketChange().is_empty()
    assert not TicketChange(queued=True).is_empty()
    assert not TicketChange(menu_step="lang:1").is_empty()
    assert not TicketChange(priority=0).is_empty()


def test_ticket_change_with_agent_satisfaction_or_events_is_not_empty() -> None:
    assert not TicketChange(agent="alice").is_empty()
    assert not TicketChange(satisfaction=3).is_empty()
    assert not TicketChange(events=(EventRecord(QueueEvent.CONNECT),)).is_empty()


@pytest.mark.parametrize("module", [changes, records, projection])
def test_what_the_flow_and_the_journal_share_stays_free_of_the_database(module: Any) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")

    assert not {n for n in imported if n.split(".")[0] in {"sqlalchemy", "alembic", "redis"}}
    assert not {n for n in imported if n in {"ivr.db", "ivr.tickets.models"}}
