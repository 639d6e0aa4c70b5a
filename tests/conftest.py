"""Shared fixtures.

Tests use real PostgreSQL and Redis when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set (CI sets
both, see `.ci/run`) and SQLite / fakeredis otherwise; the test code is the same for both. When a URL
is set but its service is unreachable, the tests fail; they never skip. Tests that take `every_redis`
also run against a private Redis Cluster and a Sentinel setup, always (they need only `redis-server`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, Table

from ivr.clock import FrozenClock
from ivr.config import Settings
from ivr.db import Database, normalise_url
from ivr.queue import connect
from ivr.simulator.rest import TwilioRest
from tests.support import PUBLIC, REST_ACCOUNT_SID, twilio_rest
from tests.topologies import TOPOLOGY_URLS, Cluster, SentinelSetup, running

if TYPE_CHECKING:
    from tests.exchange.support import ServedReference

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def redis_server() -> redis.Redis:
    """One Redis connection for the session: the real server when configured, else fakeredis."""
    if TEST_REDIS_URL:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        client.ping()  # unreachable on CI -> error, not skip
        return client
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def redis_client(redis_server: redis.Redis) -> Iterator[redis.Redis]:
    """A clean Redis database around each test."""
    redis_server.flushdb()
    yield redis_server
    redis_server.flushdb()


REDIS_TOPOLOGIES = ("one", "cluster", "sentinel")
"""What `every_redis` runs a test against: one server (as `redis_client`), a real 3-primary Redis
Cluster, and a primary found through three Sentinels (tests/topologies.py)."""


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A private Redis Cluster (three primaries, three replicas) for the session."""
    with running(Cluster()) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSetup]:
    """A private primary, replica and three Sentinels for the session."""
    with running(SentinelSetup()) as setup:
        yield setup


