"""`/healthz`: up while calls can be taken (saying what is degraded), 503 when they must not be."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask

from ivr.app import create_app
from ivr.clock import FrozenClock
from ivr.config import Settings
from ivr.db import ANSWER_WITHIN_SECONDS, STALE_SECONDS, Database, DatabaseHealth, SchemaState
from ivr.services import services
from tests.conftest import MONDAY_AFTERNOON
from tests.faults import WriteFaults, free_port
from tests.support import AUTH_TOKEN, PROMPTS, RULES, STATE_SECRET, Phone
from tests.tickets.test_journal import unreachable_redis


def test_all_well(app: Flask) -> None:
    body = app.test_client().get("/healthz").get_json()
    assert (body["status"], body["database"], body["redis"]) == ("ok", "ok", "ok")
    assert body["journal"]["spool_writable"] is True
    assert body["references_at_hand"] > 0
    assert body["outage_references_given"] == 0
    assert body["rules"]["state"] == "ok"


def test_what_waits_in_the_journal_is_shown(app: Flask) -> None:
    with app.app_context():
        services().writer.db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    Phone(app.test_client()).dial()

    body = app.test_client().get("/healthz").get_json()
    assert body["journal"]["spool_files"] >= 1 and body["journal"]["spool_bytes"] > 0
    assert "unreachable" in body["writer"]["problem"]


def test_a_database_that_is_down_leaves_the_line_up_and_says_so(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory()
    with app.app_context():
        services().health = DatabaseHealth(
            Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x"), services().clock
        )
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 200  # calls go on; tickets wait in the journal
    assert body["status"] == "degraded"
    assert body["database"].startswith("unreachable")


def build(database: Database, tmp_path: Path, redis_client: redis.Redis) -> Flask:
    return create_app(
        Settings(
            twilio_auth_token=AUTH_TOKEN,
            routing_rules=RULES,
            voice_prompts=PROMPTS,
            writer="inline",
            background=False,
            spool_dir=tmp_path / "spool",
            state_secrets=(STATE_SECRET,),
        ),
        FrozenClock(MONDAY_AFTERNOON),
        database=database,
        redis_client=redis_client,
    )


def test_redis_down_leaves_the_line_up_while_the_spool_can_keep_changes(
    database: Database, tmp_path: Path
) -> None:
    app = build(database, tmp_path, unreachable_redis())
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["redis"] == "unreachable"

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with app.app_context():
        services().journal.spool.folder = blocked / "spool"
    response = app.test_client().get("/healthz")
    assert response.status_code == 503  # nowhere to keep a ticket change: send calls elsewhere
    assert response.get_json()["status"] == "unavailable"


def test_a_schema_behind_the_code_takes_the_instance_out_with_what_to_run(
    empty_database: Database, redis_client: redis.Redis, tmp_path: Path
) -> None:
    empty_database.upgrade("0002")
    app = build(empty_database, tmp_path, redis_client)
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["database"] == (
        "the database is at revision 0002, the code needs 0009: run `ivr db upgrade`"
    )


class Timer:
    """Real seconds, as `DatabaseHealth` measures ages, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_too_old_to_trust_says_the_database_is_not_answering(
    database: Database, clock: FrozenClock
) -> None:
    timer = Timer()
    health = DatabaseHealth(database, clock, monotonic=timer)
    assert health.latest().problem == "not checked yet"
    assert health.probe().problem is None
    timer.now += STALE_SECONDS - 0.5
    assert health.latest().problem is None
    timer.now += 1.5
    stale = health.latest()
    assert not stale.reachable and stale.problem == f"no answer for {round(STALE_SECONDS + 1)} s"


class FreezableDatabase(Database):
    """The test database, whose schema query can be made to hang as a frozen server's does."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.thawed = threading.Event()
        self.thawed.set()
        self.asked = threading.Event()

    def schema(self) -> SchemaState:
        self.asked.set()
        assert self.thawed.wait(10)
        return super().schema()


def test_a_probe_waiting_for_its_answer_past_the_limit_shows_the_database_not_answering(
    database: Database, clock: FrozenClock
) -> None:
    frozen = FreezableDatabase(database.url.render_as_string(hide_password=False))
    timer = Timer()
    health = DatabaseHealth(frozen, clock, monotonic=timer)
    assert health.probe().problem is None
    frozen.thawed.clear()
    frozen.asked.clear()
    stuck = threading.Thread(target=health.probe)
    stuck.start()
    try:
        assert frozen.asked.wait(5)
        timer.now += ANSWER_WITHIN_SECONDS - 0.5
        assert health.latest().problem is None  # a moment's wait is no news
        timer.now += 1.0
        waiting = health.latest()
        assert not waiting.reachable
        assert waiting.problem == f"no answer for {round(ANSWER_WITHIN_SECONDS + 0.5)} s"
        assert not waiting.schema_behind  # not answering is not a schema to upgrade
    finally:
        frozen.thawed.set()
        stuck.join(10)
        frozen.dispose()
    assert health.latest().problem is None  # it answered after all


def test_a_full_spool_with_redis_down_takes_the_instance_out_and_says_why(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(database, tmp_path, unreachable_redis())
    disk = WriteFaults(monkeypatch, tmp_path)
    disk.fill()
    phone = Phone(app.test_client())
    phone.dial()
    phone.press("2")
    assert "For deposits" in phone.last_heard()  # the caller hears the menus as always

    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["journal"]["spool_writable"] is False
    assert body["journal"]["spool_problem"] == "no space left on device"
    assert body["journal"]["held_in_memory"] == 2  # the changes of both webhooks, not lost

    disk.free()
    with app.app_context():
        services().journal.release()  # the shipping thread's next round
    response = app.test_client().get("/healthz")
    assert response.status_code == 200  # the spool keeps changes again; Redis is still away
    assert response.get_json()["journal"]["held_in_memory"] == 0


@pytest.mark.parametrize("path", ["/healthz"])
def test_health_needs_no_signature(app: Flask, path: str) -> None:
    assert app.test_client().get(path).status_code == 200


# --- the exchange hook ------------------------------------------------------------------------


def test_without_an_exchange_hook_it_is_off(app: Flask) -> None:
    assert app.test_client().get("/healthz").get_json()["exchange"] == "off"


def test_the_hook_is_ok_while_it_answers_and_healthz_asks_it_nothing(
    app_factory: Callable[..., Flask],
) -> None:
    from ivr.exchange.reference import EmbeddedExchange

    app = app_factory(exchange_url="embedded://")
    with app.app_context():
        exchange = services().exchange
    assert isinstance(exchange, EmbeddedExchange)
    assert app.test_client().get("/healthz").get_json()["exchange"] == "ok"
    assert exchange.lookup("+4915112345678", "CA" + "1" * 32) is not None
    assert app.test_client().get("/healthz").get_json()["exchange"] == "ok"
    assert exchange.reference.requests == 1  # the lookup's: /healthz made none


def test_an_exchange_that_does_not_answer_is_degraded_and_the_instance_still_up(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(exchange_url=f"http://127.0.0.1:{free_port()}", exchange_secret="s" * 32)
    with app.app_context():
        assert services().exchange.lookup("+4915112345678", "CA" + "1" * 32) is None
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert (response.status_code, body["status"]) == (200, "ok")
    assert body["exchange"] == "degraded: the last call was unanswered (unreachable (ConnectError))"
