"""The one module that owns the database: declarative base, engine, sessions and migrations.

Every timestamp column is `UTCDateTime`: callers hand it aware datetimes, it stores UTC and reads
back aware UTC datetimes on every backend. The schema belongs to Alembic (`ivr/migrations`, shipped
inside the package); `Database.upgrade()` brings a database to the newest revision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    URL,
    DateTime,
    Engine,
    MetaData,
    String,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ivr.clock import Clock

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Deterministic constraint names, so migrations can refer to (and drop) constraints by name on
# every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Deadlines on everything PostgreSQL does for us (the writer, health checks, reference leases; no
# webhook waits on it). A URL's own ?connect_timeout= wins; `options` are added to the URL's own.
_PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 2,  # libpq's smallest: an unreachable host answers no faster
    # A peer that vanished without closing (a dead host, dropped packets) is noticed within ~20 s
    # instead of the kernel's default two hours, so the pool does not keep handing out dead sockets.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms: unacknowledged data for this long drops the connection
}
_PG_OPTIONS = (
    "-c statement_timeout=10000 -c lock_timeout=5000 -c idle_in_transaction_session_timeout=60000"
)
_POOL_TIMEOUT_SECONDS = 3


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (in UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend handed back."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        # SQLite keeps no offset; what it holds was written as UTC by process_bind_param.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class SafeString(TypeDecorator[str]):
    """A VARCHAR that stores any text a caller or Twilio could send: PostgreSQL refuses the NUL
    character, so it is stored as U+FFFD (the rest of the row, the ticket, is kept)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Replace NUL, which no PostgreSQL text value may hold."""
        return None if value is None else value.replace("\x00", "\ufffd")


class Base(DeclarativeBase):
    """Declarative base for every table of the application."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL, pointing plain PostgreSQL URLs at the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True)
class SchemaState:
    """The database's migration revision and the newest one the code ships."""

    current: str | None
    head: str | None

    @property
    def ready(self) -> bool:
        return self.current == self.head

    def problem(self) -> str | None:
        """Why tickets cannot be written to this database, in words an operator can act on."""
        if self.ready:
            return None
        where = f"at revision {self.current}" if self.current else "without any schema"
        return f"the database is {where}, the code needs {self.head}: run `ivr db upgrade`"


