"""The line under store failures: callers notice nothing but a moment's silence, and no ticket is lost.

These tests break things themselves and never the machine's own services: their own `redis-server`
behind a fault proxy, and the test database behind a fault proxy (PostgreSQL) or a fault injector
(SQLite, which has no socket). The app runs as production runs it: its background threads and the
ticket writer in a thread; nothing is written "inline" here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import RedisError
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from ivr.app import create_app
from ivr.clock import FrozenClock
from ivr.config import Settings
from ivr.db import Database
from ivr.queue import connect
from ivr.services import Services
from ivr.simulator.rest import TwilioRest
from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.events import events_of
from ivr.tickets.models import Ticket
from ivr.tickets.reads import get_ticket
from tests.conftest import (
    AGENT_PINS,
    MONDAY_AFTERNOON,
    ROOT,
    TEST_DATABASE_URL,
    write_agent_pins,
)
from tests.faults import (
    FaultProxy,
    PostgresFaults,
    RedisProcess,
    SqliteFaults,
    Tmpfs,
    free_port,
    wait_until,
)
from tests.support import (
    AUTH_TOKEN,
    REST_ACCOUNT_SID,
    STATE_SECRET,
    Phone,
    calls_of,
    reference_in,
    twilio_rest,
)
from tests.test_metrics import scrape, value

T = TypeVar("T")
DEADLINE = 2.0
"""Every webhook answers within this, whatever a store does (Twilio waits at most 15 s)."""
MENU_PATH = ["language:2", "main:2", "funds:1"]


class TimedClient:
    """A Flask test client that remembers how long each request took."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client
        self.durations: list[tuple[str, float]] = []

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        started = time.monotonic()
        response = self._client.post(path, **kwargs)
        self.durations.append((path.split("?")[0], time.monotonic() - started))
        return response

    def slowest(self) -> tuple[str, float]:
        return max(self.durations, key=lambda d: d[1])


@dataclass
class Line:
    """The app as production runs it, with its stores behind switches."""

    app: Flask
    client: TimedClient
    redis: RedisProcess
    redis_proxy: FaultProxy
    db: SqliteFaults | PostgresFaults
    database: Database
    """The test database itself, as the tests read it (never through the faults)."""
    clock: FrozenClock
    rest: TwilioRest
    phones: list[Phone] = field(default_factory=list)

    @property
    def services(self) -> Services:
        found: Services = self.app.extensions["ivr"]
        return found

    def call_to_queue(self) -> Phone:
        """A caller who picks English, funds, deposit, and hears the first hold round."""
        # posts like a FlaskClient; its calls are known to this line's Twilio
        phone = Phone(self.client, network=calls_of(self.app))  # type: ignore[arg-type]
        self.phones.append(phone)
        phone.dial()
        for key in ("2", "2", "1"):
            phone.press(key)
        phone.follow()  # "please hold" -> the first hold round
        return phone

    def ticket(self, phone: Phone) -> Ticket | None:
        with self.database.sessions() as session:
            return get_ticket(session, phone.sid)


def reference_heard(phone: Phone) -> str | None:
    """The ticket reference the caller's webhook URLs carry (read back to them if it comes to it)."""
    return reference_in(phone.twiml)


def complete(line: Line, phone: Phone, outcome: Outcome = Outcome.ABANDONED) -> bool:
    ticket = line.ticket(phone)
    return (
        ticket is not None
        and ticket.menu_path == MENU_PATH
        and ticket.queue == "funds"
        and ticket.queued_at is not None
        and ticket.ended_at is not None
        and ticket.outcome is outcome
        and ticket.reference == (reference_heard(phone) or ticket.reference)
    )


