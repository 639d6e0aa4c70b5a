"""Tickets: one per call, each webhook applied once, calls closed right, on SQLite and Postgres."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, func, select

from ivr.db import Database
from ivr.tickets import changes, service
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange, format_reference
from ivr.tickets.events import events_of
from ivr.tickets.models import ProcessedWebhook, Ticket
from ivr.tickets.service import (
    apply_change,
    close_ticket,
    ensure_ticket,
    find_by_reference,
    get_ticket,
    list_tickets,
    prune_processed_webhooks,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
T = TypeVar("T")


def _later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def _count(database: Database, model: type[Ticket] | type[ProcessedWebhook]) -> int:
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


# --- one ticket per call -------------------------------------------------------------------


def test_repeated_webhook_keeps_one_ticket(database: Database) -> None:
    with database.sessions() as session:
        first = ensure_ticket(session, "CA1", caller="+4930123", called="+4980000", now=NOW)
    with database.sessions() as session:
        again = ensure_ticket(session, "CA1", caller="+4930123", called="+4980000", now=_later(5))

    assert (again.id, again.reference) == (first.id, first.reference)
    assert again.arrived_at == NOW
    assert again.menu_path == []
    assert _count(database, Ticket) == 1


def test_missing_caller_and_called_are_filled_later_but_never_overwritten(
    database: Database,
) -> None:
    with database.sessions() as session:
        ensure_ticket(session, "CA1", caller=None, called=None, now=NOW)
        ensure_ticket(session, "CA1", caller="+4930123", called="+4980000", now=NOW)
        ensure_ticket(session, "CA1", caller="+1555", called="+1666", now=NOW)

    ticket = _fresh(database, "CA1")
    assert (ticket.caller, ticket.called) == ("+4930123", "+4980000")


def test_concurrent_first_webhooks_create_one_ticket(database: Database) -> None:
    def first_webhook(_: int) -> tuple[int, str]:
        with database.sessions() as session:
            ticket = ensure_ticket(session, "CA-race", caller="+4930123", now=NOW)
            return ticket.id, ticket.reference

    seen = set(_in_threads(8, first_webhook))

    assert len(seen) == 1
    assert _count(database, Ticket) == 1


def test_a_request_racing_an_uncommitted_insert_gets_that_ticket(database: Database) -> None:
    # The other request has inserted the call's ticket but not committed yet: ours must wait for
    # it and then return its ticket, not fail and not create a second one.
    holder = database.sessions()
    holder.add(Ticket(call_sid="CA-race", reference="1234567", arrived_at=NOW, menu_path=[]))
    holder.flush()
    result: list[int] = []
    errors: list[BaseException] = []
    savepoint_rollbacks: list[str] = []

    def on_rollback_savepoint(_connection: object, name: str, _context: object) -> None:
        savepoint_rollbacks.append(name)

    event.listen(database.engine, "rollback_savepoint", on_rollback_savepoint)

    def racer() -> None:
        try:
            with database.sessions() as session:
                result.append(ensure_ticket(session, "CA-race", now=_later(1)).id)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=racer)
    thread.start()
    try:
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the racing request did not wait for the uncommitted ticket"
        holder.commit()
        held_id = holder.scalars(select(Ticket.id)).one()
    finally:
        holder.close()
        thread.join(timeout=10)
        event.remove(database.engine, "rollback_savepoint", on_rollback_savepoint)

    assert not errors
    assert result == [held_id]
    assert _count(database, Ticket) == 1
    if database.engine.dialect.name == "postgresql":
        # It really raced: its own insert hit the unique constraint and was rolled back.
        assert len(savepoint_rollbacks) == 1


def test_reference_collision_draws_another_reference(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.sessions() as session:
        taken = ensure_ticket(session, "CA1", now=NOW).reference
    draws = iter([taken, "7654321"])
    monkeypatch.setattr(service, "new_reference", lambda: next(draws))

    with database.sessions() as session:
        ticket = ensure_ticket(session, "CA2", now=NOW)

    assert ticket.reference == "7654321"
    assert _count(database, Ticket) == 2


# --- webhook changes -----------------------------------------------------------------------


def test_retried_webhook_applies_its_change_once(database: Database) -> None:
    change = TicketChange(menu_step="lang:2", language="de-DE")
    for _ in range(2):
        with database.sessions() as session:
            apply_change(session, "CA1", change, now=NOW, token="idem-1")

    ticket = _fresh(database, "CA1")
    assert ticket.menu_path == ["lang:2"]
    assert ticket.language == "de-DE"
    assert _count(database, ProcessedWebhook) == 1


def test_retry_in_the_same_session_applies_once(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(menu_step="main:1"), now=NOW, token="t")
        ticket = apply_change(session, "CA1", TicketChange(menu_step="main:1"), now=NOW, token="t")

    assert ticket.menu_path == ["main:1"]


def test_different_tokens_apply_both_changes(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(menu_step="lang:2"), now=NOW, token="t1")
        apply_change(session, "CA1", TicketChange(menu_step="main:1"), now=_later(3), token="t2")

    assert _fresh(database, "CA1").menu_path == ["lang:2", "main:1"]


def test_concurrent_identical_retries_apply_once(database: Database) -> None:
    def retry(_: int) -> None:
        with database.sessions() as session:
            apply_change(session, "CA1", TicketChange(menu_step="main:3"), now=NOW, token="same")

    _in_threads(6, retry)

    assert _fresh(database, "CA1").menu_path == ["main:3"]
    assert _count(database, ProcessedWebhook) == 1


def test_concurrent_different_webhooks_lose_no_change(database: Database) -> None:
    def webhook(i: int) -> None:
        with database.sessions() as session:
            change = TicketChange(menu_step=f"step:{i}")
            apply_change(session, "CA1", change, now=NOW, token=f"tok-{i}")

    _in_threads(6, webhook)

    assert sorted(_fresh(database, "CA1").menu_path) == [f"step:{i}" for i in range(6)]


def test_change_sets_fields_and_queued_at_only_once(database: Database) -> None:
    with database.sessions() as session:
        apply_change(
            session,
            "CA1",
            TicketChange(
                issue="withdrawal",
                queue="payments",
                team="tier1",
                priority=2,
                outcome=Outcome.QUEUED,
                queued=True,
            ),
            now=_later(10),
            caller="+4930123",
            called="+4980000",
        )
        apply_change(session, "CA1", TicketChange(queued=True, priority=1), now=_later(50))
        apply_change(
            session,
            "CA1",
            TicketChange(
                outcome=Outcome.CALLBACK,
                callback_number="+4917012345",
                recording_url="https://api.twilio.com/rec/RE1",
                recording_duration=14,
            ),
            now=_later(60),
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


def test_change_records_agent_and_satisfaction(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(outcome=Outcome.ANSWERED, agent="alice"), now=NOW)
        apply_change(session, "CA1", TicketChange(satisfaction=4), now=_later(300), token="t")
        apply_change(session, "CA1", TicketChange(satisfaction=1), now=_later(301), token="t")

    ticket = _fresh(database, "CA1")
    assert ticket.agent == "alice"
    assert ticket.satisfaction == 4
    assert ticket.answered_at == NOW


@pytest.mark.parametrize("score", [0, 6, -1, True])
def test_satisfaction_outside_one_to_five_is_refused(score: int) -> None:
    with pytest.raises(ValueError, match="satisfaction"):
        TicketChange(satisfaction=score)


def test_satisfaction_bounds_are_accepted(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(satisfaction=1), now=NOW)
        apply_change(session, "CA2", TicketChange(satisfaction=5), now=NOW)

    assert (_fresh(database, "CA1").satisfaction, _fresh(database, "CA2").satisfaction) == (1, 5)


def test_change_events_are_logged_with_the_queue_the_change_sets(database: Database) -> None:
    change = TicketChange(
        queue="funds",
        language="fr-FR",
        queued=True,
        events=[EventRecord(QueueEvent.ENTERQUEUE, position=2)],  # type: ignore[arg-type]
    )
    with database.sessions() as session:
        ticket = apply_change(session, "CA1", change, now=NOW, token="t")
        (row,) = events_of(session, "CA1")

    assert change.events == (EventRecord(QueueEvent.ENTERQUEUE, position=2),)
    assert (row.event, row.queue, row.language, row.position) == (
        QueueEvent.ENTERQUEUE,
        "funds",
        "fr-FR",
        2,
    )
    assert row.ticket_id == ticket.id


def test_empty_change_records_no_token(database: Database) -> None:
    with database.sessions() as session:
        ticket = apply_change(session, "CA1", TicketChange(), now=NOW, token="t1")

    assert ticket.call_sid == "CA1"
    assert _count(database, ProcessedWebhook) == 0


def test_prune_forgets_old_tokens(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(menu_step="a"), now=NOW, token="old")
        apply_change(session, "CA1", TicketChange(menu_step="b"), now=_later(7200), token="new")
        removed = prune_processed_webhooks(session, before=_later(3600))

    assert removed == 1
    with database.sessions() as session:
        assert session.scalars(select(ProcessedWebhook.token)).all() == ["new"]


# --- closing -------------------------------------------------------------------------------


def test_close_of_a_queued_call_is_abandoned_with_its_wait(database: Database) -> None:
    with database.sessions() as session:
        ensure_ticket(session, "CA1", now=NOW)
        apply_change(
            session, "CA1", TicketChange(outcome=Outcome.QUEUED, queued=True), now=_later(10)
        )
        ticket = close_ticket(session, "CA1", call_status="completed", now=_later(70), duration=70)

    assert ticket.outcome is Outcome.ABANDONED
    assert ticket.wait_seconds == 60
    assert ticket.ended_at == _later(70)
    assert ticket.duration_seconds == 70
    assert ticket.call_status == "completed"


def test_close_of_an_answered_call_keeps_the_outcome_and_waits_until_answered(
    database: Database,
) -> None:
    with database.sessions() as session:
        apply_change(
            session, "CA1", TicketChange(outcome=Outcome.QUEUED, queued=True), now=_later(10)
        )
        apply_change(session, "CA1", TicketChange(outcome=Outcome.ANSWERED), now=_later(40))
        close_ticket(session, "CA1", call_status="completed", now=_later(300), duration=300)

    ticket = _fresh(database, "CA1")
    assert ticket.outcome is Outcome.ANSWERED
    assert ticket.answered_at == _later(40)
    assert ticket.wait_seconds == 30


def test_close_without_any_outcome_is_abandoned_and_without_queue_has_no_wait(
    database: Database,
) -> None:
    with database.sessions() as session:
        ensure_ticket(session, "CA1", now=NOW)
        ticket = close_ticket(session, "CA1", call_status="canceled", now=_later(4), duration=None)

    assert ticket.outcome is Outcome.ABANDONED
    assert ticket.wait_seconds is None
    assert ticket.duration_seconds is None


def test_close_keeps_a_self_served_outcome(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(outcome=Outcome.SELF_SERVED), now=NOW)
        ticket = close_ticket(session, "CA1", call_status="completed", now=_later(30), duration=30)

    assert ticket.outcome is Outcome.SELF_SERVED


def test_close_of_an_unknown_call_still_leaves_a_ticket(database: Database) -> None:
    with database.sessions() as session:
        close_ticket(
            session,
            "CA-unknown",
            call_status="no-answer",
            now=NOW,
            duration=0,
            caller="+4930123",
            called="+4980000",
        )

    ticket = _fresh(database, "CA-unknown")
    assert ticket.arrived_at == NOW
    assert ticket.ended_at == NOW
    assert ticket.call_status == "no-answer"
    assert ticket.outcome is Outcome.ABANDONED
    assert (ticket.caller, ticket.called) == ("+4930123", "+4980000")


def test_closing_twice_keeps_the_first_end(database: Database) -> None:
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(queued=True), now=_later(10))
        close_ticket(session, "CA1", call_status="completed", now=_later(70), duration=70)
        close_ticket(session, "CA1", call_status="completed", now=_later(95), duration=71)

    ticket = _fresh(database, "CA1")
    assert ticket.ended_at == _later(70)
    assert ticket.wait_seconds == 60
    assert ticket.duration_seconds == 71
    assert ticket.outcome is Outcome.ABANDONED


# --- values --------------------------------------------------------------------------------


def test_datetimes_read_back_aware_in_utc(database: Database) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    with database.sessions() as session:
        apply_change(session, "CA1", TicketChange(queued=True), now=NOW.astimezone(berlin_winter))

    ticket = _fresh(database, "CA1")
    for value in (ticket.arrived_at, ticket.queued_at, ticket.created_at, ticket.updated_at):
        assert value is not None
        assert value.tzinfo is UTC
    assert ticket.arrived_at == NOW
    assert ticket.arrived_at.hour == 9


def test_references_are_seven_distinct_digits(database: Database) -> None:
    with database.sessions() as session:
        references = [ensure_ticket(session, f"CA{i}", now=NOW).reference for i in range(200)]

    assert len(set(references)) == 200
    for reference in references:
        assert len(reference) == 7
        assert reference.isdigit()
        assert reference[0] != "0"


def test_reference_is_spoken_digit_by_digit_and_found_in_that_form(database: Database) -> None:
    with database.sessions() as session:
        reference = ensure_ticket(session, "CA1", now=NOW).reference
        spoken = format_reference(reference)
        found = find_by_reference(session, spoken)
        missing = find_by_reference(session, "0000000")

    assert format_reference("4821093") == "4 8 2 1 0 9 3"
    assert found is not None and found.call_sid == "CA1"
    assert missing is None


def test_get_ticket_of_an_unknown_call_is_none(database: Database) -> None:
    with database.sessions() as session:
        assert get_ticket(session, "CA-nothing") is None


def test_list_tickets_newest_first_with_filters(database: Database) -> None:
    calls = [
        ("CA0", 0, "en-US", "payments", Outcome.ANSWERED),
        ("CA1", 60, "de-DE", "payments", Outcome.ABANDONED),
        ("CA2", 120, "en-US", "security", Outcome.ABANDONED),
        ("CA3", 180, "en-US", None, Outcome.SELF_SERVED),
    ]
    with database.sessions() as session:
        for call_sid, offset, language, queue, outcome in calls:
            change = TicketChange(language=language, queue=queue, outcome=outcome)
            apply_change(session, call_sid, change, now=_later(offset))

    def sids(**filters: Any) -> list[str]:
        with database.sessions() as session:
            return [t.call_sid for t in list_tickets(session, **filters)]

    assert sids() == ["CA3", "CA2", "CA1", "CA0"]
    assert sids(limit=2) == ["CA3", "CA2"]
    assert sids(since=_later(60)) == ["CA3", "CA2", "CA1"]
    assert sids(until=_later(60)) == ["CA0"]
    assert sids(since=_later(60), until=_later(180)) == ["CA2", "CA1"]
    assert sids(outcome=Outcome.ABANDONED) == ["CA2", "CA1"]
    assert sids(queue="payments") == ["CA1", "CA0"]
    assert sids(language="en-US", outcome=Outcome.ABANDONED) == ["CA2"]
    assert sids(since=NOW.astimezone(timezone(timedelta(hours=-5))) + timedelta(seconds=1)) == [
        "CA3",
        "CA2",
        "CA1",
    ]


def test_ticket_change_is_empty() -> None:
    assert TicketChange().is_empty()
    assert not TicketChange(queued=True).is_empty()
    assert not TicketChange(menu_step="lang:1").is_empty()
    assert not TicketChange(priority=0).is_empty()


def test_ticket_change_with_agent_satisfaction_or_events_is_not_empty() -> None:
    assert not TicketChange(agent="alice").is_empty()
    assert not TicketChange(satisfaction=3).is_empty()
    assert not TicketChange(events=(EventRecord(QueueEvent.CONNECT),)).is_empty()


def test_changes_module_stays_free_of_the_database() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(Path(changes.__file__).read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")

    assert not {n for n in imported if n.split(".")[0] in {"sqlalchemy", "alembic"}}
    assert not {n for n in imported if n in {"ivr.db", "ivr.tickets.models"}}
