"""The exchange hook over real TCP, behind `tests.faults.FaultProxy`: stalled, refusing, dropping
or trickling, every call gives up within its deadline, the breaker opens, and `/healthz` says the
hook is degraded while the instance stays up (200)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from ivr.exchange.client import BREAKER_FAILURES, DEADLINE_SECONDS, HttpExchange
from ivr.services import Services
from tests.exchange.support import CALL, GERMAN, SECRET, ServedReference
from tests.faults import free_port, wait_until

WITHIN = 1.6
"""Seconds a call may take when the exchange does not answer: the deadline and a little."""


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.monotonic()
    answer = call()
    return time.monotonic() - started, answer


def test_through_the_proxy_the_reference_answers(served_exchange: ServedReference) -> None:
    exchange = HttpExchange(served_exchange.url, SECRET)
    account = exchange.lookup(GERMAN.number, CALL)
    assert account is not None and account.account == GERMAN.account
    verification = exchange.start_verification(account.account, CALL)
    assert verification is not None
    code = served_exchange.reference.codes_sent[account.account]
    assert exchange.check_code(verification.verification, code) is True
    assert exchange.lock(account.account, CALL, "20261123001", verified=True) is True
    exchange.close()


@pytest.mark.parametrize("fault", ["stall", "refuse", "drop"])
def test_a_faulty_exchange_costs_each_call_its_deadline_at_most_and_shows_on_healthz(
    fault: str, served_exchange: ServedReference, app_factory: Callable[..., Flask]
) -> None:
    app = app_factory(exchange_url=served_exchange.url, exchange_secret=SECRET)
    s: Services = app.extensions["ivr"]
    assert s.exchange.lookup(GERMAN.number, CALL) is not None  # a connection kept alive
    getattr(served_exchange.proxy, fault)()
    calls = [
        lambda: s.exchange.lookup(GERMAN.number, CALL),
        lambda: s.exchange.start_verification(GERMAN.account, CALL),
        lambda: s.exchange.check_code("v-1", "480913"),
        lambda: s.exchange.lock(GERMAN.account, CALL, "20261123001", verified=False),
    ]
    took = [timed(call) for call in calls]
    assert [answer for _, answer in took] == [None] * 4
    assert max(seconds for seconds, _ in took) < WITHIN, took
    assert took[-1][0] < 0.1  # the breaker is open after three: not even tried

    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    health = response.get_json()
    assert health["status"] == "ok"  # the line is fine: callers go on to the queue
    assert health["exchange"].startswith(f"degraded: {BREAKER_FAILURES} calls in a row unanswered")

    served_exchange.proxy.forward()
    assert isinstance(s.exchange, HttpExchange)
    s.exchange.close()


@contextlib.contextmanager
def trickling_server(every: float = 0.1, limit: float = 6.0) -> Iterator[int]:
    """A server that answers each request with a status line and then one header byte every
    `every` seconds, never finishing, for `limit` seconds at most: no single read waits long."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        deadline = time.monotonic() + limit
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(every) and time.monotonic() < deadline:
                    try:
                        connection.sendall(b"x")
                    except OSError:
                        break

    thread = threading.Thread(target=serve, name="trickling-server", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2 * limit)
        listener.close()


def test_an_answer_trickling_in_is_given_up_at_the_deadline_of_the_whole_request() -> None:
    with trickling_server() as port:
        exchange = HttpExchange(f"http://127.0.0.1:{port}", SECRET)
        seconds, answer = timed(lambda: exchange.lookup(GERMAN.number, CALL))
        exchange.close()
    assert answer is None
    assert DEADLINE_SECONDS - 0.1 < seconds < WITHIN
    assert exchange.problem() == "the last call was unanswered (no answer within 1.5 s)"


def test_nobody_listening_is_no_answer_at_once() -> None:
    exchange = HttpExchange(f"http://127.0.0.1:{free_port()}", SECRET)
    seconds, answer = timed(lambda: exchange.lookup(GERMAN.number, CALL))
    assert answer is None and seconds < 0.5
    assert exchange.problem() == "the last call was unanswered (unreachable (ConnectError))"


def test_a_forked_process_makes_connections_of_its_own(served_exchange: ServedReference) -> None:
    exchange = HttpExchange(served_exchange.url, SECRET)
    assert exchange.lookup(GERMAN.number, CALL) is not None  # the parent's connection, kept alive
    assert served_exchange.proxy.accepted == 1
    pid = os.fork()
    if pid == 0:  # the child: as a gunicorn worker forked after the app was made
        found = exchange.lookup(GERMAN.number, CALL)
        os._exit(0 if found is not None else 1)
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked process did not finish its lookup within 10 s")
    assert os.waitstatus_to_exitcode(status) == 0
    wait_until(lambda: served_exchange.proxy.accepted == 2, timeout=2)  # its own connection
    assert exchange.lookup(GERMAN.number, CALL) is not None  # the parent's still works
    assert served_exchange.proxy.accepted == 2
    exchange.close()