@contextmanager
def running_line(database: Database, tmp_path: Path, spool: Path) -> Iterator[Line]:
    """The app, its threads running, with the stores behind switches and the spool in `spool`."""
    faults: SqliteFaults | PostgresFaults = (
        PostgresFaults(TEST_DATABASE_URL)
        if TEST_DATABASE_URL
        else SqliteFaults(database.url.render_as_string(hide_password=False))
    )
    redis_server = RedisProcess()
    redis_server.start()
    proxy = FaultProxy(("127.0.0.1", redis_server.port))
    clock = FrozenClock(MONDAY_AFTERNOON)
    rest = twilio_rest()
    settings = Settings(
        database_url="unused://",
        twilio_auth_token=AUTH_TOKEN,
        twilio_account_sid=REST_ACCOUNT_SID,
        public_base_url="http://localhost",
        routing_rules=ROOT / "routing_rules.yaml",
        voice_prompts=ROOT / "voice_prompts",
        writer="thread",
        background=True,
        spool_dir=spool,
        state_secrets=(STATE_SECRET,),
        agent_pins=tmp_path / "agent_pins.json",
    )
    write_agent_pins(settings.agent_pins)
    app = create_app(
        settings,
        clock,
        database=faults.database,
        redis_client=connect(f"redis://127.0.0.1:{proxy.port}/0"),
        twilio_http_client=rest,
    )
    line = Line(
        app, TimedClient(app.test_client()), redis_server, proxy, faults, database, clock, rest
    )
    background = line.services.background
    assert background is not None
    try:
        background.ensure_started()
        wait_until(line.services.references.at_hand, timeout=10)
        yield line
    finally:
        background.stop()
        line.services.journal.spool.seal()
        proxy.close()
        redis_server.close()
        faults.close()


@pytest.fixture
def line(database: Database, tmp_path: Path) -> Iterator[Line]:
    with running_line(database, tmp_path, tmp_path / "spool") as line:
        yield line


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Tmpfs]:
    """A filesystem of 512 KiB of its own, to fill up."""
    disk = Tmpfs(tmp_path / "small-disk")
    try:
        yield disk
    finally:
        disk.close()


@pytest.fixture
def line_on_small_disk(database: Database, tmp_path: Path, small_disk: Tmpfs) -> Iterator[Line]:
    """The line with its spool on `small_disk`."""
    with running_line(database, tmp_path, small_disk.folder) as line:
        yield line


def test_every_ticket_is_complete_after_a_database_outage_during_calls(line: Line) -> None:
    before = [line.call_to_queue() for _ in range(3)]
    line.db.refuse()
    during = [line.call_to_queue() for _ in range(8)]
    for phone in before + during:
        phone.hang_up()
    time.sleep(0.5)  # the writer tries (and fails) meanwhile
    assert all(line.ticket(phone) is None for phone in during)
    assert line.services.writer.status.problem  # it says why nothing is written

    line.db.forward()

    wait_until(lambda: all(complete(line, p) for p in before + during), timeout=30)
    # Every caller had a reference from the first webhook, database or not, and all differ.
    heard = [reference_heard(p) for p in before + during]
    assert None not in heard and len(set(heard)) == len(heard)
    path, seconds = line.client.slowest()
    assert seconds < DEADLINE, f"{path} took {seconds:.2f} s"


def test_a_thousand_callers_in_a_long_database_outage_each_hear_a_reference_of_their_own(
    line: Line,
) -> None:
    # Each process leases RESERVE_BLOCKS blocks of 100 numbers; the outage outlasts them by far.
    line.db.refuse()
    phones = [Phone(line.client) for _ in range(1000)]  # type: ignore[arg-type]
    for phone in phones:
        phone.dial()
    heard = [reference_heard(phone) for phone in phones]
    assert None not in heard and len(set(heard)) == len(phones)
    health = line.app.test_client().get("/healthz").get_json()
    assert health["references_at_hand"] == 0 and health["outage_references_given"] >= 800
    last = phones[-1]
    for key in ("2", "6", "5"):  # English, self-service, leave a message
        last.press(key)
    last.record("https://api.twilio.com/recording/RE1", 12)
    digits = " ".join(heard[-1] or "")
    assert f"Your ticket number is {digits}." in last.last_heard()
    for phone in phones:
        phone.hang_up()

    line.db.forward()
    wait_until(lambda: all(line.ticket(phone) is not None for phone in phones[-50:]), timeout=60)
    with line.database.sessions() as session:
        written = {t.call_sid: t.reference for t in session.scalars(select(Ticket))}
    assert written == {phone.sid: reference for phone, reference in zip(phones, heard, strict=True)}


