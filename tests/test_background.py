"""The background work of a process: settling the agents of a large roster a share at a time, and,
where it writes tickets, pruning the journal records retention no longer keeps
(`IVR_TICKET_CHANGES_RETENTION_DAYS`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select

from ivr import background
from ivr.background import SETTLE_AGENTS_PER_ROUND, agents_to_settle
from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import Services
from ivr.tickets.models import TicketChangeRow
from ivr.tickets.records import CallEnd
from ivr.tickets.retention import Pruned
from tests.support import journal_record, write_records


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["ivr"]
    return found


def calls_that_ended(database: Database, clock: FrozenClock, *days_ago: int) -> None:
    """One call (2 records) for each number of days: it ended that many days before the clock."""
    for days in days_ago:
        end = clock.now() - timedelta(days=days)
        write_records(
            database,
            journal_record(f"CA{days}", end - timedelta(seconds=60), language="de-DE"),
            journal_record(f"CA{days}", end, end=CallEnd("completed", 60)),
        )


def records_of(database: Database) -> list[str]:
    with database.sessions() as session:
        return sorted(
            session.scalars(select(TicketChangeRow.call_sid).group_by(TicketChangeRow.call_sid))
        )


def test_the_retention_setting_says_which_calls_lose_their_records(
    app_factory: Callable[..., Flask], database: Database, clock: FrozenClock
) -> None:
    calls_that_ended(database, clock, 3, 10, 40)

    kept_forever = services_of(app_factory(ticket_changes_retention_days=0))
    assert background.prune_old_changes(kept_forever) == Pruned(0, 0)
    assert records_of(database) == ["CA10", "CA3", "CA40"]

    a_week = services_of(app_factory(ticket_changes_retention_days=7))
    assert background.prune_old_changes(a_week) == Pruned(calls=2, records=4)
    assert records_of(database) == ["CA3"]


def test_the_threads_of_a_process_that_writes_tickets_prune(
    app_factory: Callable[..., Flask], database: Database, clock: FrozenClock
) -> None:
    calls_that_ended(database, clock, 1, 31)
    s = services_of(app_factory())  # the default: 30 days
    threads = background.Background(s, writer=True)
    threads.ensure_started()
    try:
        deadline = time.monotonic() + 10
        while records_of(database) != ["CA1"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        threads.stop()
    assert records_of(database) == ["CA1"]
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TicketChangeRow)) == 2


def test_the_first_round_settles_every_agent_then_each_round_the_next_share() -> None:
    roster = [f"agent{i:04d}" for i in range(1000)]

    first, start = agents_to_settle(roster, None)
    rounds = [first]
    for _ in range(1000 // SETTLE_AGENTS_PER_ROUND):
        chunk, start = agents_to_settle(roster, start)
        rounds.append(chunk)

    assert rounds[0] == roster
    assert all(len(chunk) == SETTLE_AGENTS_PER_ROUND for chunk in rounds[1:])
    # After the first round, every agent is read once in each pass over the roster.
    assert sorted(a for chunk in rounds[1:] for a in chunk) == roster
    assert agents_to_settle(roster, start)[0] == roster[:SETTLE_AGENTS_PER_ROUND]


def test_a_small_roster_is_settled_whole_every_round_and_a_shrunk_one_wraps_around() -> None:
    small = ["emma", "lucas"]
    assert agents_to_settle(small, 7) == (small, 0)
    roster = [f"a{i}" for i in range(SETTLE_AGENTS_PER_ROUND + 10)]
    chunk, start = agents_to_settle(roster, 5 * len(roster) + 20)  # the rules lost agents
    assert (
        chunk[0] == "a20" and chunk[-1] == roster[(20 + SETTLE_AGENTS_PER_ROUND - 1) % len(roster)]
    )
    assert start == (20 + SETTLE_AGENTS_PER_ROUND) % len(roster)
