"""`/metrics`: what an operator's Prometheus scrapes, and who may scrape it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import redis
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr import create_app
from ivr.config import Settings
from ivr.db import Database
from ivr.services import services
from tests.faults import free_port
from tests.support import AUTH_TOKEN, PROMPTS, RULES, STATE_SECRET, Phone
from tests.test_journal import unreachable_redis

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.7"}


def scrape(app: Flask) -> Samples:
    """Every sample of a scrape from loopback, by (name, labels)."""
    response = app.test_client().get("/metrics", environ_base=LOOPBACK)
    assert response.status_code == 200, response.text
    return samples(response.text)


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def number(found: Samples, name: str, **labels: str) -> float:
    """The sample's value; fails when the scrape has no such sample."""
    found_value = value(found, name, **labels)
    assert found_value is not None, (name, labels)
    return found_value


def names(found: Samples) -> set[str]:
    return {name for name, _ in found}


# --- who may scrape -------------------------------------------------------------------------------


def test_without_a_token_only_loopback_may_scrape(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    refused = client.get("/metrics", environ_base=ELSEWHERE)
    assert refused.status_code == 403
    assert "ivr_" not in refused.text


def test_with_a_token_any_address_may_scrape_with_it_and_none_without(
    app_factory: Callable[..., Flask],
) -> None:
    client = app_factory(metrics_token="s3cret-scrape-token").test_client()
    right = {"Authorization": "Bearer s3cret-scrape-token"}
    wrong = {"Authorization": "Bearer guess"}

    assert client.get("/metrics", environ_base=ELSEWHERE, headers=right).status_code == 200
    for headers in ({}, wrong):
        refused = client.get("/metrics", environ_base=ELSEWHERE, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Loopback is no way around a configured token.
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 401


def test_metrics_token_and_log_format_come_from_the_environment() -> None:
    settings = Settings.from_env({"IVR_METRICS_TOKEN": " tok ", "IVR_LOG_FORMAT": "JSON"})
    assert (settings.metrics_token, settings.log_format) == ("tok", "json")
    assert (Settings.from_env({}).metrics_token, Settings.from_env({}).log_format) == (None, "text")


# --- webhook latency ------------------------------------------------------------------------------


def test_each_webhook_is_timed_by_kind_and_status_class(app: Flask) -> None:
    Phone(app.test_client()).dial()
    app.test_client().post("/voice/status", data={"CallSid": "CA" + "1" * 32})  # no signature

    found = scrape(app)
    count = "ivr_webhook_duration_seconds_count"
    assert value(found, count, kind="incoming", status="2xx") == 1
    assert value(found, count, kind="status", status="4xx") == 1
    assert number(found, "ivr_webhook_duration_seconds_sum", kind="incoming", status="2xx") > 0
    # Not webhooks: neither the health check nor the scrape itself is timed.
    app.test_client().get("/healthz")
    kinds = {dict(labels).get("kind") for name, labels in scrape(app) if name == count}
    assert kinds == {"incoming", "status"}


def test_apps_keep_their_own_registries(app_factory: Callable[..., Flask]) -> None:
    first, second = app_factory(), app_factory()
    Phone(first.test_client()).dial()

    count = "ivr_webhook_duration_seconds_count"
    assert value(scrape(first), count, kind="incoming", status="2xx") == 1
    assert value(scrape(second), count, kind="incoming", status="2xx") is None


# --- the line, read at scrape time ----------------------------------------------------------------


def test_callers_waiting_per_line_and_agents_by_state(app: Flask) -> None:
    with app.app_context():
        s = services()
        rules = s.rules.get().rules
        queue, language = next(iter(rules.queues)), rules.language_codes[0]
        s.queue.join("CA" + "a" * 32, queue, language, 0)
        s.queue.join("CA" + "b" * 32, queue, language, 0)
        agent = rules.agents_serving(queue, language)[0]
        s.queue.agent_available(agent, list(rules.lines_of(rules.agents[agent])))
        agent_count = len(rules.agents)

    found = scrape(app)
    assert value(found, "ivr_store_up", store="redis") == 1
    assert value(found, "ivr_callers_waiting", queue=queue, language=language) == 2
    line = {"queue": queue, "language": language}
    assert value(found, "ivr_line_agents", state="available", **line) == 1
    assert value(found, "ivr_line_agents", state="busy", **line) == 0
    assert value(found, "ivr_agents", state="available") == 1
    assert value(found, "ivr_agents", state="offline") == agent_count - 1


def test_redis_down_still_answers_says_so_and_leaves_out_what_it_cannot_read(
    database: Database, tmp_path: Path
) -> None:
    app = build(database, tmp_path, redis_client=unreachable_redis())

    found = scrape(app)
    assert value(found, "ivr_store_up", store="redis") == 0
    assert not names(found) & {"ivr_callers_waiting", "ivr_agents", "ivr_journal_stream_entries"}
    assert value(found, "ivr_journal_spool_writable") == 1  # the spool keeps ticket changes


def test_journal_backlog_and_spool_are_reported(app: Flask) -> None:
    with app.app_context():  # the writer cannot reach its database: changes wait in the spool
        services().writer.db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    Phone(app.test_client()).dial()

    found = scrape(app)
    assert number(found, "ivr_journal_spool_files") >= 1
    assert number(found, "ivr_journal_spool_bytes") > 0
    assert value(found, "ivr_journal_stream_entries") == 0
    assert value(found, "ivr_journal_oldest_seconds") == 0


# --- store errors ---------------------------------------------------------------------------------


def test_redis_errors_that_are_caught_and_logged_are_counted_once(app: Flask) -> None:
    before = number(scrape(app), "ivr_redis_errors_total")
    log = logging.getLogger("ivr.switchboard")
    try:
        raise RedisConnectionError("Connection refused")
    except RedisConnectionError:
        log.warning("queue unavailable")  # no exc_info: still the error being handled
        log.exception("and logged again further up")  # the same error: not counted twice
    try:
        raise ValueError("not a store error")
    except ValueError:
        log.exception("something else")

    assert value(scrape(app), "ivr_redis_errors_total") == before + 1


def test_database_probe_failures_are_counted(tmp_path: Path) -> None:
    down = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    app = build(down, tmp_path)

    first = scrape(app)  # without threads, the scrape probes the database (as /healthz does)
    assert value(first, "ivr_store_up", store="database") == 0
    app.test_client().get("/healthz")
    second = scrape(app)
    failures = "ivr_database_probe_failures_total"
    assert (
        number(second, failures) == number(first, failures) + 2
    )  # the health check's probe and the second scrape's


def build(database: Database, tmp_path: Path, redis_client: redis.Redis | None = None) -> Flask:
    import fakeredis

    return create_app(
        Settings(
            twilio_auth_token=AUTH_TOKEN,
            routing_rules=RULES,
            voice_prompts=PROMPTS,
            writer="off",
            background=False,
            spool_dir=tmp_path / "spool",
            state_secrets=(STATE_SECRET,),
            agent_pins=tmp_path / "agent_pins.json",
            admins=tmp_path / "admins.json",
        ),
        None,
        database=database,
        redis_client=redis_client or fakeredis.FakeRedis(),
    )


def test_the_error_counter_of_an_app_that_is_gone_hides_no_other_log_handler(
    database: Database, tmp_path: Path
) -> None:
    import gc

    app = build(database, tmp_path)
    del app
    gc.collect()  # its metrics are gone; its counter is still on the `ivr` logger
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    logger = logging.getLogger("ivr")
    logger.addHandler(keep)
    try:
        logger.error("first")
        logger.error("second")
    finally:
        logger.removeHandler(keep)
    assert seen == ["first", "second"]