def test_every_webhook_answers_in_time_while_the_database_is_frozen(line: Line) -> None:
    line.db.stall()
    try:
        phones = [line.call_to_queue() for _ in range(4)]
        for phone in phones:
            phone.hang_up()
        started = time.monotonic()
        health = line.app.test_client().get("/healthz")
        assert time.monotonic() - started < DEADLINE
        assert health.status_code == 200  # the line is up: calls go on, tickets wait
    finally:
        line.db.forward()
    path, seconds = line.client.slowest()
    assert seconds < DEADLINE, f"{path} took {seconds:.2f} s"
    wait_until(lambda: all(complete(line, p) for p in phones), timeout=30)


def health(line: Line) -> tuple[int, dict[str, Any]]:
    """What `/healthz` answers now: the status code and the body."""
    response = line.app.test_client().get("/healthz")
    return response.status_code, response.get_json()


def test_a_frozen_database_shows_on_healthz_within_three_seconds(line: Line) -> None:
    wait_until(lambda: health(line)[1]["database"] == "ok", timeout=10)
    line.db.stall()  # connections stay open; nothing is answered
    frozen = time.monotonic()
    try:
        code, body = wait_until(lambda: (h := health(line))[1]["database"] != "ok" and h, 3.0)
        assert time.monotonic() - frozen < 3.0
        assert code == 200 and body["status"] == "degraded"  # calls go on; tickets wait
        assert body["database"].startswith(("no answer for", "unreachable"))
    finally:
        line.db.forward()
    wait_until(lambda: health(line)[1]["database"] == "ok", timeout=10)


@pytest.mark.parametrize("back_first", ["disk", "redis"])
def test_a_disk_filling_up_while_redis_is_down_loses_no_acknowledged_change(
    line_on_small_disk: Line, small_disk: Tmpfs, back_first: str
) -> None:
    line = line_on_small_disk
    line.redis.stop()  # nothing waits in it yet
    small_disk.fill()
    filled = time.monotonic()
    code, body = wait_until(lambda: (h := health(line))[0] == 503 and h, timeout=1.0)
    assert time.monotonic() - filled < 1.0  # this instance must not take calls, and says why
    assert body["status"] == "unavailable"
    assert body["journal"]["spool_writable"] is False
    assert body["journal"]["spool_problem"] == "no space left on device"

    phones = [line.call_to_queue() for _ in range(3)]  # Twilio may still send some its way
    for phone in phones:
        phone.hang_up()
    code, body = health(line)
    assert code == 503 and body["journal"]["held_in_memory"] > 0
    found = scrape(line.app)
    assert value(found, "ivr_journal_spool_writable") == 0
    assert (value(found, "ivr_journal_held_records") or 0) > 0

    if back_first == "disk":
        small_disk.free()
    else:
        line.redis.start()
    wait_until(lambda: health(line)[0] == 200, timeout=5)
    wait_until(lambda: all(complete(line, p) for p in phones), timeout=30)
    assert health(line)[1]["journal"]["held_in_memory"] == 0
    assert health(line)[1]["journal"]["lost_to_log"] == 0
    path, seconds = line.client.slowest()
    assert seconds < DEADLINE, f"{path} took {seconds:.2f} s"


@pytest.mark.parametrize("fault", ["stall", "drop", "refuse"])
def test_every_webhook_answers_in_time_while_redis_is_away_and_nothing_is_lost(
    line: Line, fault: str
) -> None:
    waiting = line.call_to_queue()
    getattr(line.redis_proxy, fault)()
    try:
        newcomers = [line.call_to_queue() for _ in range(3)]
        waiting.follow()  # a hold round without Redis: no position, but the caller holds on
        assert waiting.twiml is not None and waiting.twiml.find("Gather") is not None
        for phone in newcomers:
            phone.hang_up()
    finally:
        line.redis_proxy.forward()
    path, seconds = line.client.slowest()
    assert seconds < DEADLINE, f"{path} took {seconds:.2f} s"
    # Once Redis answers again the caller who held on still has their place ... (a round whose
    # Redis call misses its deadline on a busy machine says no position, by design: the next
    # round says it; at most 3 rounds)
    wait_until(lambda: line.services.queue.ping(), timeout=10)

    def hears_their_place() -> bool:
        waiting.follow()
        return "You are next in line." in waiting.last_heard()

    assert any(hears_their_place() for _ in range(3)), waiting.last_heard()
    waiting.hang_up()
    # ... and what was spooled meanwhile reached the tickets.
    wait_until(lambda: all(complete(line, p) for p in [waiting, *newcomers]), timeout=30)