@pytest.fixture(params=REDIS_TOPOLOGIES)
def every_redis(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A clean Redis of each topology in turn, reached the way the service reaches it
    (`ivr.queue.connect` with the URL an operator would set)."""
    if request.param == "one":
        server: redis.Redis = request.getfixturevalue("redis_server")
        server.flushdb()
        yield server
        server.flushdb()
        return
    setup: Cluster | SentinelSetup = request.getfixturevalue(f"redis_{request.param}")
    setup.flush()
    client = connect(setup.url)
    TOPOLOGY_URLS[id(client)] = setup.url
    try:
        yield client
    finally:
        del TOPOLOGY_URLS[id(client)]
        setup.flush()
        client.close()


# --- database fixtures ---
# The schema is migrated once per session (on PostgreSQL after dropping everything left from an
# earlier run); `database` then empties every table before and after each test. With
# TEST_DATABASE_URL unset the tests run on a SQLite file in a temporary directory.


_EMPTY_SCHEMA = "ivr_empty_schema"


def _recreate_pg_schema(database: Database, schema: str) -> None:
    with database.engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One database for the whole session, migrated to the newest revision."""
    if TEST_DATABASE_URL:
        database = Database(TEST_DATABASE_URL)
        _recreate_pg_schema(database, "public")  # unreachable on CI -> error, not skip
    else:
        path = tmp_path_factory.mktemp("database") / "ivr.sqlite3"
        database = Database(f"sqlite:///{path}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def _database_tables(migrated_database: Database) -> list[Table]:
    # Reflected rather than taken from Base.metadata, so tables whose models a test module never
    # imported are emptied too; children first for foreign keys.
    metadata = MetaData()
    metadata.reflect(migrated_database.engine)
    return [t for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]


def _delete_all_rows(database: Database, tables: list[Table]) -> None:
    with database.engine.begin() as connection:
        for table in tables:
            connection.execute(table.delete())
        if connection.dialect.name == "postgresql":
            # Admins number rules versions and incidents from 1; so do the tests, on SQLite too.
            for numbered in ("rules_versions", "incidents"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{numbered}', 'id'), 1, false)"
                )


@pytest.fixture
def database(migrated_database: Database, _database_tables: list[Table]) -> Iterator[Database]:
    """The migrated database with every table empty around the test."""
    _delete_all_rows(migrated_database, _database_tables)
    yield migrated_database
    _delete_all_rows(migrated_database, _database_tables)


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[Database]:
    """A database without any schema yet, for tests of the migrations themselves."""
    if not TEST_DATABASE_URL:
        database = Database(f"sqlite:///{tmp_path}/empty.sqlite3")
        yield database
        database.dispose()
        return
    admin = Database(TEST_DATABASE_URL)
    _recreate_pg_schema(admin, _EMPTY_SCHEMA)
    # A schema of its own (first on the search path) keeps it apart from `migrated_database`.
    url = normalise_url(TEST_DATABASE_URL).update_query_dict(
        {"options": f"-csearch_path={_EMPTY_SCHEMA}"}
    )
    database = Database(url.render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{_EMPTY_SCHEMA}" CASCADE')
        admin.dispose()


# --- app fixtures ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
MONDAY_AFTERNOON = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
"""Monday 10:00 in New York, 16:00 in Berlin, 23:00 in Shanghai."""


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY_AFTERNOON)


@pytest.fixture
def app_factory(
    database: Database, redis_client: redis.Redis, clock: FrozenClock, tmp_path: Path
) -> Callable[..., Flask]:
    """Builds apps on the test database, Redis and clock; keyword arguments override settings.

    The ticket writer runs after each request ("inline") and no background thread is started, so a
    test reads the tickets a webhook journaled as soon as the webhook answered."""
    from ivr import create_app
    from tests.support import AUTH_TOKEN, STATE_SECRET

    def build(twilio_http_client: Any = None, exchange: Any = None, **overrides: Any) -> Flask:
        settings = Settings(
            database_url="unused://",
            twilio_auth_token=AUTH_TOKEN,
            routing_rules=ROOT / "routing_rules.yaml",
            voice_prompts=ROOT / "voice_prompts",
            writer="inline",
            background=False,
            spool_dir=tmp_path / "spool",
            state_secrets=(STATE_SECRET,),
            agent_pins=tmp_path / "agent_pins.json",
            admins=tmp_path / "admins.json",
        ).with_overrides(**overrides)
        return create_app(
            settings,
            clock,
            database=database,
            redis_client=redis_client,
            twilio_http_client=twilio_http_client,
            exchange=exchange,
        )

    return build


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def rest() -> TwilioRest:
    """Twilio's REST API, faked at the `twilio` library's HTTP client: records every request and
    answers as Twilio does (a move of a call not in progress: 21220); `tests.support.Phone` tells
    it which calls are."""
    return twilio_rest()


@pytest.fixture
def rest_app(app_factory: Callable[..., Flask], rest: TwilioRest) -> Flask:
    """The app with Twilio REST credentials, so that it moves callers to agents and places
    callbacks itself (a module that wants it for `client` sets `app = rest_app`)."""
    return app_factory(
        twilio_http_client=rest, twilio_account_sid=REST_ACCOUNT_SID, public_base_url=PUBLIC
    )


# --- agent PINs -----------------------------------------------------------------------------------

AGENT_PINS = {
    "li_wei": "581937",
    "emma": "730152",
    "lucas": "296418",
    "anna": "517394",
    "sec_desk": "909417",
}
"""The PINs the `agent_pins` fixture gives the shipped rules' agents."""


def write_agent_pins(path: Path, pins: dict[str, str] | None = None) -> None:
    """Store PINs as `ivr agents set-pin` does, at argon2's cheapest cost: the suite stays fast, and
    the server verifies each hash at the cost it was made with."""
    from argon2 import PasswordHasher, profiles

    from ivr.credentials import PinStore

    store = PinStore(path, PasswordHasher.from_parameters(profiles.CHEAPEST))
    store.set_pins(AGENT_PINS if pins is None else pins)


@pytest.fixture
def agent_pins(tmp_path: Path) -> dict[str, str]:
    """The shipped rules' agents have the `AGENT_PINS` in the PIN file of the test apps."""
    write_agent_pins(tmp_path / "agent_pins.json")
    return dict(AGENT_PINS)


# --- the exchange hook ----------------------------------------------------------------------------


@pytest.fixture
def served_exchange() -> Iterator[ServedReference]:
    """The exchange hook's reference implementation served over real TCP (HTTP/1.1, keep-alive),
    behind a `FaultProxy`: build an app with `exchange_url=served_exchange.url,
    exchange_secret=tests.exchange.support.SECRET`, then `served_exchange.proxy.stall()` (or
    `refuse()`, `drop()`, `forward()`). The codes it sends: `served_exchange.reference.codes_sent`."""
    from tests.exchange.support import served_reference

    with served_reference() as served:
        yield served