def insert_for(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the backend's ON CONFLICT clauses (PostgreSQL and SQLite both have them)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for the {dialect} backend")


class Database:
    """An engine, a session factory and the schema migrations for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        backend = self.url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if backend == "sqlite":
            _create_sqlite_parent(self.url)
            # Flask serves requests on worker threads; sessions never share a connection
            # between threads at the same time, the pool hands each its own.
            connect_args["check_same_thread"] = False
        elif backend == "postgresql":
            connect_args.update(
                {k: v for k, v in _PG_CONNECT_ARGS.items() if k not in self.url.query}
            )
            own = self.url.query.get("options", "")
            connect_args["options"] = " ".join(filter(None, [own, _PG_OPTIONS]))  # type: ignore[list-item]
        self.engine: Engine = create_engine(
            self.url,
            pool_pre_ping=True,
            pool_timeout=_POOL_TIMEOUT_SECONDS,
            connect_args=connect_args,
        )
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self._head: str | None = None
        self._head_read = False

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> bool:
        """True when the database answers a trivial query; never raises."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to `revision` (by default the newest) in one transaction."""
        config = self.alembic_config()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def schema(self) -> SchemaState:
        """Where the schema stands against the code's newest migration; raises when unreachable."""
        return SchemaState(self.current_revision(), self.head_revision())

    def unready(self) -> str | None:
        """Why the code cannot use this database now (it does not answer, or its schema is not the
        code's), in words an operator can act on; None when it can. Never raises."""
        try:
            return self.schema().problem()
        except SQLAlchemyError as exc:
            return f"cannot reach the database ({failure_reason(exc)})"

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before the first migration."""
        with self.engine.connect() as connection:
            return _current_revision(connection)

    def head_revision(self) -> str | None:
        """The newest revision shipped with the code (read once: the code does not change)."""
        if not self._head_read:
            self._head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
            self._head_read = True
        return self._head

    def alembic_config(self) -> Config:
        """An Alembic configuration for the migrations shipped inside the package."""
        config = Config()
        # Config values go through ConfigParser interpolation, where "%" is special.
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        return config

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def failure_reason(exc: SQLAlchemyError) -> str:
    """The first line of what the driver said went wrong (SQLAlchemy's own text runs to several
    lines, with the statement and a link), for a log line or a message."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _current_revision(connection: Connection) -> str | None:
    # What MigrationContext.get_current_revision() reads, without building Alembic's machinery
    # every time the health probe asks (it is CPU the request threads would wait for).
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(versions) > 1:  # branches: let Alembic say what that means
        return MigrationContext.configure(connection).get_current_revision()
    return versions[0] if versions else None


def _create_sqlite_parent(url: URL) -> None:
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3's legacy transaction handling emits BEGIN only before DML, which breaks SAVEPOINTs
    # and repeatable reads; take over BEGIN ourselves (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: concurrent writers then wait for each other (up to
    # the busy timeout) instead of failing with "database is locked" when a read lock cannot be
    # upgraded mid-transaction.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# --- health ---------------------------------------------------------------------------------------

PROBE_EVERY_SECONDS = 0.5
"""How often the background thread (`ivr-health`) probes the database."""
ANSWER_WITHIN_SECONDS = 1.5
"""A probe waiting longer than this for its answer means the database stopped answering (a frozen
server accepts connections and answers nothing): with `PROBE_EVERY_SECONDS`, `/healthz` shows it
within 2 s."""
STALE_SECONDS = 3.0
"""An answer older than this, with no probe since, is not trusted either (the thread is stuck)."""


@dataclass(frozen=True)
class DatabaseState:
    """The last answer of the database, and what it means for tickets."""

    reachable: bool
    problem: str | None
    """Why tickets are not being written there: unreachable, or the schema is behind."""
    checked_at: datetime | None

    @property
    def schema_behind(self) -> bool:
        return self.reachable and self.problem is not None


class DatabaseHealth:
    """Probes the database (ping and schema revision) and keeps the latest answer.

    Ages are measured on `monotonic` (real seconds, whatever the service's clock says)."""

    def __init__(
        self, db: Database, clock: Clock, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._latest = DatabaseState(False, "not checked yet", None)
        self._answered_at: float | None = None
        self._asked_at: dict[object, float] = {}
        """When each probe waiting for its answer now was started."""
        self._failures = 0
        self.on_failure: Callable[[], None] | None = None
        """Called after each probe that found the database unreachable (the metrics count it)."""

    def probe(self) -> DatabaseState:
        """Ask the database now (may take as long as its timeouts allow)."""
        probe = object()
        with self._lock:
            self._asked_at[probe] = self._monotonic()
        try:
            problem = self._db.schema().problem()
            state = DatabaseState(True, problem, self._clock.now())
        except SQLAlchemyError as exc:
            state = DatabaseState(False, f"unreachable: {failure_reason(exc)}", self._clock.now())
        finally:
            with self._lock:
                del self._asked_at[probe]
        with self._lock:
            self._latest = state
            self._answered_at = self._monotonic()
            self._failures += 0 if state.reachable else 1
        if not state.reachable and self.on_failure is not None:
            self.on_failure()
        return state

    def failures(self) -> int:
        """How many probes found the database unreachable since the process started."""
        with self._lock:
            return self._failures

    def latest(self) -> DatabaseState:
        """The last probe's answer; says the database is not answering when a probe has waited
        too long for its answer, or the last answer is too old to trust."""
        now = self._monotonic()
        with self._lock:
            state, answered_at = self._latest, self._answered_at
            asked_at = min(self._asked_at.values(), default=None)
        if asked_at is not None and now - asked_at > ANSWER_WITHIN_SECONDS:
            return DatabaseState(
                False, f"no answer for {round(now - asked_at)} s", state.checked_at
            )
        if answered_at is not None and now - answered_at > STALE_SECONDS:
            age = round(now - answered_at)
            return DatabaseState(False, f"no answer for {age} s", state.checked_at)
        return state
