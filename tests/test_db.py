"""The database layer: migrations, the engine settings, and UTC timestamps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import String, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from ivr.db import Base, Database, normalise_url
from ivr.tickets.models import Ticket
from ivr.tickets.records import JournalRecord
from tests.support import downgrade

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _ticket(**values: object) -> Ticket:
    defaults: dict[str, object] = {
        "call_sid": "CA1",
        "reference": "1234567",
        "arrived_at": NOW,
        "menu_path": [],
    }
    return Ticket(**(defaults | values))


def test_upgrade_of_an_empty_database_reaches_head(empty_database: Database) -> None:
    assert empty_database.current_revision() is None

    empty_database.upgrade()
    empty_database.upgrade()  # already at head: nothing to do

    assert empty_database.current_revision() == empty_database.head_revision() == "0009"
    with empty_database.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert {
        "tickets",
        "ticket_changes",
        "reference_blocks",
        "queue_events",
        "alembic_version",
    } <= tables


def test_the_schema_state_says_what_to_run(empty_database: Database) -> None:
    assert empty_database.schema().problem() == (
        "the database is without any schema, the code needs 0009: run `ivr db upgrade`"
    )
    empty_database.upgrade("0002")
    assert empty_database.schema().problem() == (
        "the database is at revision 0002, the code needs 0009: run `ivr db upgrade`"
    )
    empty_database.upgrade()
    assert empty_database.schema().ready and empty_database.schema().problem() is None


def _compare_type(
    context: MigrationContext,
    inspected_column: object,
    metadata_column: object,
    inspected_type: object,
    metadata_type: object,
) -> bool | None:
    # SQLite keeps no VARCHAR length (a migration that only widens one skips SQLite: copying the
    # table there would fire its foreign keys' ON DELETE); elsewhere, Alembic's own comparison.
    if context.dialect.name == "sqlite" and all(
        isinstance(getattr(t, "impl", t), String) for t in (inspected_type, metadata_type)
    ):
        return False
    return None


def test_migrations_match_the_models(empty_database: Database) -> None:
    empty_database.upgrade()

    with empty_database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": _compare_type})
        diff = compare_metadata(context, Base.metadata)

    assert diff == []


def test_constraints_follow_the_naming_convention(database: Database) -> None:
    with database.engine.connect() as connection:
        inspector = inspect(connection)
        uniques = {c["name"] for c in inspector.get_unique_constraints("tickets")}
        indexes = {i["name"] for i in inspector.get_indexes("tickets")}

    assert uniques == {"uq_tickets_call_sid", "uq_tickets_reference"}
    assert {"ix_tickets_arrived_at", "ix_tickets_outcome"} <= indexes


def test_satisfaction_is_checked(database: Database) -> None:
    with database.sessions() as session:
        session.add(_ticket(satisfaction=6))
        with pytest.raises(IntegrityError):
            session.flush()


def test_ping(database: Database) -> None:
    assert database.ping() is True


def test_ping_of_an_unreachable_database_is_false_without_raising() -> None:
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    started = time.monotonic()

    assert unreachable.ping() is False
    assert time.monotonic() - started < 5
    unreachable.dispose()


def test_naive_datetimes_are_refused(database: Database) -> None:
    naive = datetime(2026, 3, 2, 9, 30)
    with database.sessions() as session:
        session.add(_ticket(arrived_at=naive))
        with pytest.raises(StatementError) as raised:
            session.flush()
        session.rollback()

        assert isinstance(raised.value.orig, ValueError)
    # Nor can a naive time reach the journal the tickets are written from.
    with pytest.raises(ValueError, match="aware"):
        JournalRecord(id="r1", call_sid="CA2", at=naive)


def test_aware_datetimes_are_stored_in_utc(database: Database) -> None:
    new_york = timezone(timedelta(hours=-5))
    with database.sessions() as session:
        session.add(_ticket(arrived_at=NOW.astimezone(new_york)))
        session.commit()
    with database.sessions() as session:
        arrived = session.scalars(select(Ticket.arrived_at)).one()
        # Filtering compares instants, whatever offset the bound value carries.
        found = session.scalars(select(Ticket).where(Ticket.arrived_at >= NOW)).all()

    assert arrived == NOW
    assert arrived.tzinfo is UTC
    assert len(found) == 1


def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    with database.session() as session:
        session.add(_ticket(call_sid="CA-kept", reference="1111111"))
    with pytest.raises(RuntimeError), database.session() as session:
        session.add(_ticket(call_sid="CA-lost", reference="2222222"))
        session.flush()
        raise RuntimeError("boom")

    with database.sessions() as session:
        assert session.scalars(select(Ticket.call_sid)).all() == ["CA-kept"]


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:secret@db.example/ivr", "postgresql+psycopg"),
        ("postgresql://u:secret@db.example/ivr", "postgresql+psycopg"),
        ("postgresql+psycopg://u:secret@db.example/ivr", "postgresql+psycopg"),
        ("sqlite:///instance/ivr.sqlite3", "sqlite"),
    ],
)
def test_urls_are_normalised(url: str, driver: str) -> None:
    normalised = normalise_url(url)

    assert normalised.drivername == driver
    assert normalised.password == (None if driver == "sqlite" else "secret")
    assert Database(url).engine.url.drivername == driver


def test_sqlite_parent_directory_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = Database("sqlite:///instance/nested/ivr.sqlite3")

    assert (tmp_path / "instance" / "nested").is_dir()
    assert database.ping()
    database.dispose()


def ticket_columns(database: Database) -> set[str]:
    """The columns of the tickets table as the database has them now."""
    with database.engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns("tickets")}


def test_migration_0006_adds_what_was_said_and_takes_it_away_again(
    empty_database: Database,
) -> None:
    empty_database.upgrade()
    assert {"said", "said_to", "said_checked"} <= ticket_columns(empty_database)
    downgrade(empty_database, "0005")
    assert not {"said", "said_to", "said_checked"} & ticket_columns(empty_database)
    assert "account" in ticket_columns(empty_database)

    empty_database.upgrade()
    assert empty_database.schema().ready


def test_migration_0007_adds_retention_to_a_database_with_records_and_takes_it_away_again(
    empty_database: Database,
) -> None:
    def schema() -> tuple[set[str], set[str]]:
        with empty_database.engine.connect() as connection:
            found = inspect(connection)
            indexes = {i["name"] or "" for i in found.get_indexes("ticket_changes")}
            return set(found.get_table_names()), indexes

    empty_database.upgrade("0006")
    with empty_database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ticket_changes (id, call_sid, at, seq, body, written_at) "
                "VALUES ('r1', 'CA1', '2026-11-01 10:00:00+00:00', 1, '{}', "
                "'2026-11-01 10:00:00+00:00')"
            )
        )
    empty_database.upgrade()  # `ivr db upgrade` on a database in use

    tables, indexes = schema()
    assert "pruned_calls" in tables and "ix_ticket_changes_at" in indexes
    with empty_database.engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM ticket_changes")).scalars().all() == ["r1"]
    downgrade(empty_database, "0006")
    tables, indexes = schema()
    assert "pruned_calls" not in tables and "ix_ticket_changes_at" not in indexes


def test_migration_0009_adds_the_incident_heard_to_tickets_and_takes_it_away_again(
    empty_database: Database,
) -> None:
    empty_database.upgrade()
    assert "incident" in ticket_columns(empty_database)
    downgrade(empty_database, "0008")
    assert "incident" not in ticket_columns(empty_database)
    assert "said_checked" in ticket_columns(empty_database)

    empty_database.upgrade()
    assert empty_database.schema().ready
