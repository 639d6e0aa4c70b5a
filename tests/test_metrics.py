"""`/metrics`: what an operator's Prometheus scrapes, and who may scrape it."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from prometheus_client import Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr import create_app
from ivr.cli.serve import METRICS_DIR_ENV, prepare_metrics_dir
from ivr.config import Settings
from ivr.db import Database
from ivr.metrics import Metrics
from ivr.services import services
from tests.conftest import write_agent_pins
from tests.faults import RedisProcess, WriteFaults, free_port, wait_until
from tests.instances import HTTP_TIMEOUT, START_TIMEOUT, HttpPhone, Instance
from tests.support import (
    AUTH_TOKEN,
    PROMPTS,
    RULES,
    STATE_SECRET,
    Phone,
    new_call_sid,
    write_rules,
)
from tests.test_instances import ALWAYS_OPEN, _environment
from tests.tickets.test_journal import unreachable_redis

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


def test_a_full_spool_and_the_changes_held_and_lost_are_reported(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(database, tmp_path, unreachable_redis())
    WriteFaults(monkeypatch, tmp_path).fill()  # and Redis is away
    phone = Phone(app.test_client())
    phone.dial()
    phone.press("2")

    found = scrape(app)
    assert value(found, "ivr_journal_spool_writable") == 0
    assert value(found, "ivr_journal_held_records") == 2  # what both webhooks learned
    assert value(found, "ivr_journal_lost_records_total") == 0

    with app.app_context():
        services().journal.memory_records = 2  # full: the next change is logged as JOURNAL-LOST
    phone.press("1")
    found = scrape(app)
    assert value(found, "ivr_journal_held_records") == 2
    assert value(found, "ivr_journal_lost_records_total") == 1


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


def build(
    database: Database, tmp_path: Path, redis_client: redis.Redis | None = None, **overrides: Any
) -> Flask:
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
        ).with_overrides(**overrides),
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


# --- the exchange hook ---------------------------------------------------------------------------

CALLER, CALL = "+4915112345678", "CA" + "e" * 32


def test_calls_to_the_exchange_hook_are_counted_by_operation_and_result_and_timed(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(exchange_url="embedded://")
    with app.app_context():
        exchange = services().exchange
        assert exchange.lookup(CALLER, CALL) is not None
        assert exchange.lookup("+4930123456", CALL) is None  # unknown
        assert exchange.lock("acct-demo-de", CALL, "20261123001", verified=False)
    found = scrape(app)
    requests = "ivr_exchange_requests_total"
    assert value(found, requests, operation="lookup", result="answered") == 1
    assert value(found, requests, operation="lookup", result="unknown") == 1
    assert value(found, requests, operation="lock", result="answered") == 1
    assert value(found, requests, operation="verify_check", result="timeout") == 0  # every series
    assert value(found, "ivr_exchange_request_seconds_count", operation="lookup") == 2
    assert value(found, "ivr_exchange_request_seconds_count", operation="verify_start") == 0


def test_errors_and_the_open_breaker_are_counted(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(exchange_url=f"http://127.0.0.1:{free_port()}", exchange_secret="s" * 32)
    with app.app_context():
        for _ in range(5):
            assert services().exchange.lookup(CALLER, CALL) is None
    found = scrape(app)
    requests = "ivr_exchange_requests_total"
    assert value(found, requests, operation="lookup", result="error") == 3
    assert value(found, requests, operation="lookup", result="breaker_open") == 2
    assert value(found, "ivr_exchange_request_seconds_count", operation="lookup") == 3


def test_without_the_hook_there_are_no_exchange_series(app: Flask) -> None:
    assert not {n for n in names(scrape(app)) if n.startswith("ivr_exchange")}


# --- several processes (prometheus_client's multiprocess mode) ------------------------------------


def as_process(monkeypatch: pytest.MonkeyPatch, pid: int) -> None:
    """From now on, metrics created here write to the multiprocess folder as process `pid` would
    (prometheus_client picks how values are kept when it is imported; a test cannot fork it)."""
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))


@pytest.fixture
def multiprocess_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Multiprocess mode in this test, its folder set as `ivr serve` sets it."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    monkeypatch.setenv(METRICS_DIR_ENV, str(folder))
    return folder


def test_in_multiprocess_mode_a_scrape_adds_up_the_processes_and_reads_the_line_once(
    app_factory: Callable[..., Flask],
    multiprocess_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_process(monkeypatch, 1001)
    first = app_factory()
    Phone(first.test_client()).dial()
    as_process(monkeypatch, 1002)  # the process that answers from now on
    second = app_factory()
    for _ in range(2):
        Phone(second.test_client()).dial()
    with second.app_context():
        s = services()
        rules = s.rules.get().rules
        queue, language = next(iter(rules.queues)), rules.language_codes[0]
        s.queue.join("CA" + "c" * 32, queue, language, 0)

    count = "ivr_webhook_duration_seconds_count"
    for app in (first, second):  # whichever process is scraped
        found = scrape(app)
        assert value(found, count, kind="incoming", status="2xx") == 3
        # Read from Redis once per scrape, not once per process that has written metrics.
        assert value(found, "ivr_callers_waiting", queue=queue, language=language) == 1
        assert value(found, "ivr_store_up", store="redis") == 1
        assert value(found, "ivr_redis_errors_total") == 0
    assert {p.name for p in multiprocess_folder.glob("histogram_*.db")} == {
        "histogram_1001.db",
        "histogram_1002.db",
    }


def test_in_multiprocess_mode_probe_failures_of_every_process_add_up(
    database: Database,
    tmp_path: Path,
    multiprocess_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    as_process(monkeypatch, 2001)
    first = build(down, tmp_path / "first")
    as_process(monkeypatch, 2002)
    second = build(down, tmp_path / "second")
    first.test_client().get("/healthz")  # one failed probe in the first process

    found = scrape(second)  # the second process's scrape probes too (no threads): two in all
    assert value(found, "ivr_store_up", store="database") == 0
    assert number(scrape(first), "ivr_database_probe_failures_total") == 3  # and this one's: three


def test_in_multiprocess_mode_changes_held_and_lost_in_every_process_add_up(
    database: Database,
    tmp_path: Path,
    multiprocess_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    WriteFaults(monkeypatch, tmp_path).fill()  # and Redis is away
    as_process(monkeypatch, 4001)
    first = build(database, tmp_path / "first", unreachable_redis(), journal_memory_records=1)
    Phone(first.test_client()).dial()  # held
    as_process(monkeypatch, 4002)
    second = build(database, tmp_path / "second", unreachable_redis(), journal_memory_records=1)
    phone = Phone(second.test_client())
    phone.dial()  # held
    phone.press("2")  # lost

    for app in (first, second):  # whichever process is scraped
        found = scrape(app)
        assert value(found, "ivr_journal_held_records") == 2
        assert value(found, "ivr_journal_lost_records_total") == 1


def test_in_multiprocess_mode_calls_to_the_exchange_of_every_process_add_up(
    app_factory: Callable[..., Flask],
    multiprocess_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_process(monkeypatch, 5001)
    first = app_factory(exchange_url="embedded://")
    as_process(monkeypatch, 5002)
    second = app_factory(exchange_url="embedded://")
    for app in (first, second):
        with app.app_context():
            assert services().exchange.lookup(CALLER, CALL) is not None
    for app in (first, second):  # whichever process is scraped
        found = scrape(app)
        assert (
            value(found, "ivr_exchange_requests_total", operation="lookup", result="answered") == 2
        )
        assert value(found, "ivr_exchange_request_seconds_count", operation="lookup") == 2


def test_multiprocess_mode_refuses_to_start_when_prometheus_client_was_imported_first(
    app_factory: Callable[..., Flask], multiprocess_folder: Path
) -> None:
    assert values.ValueClass is values.MutexValue  # imported (by these tests) without the folder
    with pytest.raises(RuntimeError, match="imported before"):
        app_factory()


def test_without_the_folder_each_app_keeps_its_own_registry_in_memory(app: Flask) -> None:
    m: Metrics = app.extensions["ivr_metrics"]
    assert m.folder is None
    assert not any(isinstance(c, MultiProcessCollector) for c in m.registry._collector_to_names)


def test_serve_empties_the_operators_folder_of_an_earlier_runs_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "operator"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"old counts")
    (folder / "README").write_text("the operator's own file")
    monkeypatch.setenv(METRICS_DIR_ENV, str(folder))

    assert prepare_metrics_dir() == (folder, False)  # theirs: kept at exit
    assert sorted(p.name for p in folder.iterdir()) == ["README"]
    assert os.environ[METRICS_DIR_ENV] == str(folder)


def test_serve_makes_a_private_empty_folder_when_none_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(METRICS_DIR_ENV, "")  # unset; and after the test, as it was before
    folder, private = prepare_metrics_dir()
    try:
        assert private and folder.is_dir() and not any(folder.iterdir())
        assert os.environ[METRICS_DIR_ENV] == str(folder)
    finally:
        shutil.rmtree(folder)


def _children(pid: int) -> set[int]:
    """The processes `pid` started and that still run (a gunicorn master's workers)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def _pids_with_webhook_timings(folder: Path) -> set[int]:
    return {int(p.stem.split("_")[1]) for p in folder.glob("histogram_*.db")}


def _http_scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HTTP_TIMEOUT) as r:
        return samples(r.read().decode())