def test_line_order_and_waited_time_survive_a_redis_restart(line: Line) -> None:
    phones = []
    for _ in range(4):
        phones.append(line.call_to_queue())
        line.clock.advance(30)
    assert "You are number 4 in line." in phones[3].heard

    line.redis.restart(empty=True)
    wait_until(lambda: line.services.queue.ping(), timeout=10)
    for phone in reversed(phones):  # the last to arrive polls first: each gets its place back
        phone.follow()
    for phone in phones:  # by the next round, all are back in their original order
        phone.follow()

    assert "You are next in line." in phones[0].last_heard()
    for number, phone in enumerate(phones[1:], 2):
        assert f"You are number {number} in line." in phone.last_heard()
    # An agent logs in: the first caller is served, and has waited since they first joined.
    agent = line.app.test_client().post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert agent.status_code == 200
    (redirect,) = wait_until(line.rest.redirects, timeout=10)
    assert phones[0].sid in redirect.url
    assignment = line.services.queue.assignment(phones[0].sid)
    assert assignment is not None and assignment.enqueued_at == MONDAY_AFTERNOON


def test_a_kept_callback_is_rebuilt_after_redis_lost_its_data(line: Line) -> None:
    waiting = line.call_to_queue()
    kept = line.call_to_queue()
    kept.press("2")  # "call me back when it is my turn, keeping my place"
    assert "You keep your place in line" in kept.last_heard()
    kept.hang_up()
    wait_until(lambda: (t := line.ticket(kept)) is not None and t.ended_at, timeout=10)

    line.redis.restart(empty=True)
    # Nobody will poll for the caller who hung up: the database gives their place back ...
    wait_until(lambda: _unless_redis_is_away(lambda: line.services.queue.place(kept.sid)), 15)
    waiting.follow()  # ... and the one holding on brings their own, still ahead.
    assert "in line" not in waiting.last_heard()  # the round that rebuilt it tells no place
    waiting.follow()
    assert "You are next in line." in waiting.last_heard()
    place = line.services.queue.place(kept.sid)
    assert place is not None and place.position == 2

    waiting.hang_up()
    emma = line.app.test_client().post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert emma.status_code == 200
    (callback,) = wait_until(line.rest.placed_calls, timeout=10)
    assert (callback.data["To"], callback.data["From"]) == (kept.caller, kept.called)


def test_agents_logged_in_are_logged_in_again_after_redis_lost_its_data(line: Line) -> None:
    emma = line.app.test_client().post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert emma.status_code == 200
    wait_until(lambda: _agent_event_written(line), timeout=10)

    line.redis.restart(empty=True)

    wait_until(
        lambda: (
            _unless_redis_is_away(lambda: line.services.queue.agent_status("emma")) == "available"
        ),
        timeout=15,
    )
    caller = line.call_to_queue()
    (redirect,) = wait_until(line.rest.redirects, timeout=10)
    assert caller.sid in redirect.url


def _unless_redis_is_away(read: Callable[[], T]) -> T | None:
    """What `read` returns, or None while Redis is still coming back (for `wait_until`)."""
    try:
        return read()
    except RedisError:
        return None


def _agent_event_written(line: Line) -> bool:
    with line.database.sessions() as session:
        return any(e.event is QueueEvent.AGENTLOGIN for e in events_of(session, ""))


# --- a web process killed mid-call -----------------------------------------------------------


