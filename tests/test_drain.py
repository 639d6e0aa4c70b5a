"""Stopping an instance drops nothing (`ivr.drain`, docs/operators/draining.md): real `ivr serve` and `ivr
worker` processes, signalled as an orchestrator signals them, on one database and one Redis.

- SIGTERM to `ivr serve`: `/healthz` says "draining" at once while webhooks are still answered for
  `IVR_DRAIN_SECONDS`, a request in flight is answered, the process exits 0, and its journal is in
  the Redis stream, not left in its spool.
- SIGTERM to `ivr worker`: the batch it is applying commits, and each entry is acknowledged once.
- A rolling restart of two instances behind nginx while calls go on: no caller notices.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from sqlalchemy import Connection, func, select
from twilio.request_validator import RequestValidator

from ivr.db import Database
from ivr.drain import close_listeners
from ivr.tickets.changes import Outcome
from ivr.tickets.journal import GROUP, STREAM_KEY, Journal
from ivr.tickets.models import Ticket, TicketChangeRow
from ivr.tickets.reads import get_ticket
from ivr.tickets.records import JournalRecord
from tests.faults import RedisProcess, start_logged, wait_until
from tests.instances import ROOT, HttpPhone, Instance, Nginx, answers
from tests.support import AUTH_TOKEN, journal_record, new_call_sid, write_rules
from tests.test_instances import ALWAYS_OPEN, MENU_PATH, _environment

DRAIN_SECONDS = 2
"""`IVR_DRAIN_SECONDS` in these tests: long enough to send a webhook in the middle, short enough."""
EXIT_WITHIN = DRAIN_SECONDS + 10.0
"""The drain, the graceful stop of requests that are a moment from done, and the hand-over."""


def _healthz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _livez(port: int) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


@dataclass
class HalfSentWebhook:
    """A signed webhook whose body arrives in two parts: in flight from the first byte to the last."""

    port: int
    sid: str = field(default_factory=new_call_sid)

    def __post_init__(self) -> None:
        url = f"http://127.0.0.1:{self.port}/voice/incoming"
        form = {"CallSid": self.sid, "From": "+14155550177", "To": "+18005550199"}
        form |= {"CallStatus": "ringing", "Direction": "inbound", "AccountSid": "AC" + "0" * 32}
        self.body = urlencode(form).encode()
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        self.head = (
            f"POST /voice/incoming HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(self.body)}\r\nX-Twilio-Signature: {signature}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=EXIT_WITHIN)

    def send_first_half(self) -> None:
        self.sock.sendall(self.head + self.body[: len(self.body) // 2])

    def finish(self) -> tuple[int, str]:
        """Send the rest; the answer's status and body."""
        self.sock.sendall(self.body[len(self.body) // 2 :])
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        try:
            return response.status, response.read().decode()
        finally:
            self.sock.close()


def _stream_calls(redis_url: str) -> set[str]:
    """The CallSids of the records in the journal's Redis stream."""
    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange(STREAM_KEY, "-", "+")
    finally:
        client.close()
    return {JournalRecord.from_json(fields[b"r"].decode()).call_sid for _, fields in entries}


def test_sigterm_drains_answers_every_webhook_and_hands_the_journal_over(
    database: Database, tmp_path: Path
) -> None:
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    with RedisProcess() as redis_server:
        env = _environment(database, redis_server.url, rules, tmp_path, "a")
        # No ticket writer: what the instance journaled stays in the stream for the test to read.
        env |= {"IVR_DRAIN_SECONDS": str(DRAIN_SECONDS), "IVR_WRITER": "off"}
        instance = Instance.start(env, tmp_path / "a.log", workers=2)
        try:
            instance.wait_ready()
            base_url = f"http://127.0.0.1:{instance.port}"
            before = HttpPhone(base_url=base_url, caller="+14155550101")
            before.dial()
            in_flight = HalfSentWebhook(instance.port)
            in_flight.send_first_half()
            time.sleep(0.2)  # gunicorn has accepted it and waits for the rest of the body

            signalled = time.monotonic()
            instance.process.send_signal(signal.SIGTERM)  # the master only, as Kubernetes does

            def draining() -> bool:
                status, body = _healthz(instance.port)
                return status == 503 and body["status"] == "draining"

            wait_until(draining, timeout=0.5, interval=0.02)
            status, body = _healthz(instance.port)
            assert (
                status == 503 and body["redis"] == "ok" and "journal" in body
            )  # the rest as before
            assert _livez(instance.port) == (200, "text/plain; charset=utf-8", "ok")

            time.sleep(max(0.0, signalled + 1.0 - time.monotonic()))
            during = HttpPhone(base_url=base_url, caller="+14155550102")
            during.dial()  # answered 200 with TwiML (HttpPhone asserts both) ...
            during.press("2")  # ... and so is the caller's next step: the main menu
            assert during.twiml is not None and during.twiml.find("Gather") is not None
            assert time.monotonic() - signalled < DRAIN_SECONDS, "the test was too slow"

            # After the drain the instance refuses new connections (a proxy passes them on) ...
            wait_until(lambda: not answers(instance.port), timeout=DRAIN_SECONDS + 2)
            # ... and still answers the request it holds.
            status_code, answer = in_flight.finish()
            assert status_code == 200, answer
            assert answer.startswith("<?xml") and "<Response>" in answer, answer

            assert instance.process.wait(EXIT_WITHIN) == 0
        finally:
            instance.stop()
        # Each call's records went to the Redis stream before the workers exited ...
        assert {before.sid, during.sid, in_flight.sid} <= _stream_calls(redis_server.url)
        # ... and nothing is left in the spool for a later process to find.
        spool = tmp_path / "a" / "spool"
        leftovers = [p for p in spool.glob("*.jsonl") if p.stat().st_size]
        assert leftovers == [], [p.read_text()[:500] for p in leftovers]
    log = (tmp_path / "a.log").read_text()
    assert "Draining: /healthz answers 503" in log and "journal handed over" in log


@contextmanager
def write_lock(database: Database) -> Iterator[Connection]:
    """Hold the tickets table the way a long transaction would: the writer's batch waits for it."""
    with database.engine.connect() as connection, connection.begin():
        if database.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        # SQLite: every transaction begins IMMEDIATE (ivr.db), so this one holds the write lock.
        yield connection


def test_ivr_worker_on_sigterm_commits_the_batch_it_is_applying(
    database: Database, tmp_path: Path
) -> None:
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    now = datetime.now(UTC)
    sids = [new_call_sid() for _ in range(3)]
    records = [
        record
        for sid in sids
        for record in (
            journal_record(sid, now, reference=None, caller="+14155550100"),
            journal_record(sid, now + timedelta(seconds=5), queue="funds", queued=True),
        )
    ]
    with RedisProcess() as redis_server:
        env = _environment(database, redis_server.url, rules, tmp_path, "w")
        log = tmp_path / "worker.log"
        worker = start_logged(
            [sys.executable, "-m", "ivr.cli", "worker", "--nice", "0"], env=env, cwd=ROOT, log=log
        )
        client = redis.Redis.from_url(redis_server.url)
        try:
            wait_until(lambda: "writing tickets" in log.read_text(), timeout=30)
            time.sleep(1.0)  # its first rounds (schema check, references) are done
            with write_lock(database):
                journal = Journal(client, tmp_path / "test-spool")
                journal.stream.add_many([record.to_json() for record in records])

                def batch_taken() -> bool:
                    pending = client.xpending(STREAM_KEY, GROUP)
                    return int(pending["pending"]) == len(records)

                wait_until(batch_taken, timeout=10)  # read, and waiting for the lock
                worker.send_signal(signal.SIGTERM)
                time.sleep(2.0)  # the database is slow: the batch is still waiting
                assert worker.poll() is None, "the worker left its batch behind"
            assert worker.wait(30) == 0, log.read_text()[-2000:]
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        # Committed: a ticket per call, each record applied once; acknowledged: nothing left over.
        with database.sessions() as session:
            for sid in sids:
                ticket = get_ticket(session, sid)
                assert ticket is not None and ticket.queue == "funds", sid
            changes = session.scalar(
                select(func.count())
                .select_from(TicketChangeRow)
                .where(TicketChangeRow.call_sid.in_(sids))
            )
        assert changes == len(records)
        assert client.xlen(STREAM_KEY) == 0
        assert int(client.xpending(STREAM_KEY, GROUP)["pending"]) == 0
        client.close()


# --- the end of the drain: closing the door -----------------------------------------------------


def test_the_end_of_a_drain_resets_no_queued_connection_and_refuses_new_ones() -> None:
    """A proxy's connection still in the kernel's accept queue when the drain ends has its request
    written already (a webhook is a POST, which nginx does not pass on once sent): it is accepted
    and answered, not reset. A connection opened meanwhile is held back, then refused, which nginx
    does pass on to the other instance."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port), timeout=5)
    queued.sendall(b"POST /voice/input")
    time.sleep(0.1)  # the handshake completes in the kernel; nobody has accepted it yet
    received: list[bytes] = []
    late: list[BaseException] = []

    def busy_worker() -> None:  # a worker that gets to its `accept` 0.3 s after the drain ended
        time.sleep(0.3)
        connection, _ = listener.accept()
        received.append(connection.recv(100))
        connection.sendall(b"HTTP/1.1 200 OK")
        connection.close()

    def late_caller() -> None:  # a proxy connecting while the workers empty the queue
        time.sleep(0.1)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError as exc:
            late.append(exc)

    threads = [threading.Thread(target=busy_worker), threading.Thread(target=late_caller)]
    for thread in threads:
        thread.start()
    close_listeners([listener], accept_seconds=2.0)
    for thread in threads:
        thread.join(10)
    assert received == [b"POST /voice/input"]
    assert queued.recv(100) == b"HTTP/1.1 200 OK"
    assert [type(exc) for exc in late] == [ConnectionRefusedError]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    queued.close()
    listener.close()


# --- a rolling restart behind nginx ---------------------------------------------------------------

CALLERS = 10
RESTART_WITHIN = 90.0
"""Starting `ivr serve` takes seconds, and up to half a minute on a busy 2-core machine while ten
callers and the other instance compete with it."""
HOLD_ROUNDS = 2


@dataclass
class Calls:
    """`CALLERS` callers walking whole calls through nginx, one after the other, until stopped:
    language, main menu, funds, the queue, `HOLD_ROUNDS` hold rounds, hang up."""

    base_url: str
    placed: dict[str, str] = field(default_factory=dict)
    """CallSid -> how it ended ("abandoned") for each call that finished."""
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, caller: int) -> None:
        deadline = time.monotonic() + 120  # bounded whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            phone = HttpPhone(base_url=self.base_url, caller=f"+1415555{caller:04d}")
            try:
                phone.dial()
                for key in ("2", "2", "1"):
                    phone.press(key)
                for _ in range(HOLD_ROUNDS + 1):  # "please hold", then the hold rounds
                    phone.follow()
                phone.hang_up()
            except (AssertionError, OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures.append(f"{phone.sid}: {type(exc).__name__}: {exc}"[:300])
                continue
            with self.lock:
                self.placed[phone.sid] = Outcome.ABANDONED


def _serves(nginx: Nginx | None, port: int, since: int) -> bool:
    """Whether nginx's access log shows a webhook answered by 127.0.0.1:`port` after line `since`."""
    assert nginx is not None
    lines = nginx.access_log.read_text().splitlines()[since:]
    return any(f"upstream=127.0.0.1:{port} " in line and " 200 " in line for line in lines)


# nginx (ngx_http_proxy_module, proxy_next_upstream, default "error timeout"): "error: an error
# occurred while establishing a connection with the server, passing a request to it, or reading the
# response header" passes the request to the next server, but "normally, requests with a
# non-idempotent method (POST, LOCK, PATCH) are not passed to the next server if a request has been
# sent to an upstream server". A refused connection sent nothing, so a webhook (a POST) refused by a
# stopped instance goes to the other one: the test's nginx keeps that default, as
# docs/operators/instances.md's does.


def test_a_rolling_restart_under_load_fails_no_webhook_and_completes_every_ticket(
    database: Database, tmp_path: Path
) -> None:
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    instances: list[Instance] = []
    nginx: Nginx | None = None
    with RedisProcess() as redis_server:
        envs = {}
        for name in ("a", "b"):
            envs[name] = _environment(database, redis_server.url, rules, tmp_path, name)
            envs[name]["IVR_DRAIN_SECONDS"] = "1"
        try:
            for name in ("a", "b"):
                instances.append(Instance.start(envs[name], tmp_path / f"{name}.log", workers=2))
            for instance in instances:
                instance.wait_ready()
            # docs/operators/instances.md's upstream block, with a shorter fail_timeout for a short test.
            nginx = Nginx(
                tmp_path / "nginx",
                [instance.port for instance in instances],
                server_options="max_fails=1 fail_timeout=2s",
            )
            nginx.start()
            calls = Calls(nginx.url)
            threads = [
                threading.Thread(target=calls.run, args=(n,), daemon=True) for n in range(CALLERS)
            ]
            for thread in threads:
                thread.start()
            time.sleep(2.0)  # calls in every state when the first instance is told to stop
            for index, name in enumerate(("a", "b")):
                old = instances[index]
                old.process.send_signal(signal.SIGTERM)
                assert old.process.wait(EXIT_WITHIN) == 0
                new = Instance.start(envs[name], tmp_path / f"{name}.log", 2, port=old.port)
                instances[index] = new
                new.wait_ready(RESTART_WITHIN)
                # nginx takes the instance back after fail_timeout: only then may the next stop.
                since = len(nginx.access_log.read_text().splitlines())
                wait_until(lambda: _serves(nginx, new.port, since), timeout=15)  # noqa: B023
            time.sleep(1.0)
            calls.stop.set()
            for thread in threads:
                thread.join(30)
            assert not any(thread.is_alive() for thread in threads)

            assert calls.failures == [], calls.failures[:5]
            assert len(calls.placed) >= CALLERS, "too few calls finished to show anything"

            def every_ticket_complete() -> bool:
                with database.sessions() as session:
                    tickets = [get_ticket(session, sid) for sid in calls.placed]
                return all(t is not None and t.ended_at is not None for t in tickets)

            wait_until(every_ticket_complete, timeout=30)  # the new instances' writers
        finally:
            if nginx is not None:
                nginx.stop()
            for instance in instances:
                instance.stop()
    with database.sessions() as session:
        count = session.scalar(select(func.count()).select_from(Ticket))
        assert count == len(
            calls.placed
        )  # one ticket per call, none from a failed or repeated call
        for sid, outcome in calls.placed.items():
            ticket = get_ticket(session, sid)
            assert ticket is not None
            assert ticket.outcome == outcome and ticket.menu_path == MENU_PATH, ticket
            assert ticket.queue == "funds" and ticket.ended_at is not None
