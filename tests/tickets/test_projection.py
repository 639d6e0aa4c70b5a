"""Folding a call's journal records into its ticket: order of arrival and repeats never matter."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from ivr.tickets.changes import EventRecord, Outcome, QueueEvent
from ivr.tickets.projection import agent_events, project
from ivr.tickets.records import CallEnd, JournalRecord
from tests.support import journal_record

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_whole_call() -> list[JournalRecord]:
    """incoming -> English -> funds -> deposit (queued) -> answered -> ended -> rated."""
    return [
        journal_record("CA1", at(0), reference="4821093", caller="+14155550100", called="+1800"),
        journal_record("CA1", at(4), language="en-US", menu_step="language:2"),
        journal_record("CA1", at(9), menu_step="main:2"),
        journal_record(
            "CA1",
            at(14),
            menu_step="funds:1",
            issue="deposit",
            queue="funds",
            team="americas",
            priority=50,
            outcome=Outcome.QUEUED,
            queued=True,
            events=(EventRecord(QueueEvent.ENTERQUEUE, "funds", "en-US"),),
        ),
        journal_record(
            "CA1",
            at(74),
            outcome=Outcome.ANSWERED,
            agent="emma",
            events=(EventRecord(QueueEvent.CONNECT, agent="emma", wait_seconds=60),),
        ),
        journal_record("CA1", at(300), satisfaction=4),
        journal_record("CA1", at(310), end=CallEnd("completed", 310)),
    ]


def test_a_whole_call_folds_into_its_ticket() -> None:
    ticket, events = project("CA1", a_whole_call())

    assert ticket.reference == "4821093"
    assert (ticket.caller, ticket.called, ticket.language) == ("+14155550100", "+1800", "en-US")
    assert ticket.menu_path == ["language:2", "main:2", "funds:1"]
    assert (ticket.issue, ticket.queue, ticket.team, ticket.priority) == (
        "deposit",
        "funds",
        "americas",
        50,
    )
    assert (ticket.arrived_at, ticket.queued_at, ticket.answered_at, ticket.ended_at) == (
        at(0),
        at(14),
        at(74),
        at(310),
    )
    assert (ticket.outcome, ticket.wait_seconds, ticket.agent, ticket.satisfaction) == (
        Outcome.ANSWERED,
        60,
        "emma",
        4,
    )
    assert (ticket.call_status, ticket.duration_seconds) == ("completed", 310)
    assert [(e.record.event, e.queue, e.language) for e in events] == [
        (QueueEvent.ENTERQUEUE, "funds", "en-US"),
        (QueueEvent.CONNECT, "funds", "en-US"),  # named by the ticket, as the reports need
    ]


@pytest.mark.parametrize("seed", range(20))
def test_any_order_of_arrival_and_any_repeats_give_the_same_ticket(seed: int) -> None:
    call = a_whole_call()
    expected = project("CA1", call)
    shuffled = list(call)
    chance = random.Random(seed)
    shuffled += chance.sample(shuffled, 3)  # delivered twice
    chance.shuffle(shuffled)

    assert project("CA1", shuffled) == expected


def test_records_of_one_instant_keep_the_order_they_were_made_in() -> None:
    seq = itertools.count()
    records = [journal_record("CA1", T0, seq=next(seq), menu_step=f"step:{i}") for i in range(5)]
    ticket, _ = project("CA1", reversed(records))
    assert ticket.menu_path == [f"step:{i}" for i in range(5)]


def test_the_newest_reference_wins_and_caller_is_never_overwritten() -> None:
    # A retried first webhook on another instance gave the caller another reference: the URLs the
    # caller now follows carry the second one, and that is the one they hear read back.
    ticket, _ = project(
        "CA1",
        [
            journal_record("CA1", at(0), reference="1111111", caller="+1555"),
            journal_record("CA1", at(1), reference="2222222", caller="+1666"),
            journal_record("CA1", at(2)),
        ],
    )
    assert (ticket.reference, ticket.caller) == ("2222222", "+1555")


@pytest.mark.parametrize(
    ("outcome", "settled"),
    [
        (None, Outcome.ABANDONED),
        (Outcome.QUEUED, Outcome.ABANDONED),
        (Outcome.SELF_SERVED, Outcome.SELF_SERVED),
        (Outcome.VOICEMAIL, Outcome.VOICEMAIL),
        (Outcome.CALLBACK, Outcome.CALLBACK),
        (Outcome.CLOSED_HOURS, Outcome.CLOSED_HOURS),
        (Outcome.ANSWERED, Outcome.ANSWERED),
    ],
)
def test_how_an_ended_call_is_settled(outcome: Outcome | None, settled: Outcome) -> None:
    ticket, _ = project(
        "CA1",
        [
            journal_record("CA1", at(0), outcome=outcome),
            journal_record("CA1", at(5), end=CallEnd("completed", 5)),
        ],
    )
    assert ticket.outcome is settled


def test_a_call_that_has_not_ended_is_not_settled() -> None:
    ticket, _ = project("CA1", [journal_record("CA1", at(0), outcome=Outcome.QUEUED, queued=True)])
    assert (ticket.outcome, ticket.ended_at, ticket.wait_seconds) == (Outcome.QUEUED, None, None)


def test_the_ticket_keeps_what_was_said_where_it_led_and_that_the_line_asked() -> None:
    ticket, _ = project(
        "CA1",
        [
            journal_record("CA1", at(0), language="en-US", menu_step="language:2"),
            # Unsure: the line asks once ("Did you mean withdrawals?"); the caller presses 1.
            journal_record(
                "CA1", at(5), menu_step="main:said", said="my money is gone", said_checked=True
            ),
            journal_record("CA1", at(9), menu_step="funds:2", said_to="withdrawal"),
        ],
    )
    assert ticket.menu_path == ["language:2", "main:said", "funds:2"]
    assert (ticket.said, ticket.said_to, ticket.said_checked) == (
        "my money is gone",
        "withdrawal",
        True,
    )


def test_a_call_nobody_spoke_on_has_nothing_said() -> None:
    ticket, _ = project("CA1", a_whole_call())
    assert (ticket.said, ticket.said_to, ticket.said_checked) == (None, None, None)


def test_records_of_other_calls_are_ignored_and_none_at_all_is_an_error() -> None:
    ticket, _ = project(
        "CA1", [journal_record("CA1", at(0)), journal_record("CA2", at(1), menu_step="x")]
    )
    assert ticket.menu_path == []
    with pytest.raises(ValueError):
        project("CA9", [journal_record("CA1", at(0))])


def test_agent_events_take_no_queue_from_anything() -> None:
    login = EventRecord(QueueEvent.AGENTLOGIN, agent="emma")
    (event,) = agent_events([journal_record("", at(0), events=(login,))])
    assert (event.record.agent, event.queue, event.language, event.call_sid) == (
        "emma",
        None,
        None,
        "",
    )