@dataclass
class Server:
    """`ivr serve` in a process group of its own, reached over HTTP like Twilio would."""

    process: subprocess.Popen[bytes]
    port: int

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        request = urllib.request.Request(
            url, data=urlencode(form).encode(), headers={"X-Twilio-Signature": signature}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def kill(self) -> None:
        """SIGKILL the whole server, master and workers: no clean-up of any kind runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def _environment(database: Database, redis_url: str, spool: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database.url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET": STATE_SECRET,
        "IVR_CLOCK": MONDAY_AFTERNOON.isoformat(),
        "IVR_SPOOL_DIR": str(spool),
        "ROUTING_RULES": str(ROOT / "routing_rules.yaml"),
        "VOICE_PROMPTS": str(ROOT / "voice_prompts"),
        # In the test's folder: a server these tests kill runs no exit hook to remove its own.
        "PROMETHEUS_MULTIPROC_DIR": str(spool.parent / "metrics"),
    }


def _serve(env: dict[str, str], port: int) -> Server:
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "serve", "--port", str(port), "--workers", "1"],
        env={**env, "IVR_WRITER": "off"},  # tickets are left to `ivr worker`, after the kill
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Server(process, port)
    try:
        wait_until(lambda: _answers(port), timeout=30)
    except BaseException:
        server.kill()
        raise
    return server


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # up, if unhappy
    except OSError:
        return False


@pytest.mark.parametrize("redis_up", [True, False], ids=["journal in redis", "journal spooled"])
def test_a_web_process_killed_mid_call_loses_no_ticket_change_it_acknowledged(
    database: Database, tmp_path: Path, redis_up: bool
) -> None:
    with RedisProcess() as redis_server, FaultProxy(("127.0.0.1", redis_server.port)) as proxy:
        env = _environment(database, f"redis://127.0.0.1:{proxy.port}/0", tmp_path / "spool")
        server = _serve(env, free_port())
        if not redis_up:
            proxy.refuse()
        acknowledged: list[str] = []
        try:
            sid = "CA" + "7" * 32
            form = {"CallSid": sid, "From": "+14155550100", "To": "+18005550199"}
            status, body = server.post("/voice/incoming", form)
            assert status == 200
            reference = parse_qs(urlsplit(_first_action(body)).query)["ref"][0]
            for key in ("2", "2"):  # English, then funds
                status, body = server.post(_first_action(body), {**form, "Digits": key})
                assert status == 200
                acknowledged.append(key)
        finally:
            server.kill()  # right after answering: nothing of the process survives but disk and Redis
        proxy.forward()
        drained = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "worker", "--drain"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert drained.returncode == 0, drained.stderr
    with database.sessions() as session:
        ticket = get_ticket(session, sid)
    assert ticket is not None
    assert ticket.reference == reference
    assert ticket.caller == "+14155550100"
    assert ticket.menu_path == ["language:2", "main:2"] and len(acknowledged) == 2
    assert ticket.language == "en-US"


def _first_action(twiml: str) -> str:
    gather = ET.fromstring(twiml).find("Gather")
    assert gather is not None
    return gather.attrib["action"]


def _workers_of(master: int) -> set[int]:
    """The PIDs of a gunicorn master's children (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.add(int(entry.name))
    return found


def test_a_worker_forked_while_the_database_is_away_still_numbers_every_call(
    tmp_path: Path,
) -> None:
    file = tmp_path / "ivr.sqlite3"
    env = _environment(Database(f"sqlite:///{file}"), "embedded://", tmp_path / "spool")
    server = _serve(env, free_port())
    try:
        (first_worker,) = _workers_of(server.process.pid)
        # The database goes away (its file moved: every new connection finds an empty one), and
        # gunicorn replaces its worker meanwhile: the new worker cannot lease a block of its own.
        file.rename(tmp_path / "away.sqlite3")
        os.kill(first_worker, signal.SIGKILL)
        wait_until(lambda: _workers_of(server.process.pid) - {first_worker}, timeout=30)
        wait_until(lambda: _answers(server.port), timeout=30)
        heard = []
        for n in range(3):
            form = {"CallSid": f"CA{n:032d}", "From": "+14155550100", "To": "+18005550199"}
            status, body = server.post("/voice/incoming", form)
            assert status == 200, body
            heard.append(parse_qs(urlsplit(_first_action(body)).query).get("ref", [None])[0])
        assert None not in heard and len(set(heard)) == len(heard)
    finally:
        server.kill()
