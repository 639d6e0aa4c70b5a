"""Reading tickets back (`ivr.tickets.reads`): a call's records in order, a ticket by its spoken
reference, nothing for an unknown call; on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ivr.db import Database
from ivr.tickets.changes import format_reference
from ivr.tickets.reads import changes_of, find_by_reference, get_ticket
from ivr.tickets.records import JournalRecord
from ivr.tickets.writes import apply_records
from tests.support import journal_record

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def rec(call_sid: str, at: datetime = NOW, **fields: Any) -> JournalRecord:
    """A journal record of `call_sid` at `at` (NOW by default); see `support.journal_record`."""
    return journal_record(call_sid, at, **fields)


def apply(database: Database, *batch: JournalRecord) -> None:
    with database.sessions() as session:
        apply_records(session, batch, new_reference=lambda: "3000001")


def test_a_calls_history_reads_back_in_order(database: Database) -> None:
    apply(database, rec("CA1", _later(2), menu_step="b"), rec("CA1", _later(1), menu_step="a"))

    with database.sessions() as session:
        history = changes_of(session, "CA1")
    assert [r.change.menu_step for r in history] == ["a", "b"]


def test_reference_is_spoken_digit_by_digit_and_found_in_that_form(database: Database) -> None:
    apply(database, rec("CA1", reference="4821093"))
    with database.sessions() as session:
        found = find_by_reference(session, format_reference("4821093"))
        missing = find_by_reference(session, "0000000")

    assert format_reference("4821093") == "4 8 2 1 0 9 3"
    assert found is not None and found.call_sid == "CA1"
    assert missing is None


def test_get_ticket_of_an_unknown_call_is_none(database: Database) -> None:
    with database.sessions() as session:
        assert get_ticket(session, "CA-nothing") is None
