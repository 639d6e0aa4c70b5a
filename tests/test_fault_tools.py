"""The fault tools: the proxy's modes against an echo server, Redis and PostgreSQL; RedisProcess."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import make_url

from tests.conftest import TEST_DATABASE_URL
from tests.faults import FaultProxy, Mode, RedisProcess, free_port, wait_until


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every byte back and counts what it received."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.received = 0
        self.connections = 0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, EchoServer)
        server.connections += 1
        self.request.settimeout(30)  # longer than any test waits, so only the proxy closes it
        while data := self.request.recv(65536):
            server.received += len(data)
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(2)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", echo.server_address[1])) as proxy:
        yield proxy


def connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    """A client socket through the proxy with a read timeout."""
    return socket.create_connection(proxy.address, timeout=timeout)


def round_trip(sock: socket.socket, data: bytes) -> bytes:
    """Send `data` and read back as many bytes."""
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def is_closed(sock: socket.socket) -> bool:
    """Whether the peer closed or reset `sock` (a read within 1 s returns EOF or fails with a reset)."""
    sock.settimeout(1)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def no_retry_redis(url: str) -> redis.Redis:
    """A redis-py client that fails fast: 0.5 s timeouts and no retries (redis-py 8 retries 10 times)."""
    return redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def test_forward_passes_bytes_both_ways_and_counts_them(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB, more than one chunk
    with connect(proxy) as client:
        assert round_trip(client, payload) == payload
    assert proxy.accepted == 1
    assert echo.received == len(payload)
    # The pump counts right after it sends, so the client may have read the bytes a moment before.
    wait_until(lambda: proxy.bytes_to_client == len(payload), timeout=1)
    assert proxy.bytes_to_target == len(payload)


def test_refuse_refuses_new_connections_at_once_and_cuts_existing(proxy: FaultProxy) -> None:
    with connect(proxy) as existing:
        assert round_trip(existing, b"ping") == b"ping"
        proxy.refuse()
        started = time.monotonic()
        with pytest.raises((ConnectionRefusedError, ConnectionResetError)):
            connect(proxy).close()
        assert time.monotonic() - started < 0.5
        assert is_closed(existing)

    proxy.forward()
    with connect(proxy) as client:
        assert round_trip(client, b"back") == b"back"


def test_drop_accepts_but_never_answers_and_nothing_reaches_the_target(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with connect(proxy) as existing:
        assert round_trip(existing, b"ping") == b"ping"
        proxy.drop()
        with connect(proxy, timeout=0.5) as fresh:
            fresh.sendall(b"hello")
            with pytest.raises(TimeoutError):
                fresh.recv(1)
        existing.settimeout(0.5)
        existing.sendall(b"hello")
        with pytest.raises(TimeoutError):
            existing.recv(1)
        assert echo.received == 4
        assert (
            echo.connections == 1
        )  # a connection accepted while dropping never reaches the target
        assert proxy.bytes_to_target == 4

        # Bytes were lost, so a dropped connection stays silent for good; new ones work again.
        proxy.forward()
        existing.sendall(b"more")
        with pytest.raises(TimeoutError):
            existing.recv(1)
        with connect(proxy) as client:
            assert round_trip(client, b"fresh") == b"fresh"


def test_stall_holds_bytes_until_forward_then_delivers_them(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with connect(proxy, timeout=0.3) as client:
        assert round_trip(client, b"ping") == b"ping"
        proxy.stall()
        client.sendall(b"while stalled")
        with pytest.raises(TimeoutError):
            client.recv(1)
        assert echo.received == 4

        proxy.forward()
        client.settimeout(2)
        assert client.recv(100) == b"while stalled"


def test_a_connection_opened_while_stalled_works_after_forward(proxy: FaultProxy) -> None:
    proxy.stall()
    with connect(proxy, timeout=0.3) as client:
        client.sendall(b"early")
        with pytest.raises(TimeoutError):
            client.recv(1)
        proxy.forward()
        client.settimeout(2)
        assert client.recv(100) == b"early"


def test_cut_closes_existing_connections_and_keeps_the_mode(proxy: FaultProxy) -> None:
    with connect(proxy) as first, connect(proxy) as second:
        assert round_trip(first, b"1") == b"1"
        assert round_trip(second, b"2") == b"2"
        proxy.cut()
        assert is_closed(first)
        assert is_closed(second)
    assert proxy.mode is Mode.FORWARD
    with connect(proxy) as client:
        assert round_trip(client, b"again") == b"again"


def test_a_client_of_a_target_that_is_down_is_reset() -> None:
    with FaultProxy(("127.0.0.1", free_port())) as proxy:
        try:
            client = connect(proxy)
        except ConnectionResetError:
            return  # the reset came before connect() returned
        with client:
            assert is_closed(client)


def test_redis_through_the_proxy_times_out_while_stalled_and_recovers() -> None:
    with RedisProcess() as server, FaultProxy(("127.0.0.1", server.port)) as proxy:
        client = no_retry_redis(f"redis://127.0.0.1:{proxy.port}/0")
        client.set("key", "value")
        proxy.stall()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.get("key")
        proxy.forward()
        assert client.get("key") == b"value"
        assert proxy.accepted == 2  # redis-py reconnected after the timeout
        client.close()


def test_redis_through_the_proxy_fails_fast_when_refused_and_times_out_when_dropped() -> None:
    with RedisProcess() as server, FaultProxy(("127.0.0.1", server.port)) as proxy:
        client = no_retry_redis(f"redis://127.0.0.1:{proxy.port}/0")
        assert client.ping()
        proxy.refuse()
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
        # Well under the 0.5 s timeout: refused, not timed out.
        assert time.monotonic() - started < 0.4
        proxy.drop()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
        client.close()


def test_restart_empty_loses_the_keys() -> None:
    with RedisProcess() as server:
        client = no_retry_redis(server.url)
        client.set("key", "value")
        pid = server.pid
        server.restart(empty=True)
        assert server.pid != pid
        assert client.get("key") is None  # the same URL works again: same port
        client.close()


def test_restart_with_appendonly_keeps_the_keys() -> None:
    with RedisProcess(appendonly=True) as server:
        client = no_retry_redis(server.url)
        client.rpush("line", "first", "second")
        server.restart(empty=False)
        assert client.lrange("line", 0, -1) == [b"first", b"second"]
        server.restart(empty=True)
        assert client.lrange("line", 0, -1) == []
        client.close()


def test_restart_without_appendonly_cannot_keep_the_keys() -> None:
    with RedisProcess() as server, pytest.raises(ValueError, match="appendonly"):
        server.restart(empty=False)


def test_freeze_stops_answering_and_thaw_resumes() -> None:
    with RedisProcess() as server:
        client = no_retry_redis(server.url)
        client.set("key", "value")
        server.freeze()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.get("key")
        server.thaw()
        assert client.get("key") == b"value"
        client.close()


def test_stop_ends_a_frozen_server_and_frees_the_port() -> None:
    server = RedisProcess()
    server.start()
    server.freeze()
    server.close()
    assert server.pid is None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", server.port))  # nothing listens there any more


def test_redis_process_without_redis_server_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="redis-server is not on PATH"):
        RedisProcess()


def test_wait_until_returns_the_truthy_value_or_fails_with_a_message() -> None:
    answers = iter([0, None, "ready"])
    assert wait_until(lambda: next(answers), timeout=1, interval=0.01) == "ready"

    def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"never still returned False after 0\.1 s"):
        wait_until(never, timeout=0.1, interval=0.01)


@pytest.fixture
def postgres_proxy() -> Iterator[FaultProxy]:
    """The proxy in front of the test PostgreSQL (TEST_DATABASE_URL, as CI sets it).

    Like every other test, this one uses PostgreSQL only where the environment provides it; where
    it is configured but unreachable, the test fails."""
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL is not configured for this run (TEST_DATABASE_URL)")
    with FaultProxy(_postgres_address()) as proxy:
        yield proxy


def _postgres_address() -> tuple[str, int]:
    url = make_url(TEST_DATABASE_URL or "")
    return (url.host or "127.0.0.1", url.port or 5432)


def postgres_through(proxy: FaultProxy) -> psycopg.Connection[tuple[int]]:
    """A read-only session on the test database through the proxy."""
    url = make_url(TEST_DATABASE_URL or "")
    return psycopg.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=url.username or "postgres",
        dbname=url.database or "test",
        connect_timeout=3,
        sslmode="disable",
    )


def test_postgres_through_the_proxy_waits_out_a_stall(postgres_proxy: FaultProxy) -> None:
    with postgres_through(postgres_proxy) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        results: list[object] = []

        def select_one() -> None:
            try:
                results.append(connection.execute("SELECT 1").fetchone())
            except psycopg.Error as error:
                results.append(error)

        postgres_proxy.stall()
        worker = threading.Thread(target=select_one, daemon=True)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and results == []

        postgres_proxy.forward()
        worker.join(5)
        assert not worker.is_alive()
        assert results == [(1,)]
    assert postgres_proxy.bytes_to_target > 0 and postgres_proxy.bytes_to_client > 0