def _unsigned_status(port: int) -> int:
    """A status callback without Twilio's signature: refused (4xx), and timed as one."""
    form = urlencode({"CallSid": new_call_sid(), "CallStatus": "completed"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/voice/status", data=form)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_with_two_workers_counts_every_webhook_whichever_worker_answers_the_scrape(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_agent_pins(tmp_path / "agent_pins.json")
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    # Counts left by an earlier run in the operator's folder: `ivr serve` must not add them in.
    monkeypatch.setenv(METRICS_DIR_ENV, str(folder))
    as_process(monkeypatch, 99999)
    stale = Histogram("ivr_webhook_duration_seconds", "x", ["kind", "status"], registry=None)
    stale.labels("status", "4xx").observe(0.1)
    assert (folder / "histogram_99999.db").exists()

    unsigned_per_round, calls_per_round = 12, 2
    with RedisProcess() as redis_server:
        env = {
            **_environment(database, redis_server.url, rules, tmp_path, "a"),
            METRICS_DIR_ENV: str(folder),
        }
        instance = Instance.start(env, tmp_path / "serve.log", workers=2)
        try:
            instance.wait_ready()
            url = f"http://127.0.0.1:{instance.port}"
            workers = wait_until(lambda: len(_children(instance.process.pid)) == 2, 10)
            assert workers
            for round_ in range(2):
                with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent: both workers busy
                    statuses = list(
                        pool.map(_unsigned_status, [instance.port] * unsigned_per_round)
                    )
                assert set(statuses) == {403}, statuses
                for n in range(calls_per_round):
                    HttpPhone(base_url=url, caller=f"+1415555020{round_}{n}").dial()
                if round_ == 0:  # gunicorn replaces the workers: their counts must not be lost
                    replace_workers(instance, _pids_with_webhook_timings(folder) - {99999})
            writers = _pids_with_webhook_timings(folder) - {99999}

            count = "ivr_webhook_duration_seconds_count"
            for _ in range(8):  # each scrape on a new connection: both workers answer some
                found = _http_scrape(instance.port)
                assert value(found, count, kind="status", status="4xx") == 2 * unsigned_per_round
                assert value(found, count, kind="incoming", status="2xx") == 2 * calls_per_round
                assert value(found, "ivr_store_up", store="redis") == 1
        finally:
            instance.stop()
    assert len(writers) >= 2, writers  # the old workers' files and the new ones' were added up
    assert folder.is_dir()  # the operator's folder is theirs: kept
    assert "Traceback" not in instance.log.read_text()  # nor did a hook (child_exit) fail


def test_serve_without_a_folder_set_uses_a_private_one_and_removes_it_at_exit(
    database: Database, tmp_path: Path
) -> None:
    write_agent_pins(tmp_path / "agent_pins.json")
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    temp = tmp_path / "tmp"
    temp.mkdir()
    with RedisProcess() as redis_server:
        env = {
            **_environment(database, redis_server.url, rules, tmp_path, "a"),
            "TMPDIR": str(temp),
        }
        env.pop(METRICS_DIR_ENV, None)
        instance = Instance.start(env, tmp_path / "serve.log", workers=2)
        try:
            instance.wait_ready()
            for _ in range(5):
                assert _unsigned_status(instance.port) == 403
            (private,) = temp.glob("ivr-metrics-*")
            assert _pids_with_webhook_timings(private)
            count = "ivr_webhook_duration_seconds_count"
            for _ in range(4):
                found = _http_scrape(instance.port)
                assert value(found, count, kind="status", status="4xx") == 5
        finally:
            instance.stop()
    assert not private.exists()  # gunicorn's on_exit took it away


def replace_workers(instance: Instance, pids: set[int]) -> None:
    """Stop the gunicorn workers `pids` (SIGTERM, by PID) and wait until the master has replaced
    them and the service answers again."""
    old = _children(instance.process.pid)
    assert pids and pids <= old, (pids, old)  # its workers, nothing else
    for pid in pids:
        os.kill(pid, signal.SIGTERM)

    def replaced() -> bool:
        now = _children(instance.process.pid)
        return len(now) == len(old) and not now & pids

    wait_until(replaced, timeout=START_TIMEOUT)
    instance.wait_ready()
