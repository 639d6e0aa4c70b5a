"""Fault injection for tests: a TCP proxy that refuses, drops, stalls and cuts, private redis-servers,
and full disks (a small tmpfs of its own, or the `os.write` seam).

Everything here is bounded: every socket is non-blocking behind `select` with a short timeout, every
thread is a daemon that ends when its proxy or connection closes, and every wait has a deadline. Nothing
touches the machine's own services: the proxy only forwards to the target it is given,
`RedisProcess` signals only the PID it started, and `Tmpfs` unmounts only what it mounted.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import errno
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

T = TypeVar("T")

TICK = 0.02
"""How often waiting threads look at the proxy's mode: mode changes take effect within this."""

_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 2.0
_JOIN_TIMEOUT = 2.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Call `predicate` until it returns something truthy and return that; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"{name} still returned {value!r} after {timeout} s")
        time.sleep(interval)


def start_logged(
    argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path, append: bool = False
) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own (its children, gunicorn's workers say, with it), stdin
    closed, stdout and stderr into `log` (appended to with `append`: a restart keeps the first
    run's output). Stop it by its PID (`stop_group` and the like)."""
    with open(log, "ab" if append else "wb") as output:
        return subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Mode(enum.StrEnum):
    """What a `FaultProxy` does with connections."""

    FORWARD = "forward"
    REFUSE = "refuse"
    DROP = "drop"
    STALL = "stall"


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of `target` whose behaviour can be switched at any time."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.accepted = 0
        """Connections accepted from clients (in any mode but refuse)."""
        self.bytes_to_target = 0
        """Bytes actually delivered to the target."""
        self.bytes_to_client = 0
        """Bytes actually delivered to clients."""
        self._mode = Mode.FORWARD
        self._lock = threading.Lock()
        self._closed = False
        self._connections: set[_Connection] = set()
        self._listener: socket.socket | None = self._listen()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect: ("127.0.0.1", port)."""
        return ("127.0.0.1", self.port)

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def forward(self) -> None:
        """Forward both ways; bytes held back by `stall()` are delivered now."""
        self._set_mode(Mode.FORWARD)

    def refuse(self) -> None:
        """Refuse new connections (nothing listens on the port) and cut the existing ones."""
        self._set_mode(Mode.REFUSE)
        self.cut()

    def drop(self) -> None:
        """Blackhole: accept new connections but never answer; existing ones go silent for good."""
        with self._lock:
            self._set_mode_locked(Mode.DROP)
            for connection in self._connections:
                connection.dropped = True

    def stall(self) -> None:
        """Freeze: keep connections open, forward nothing either way until `forward()`."""
        self._set_mode(Mode.STALL)

    def cut(self) -> None:
        """Close every existing connection now, as a server restart looks to its clients; mode unchanged."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.cut()
        for connection in connections:
            connection.join(_JOIN_TIMEOUT)

    def close(self) -> None:
        """Stop listening and close every connection."""
        with self._lock:
            self._closed = True
            self._close_listener_locked()
        self.cut()
        self._acceptor.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"FaultProxy(127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]}, {self._mode})"
        )

    def _set_mode(self, mode: Mode) -> None:
        with self._lock:
            self._set_mode_locked(mode)

    def _set_mode_locked(self, mode: Mode) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        self._mode = mode
        if mode is Mode.REFUSE:
            self._close_listener_locked()
        elif self._listener is None:
            self._listener = self._listen()

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Reusing the port after refuse() must not wait for TIME_WAIT of earlier connections.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(self.address)
        except OSError as error:
            listener.close()
            raise RuntimeError(
                f"proxy port {self.port} was taken while refusing: {error}"
            ) from error
        listener.listen(64)
        listener.setblocking(False)
        return listener

    def _close_listener_locked(self) -> None:
        if self._listener is None:
            return
        # shutdown() stops listening at once, even while the accept thread is inside select().
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None

    def _accept_loop(self) -> None:
        while not self._closed:
            listener = self._listener
            if listener is None:
                time.sleep(TICK)
                continue
            try:
                readable, _, _ = select.select([listener], [], [], TICK)
            except (OSError, ValueError):  # closed by refuse() or close() meanwhile
                continue
            if not readable:
                continue
            with self._lock:
                if listener is not self._listener:
                    continue
                try:
                    client, _ = listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                self.accepted += 1
                connection = _Connection(self, client, dropped=self._mode is Mode.DROP)
                self._connections.add(connection)
                connection.start()  # under the lock, so that cut() never joins an unstarted thread

    def _count(self, to_target: int, to_client: int) -> None:
        with self._lock:
            self.bytes_to_target += to_target
            self.bytes_to_client += to_client

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)


class _Connection:
    """One client connection and its upstream socket, pumped by one thread that owns both sockets."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, dropped: bool) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.dropped = dropped
        """Set by drop(); a dropped connection never forwards again (its byte stream has gaps)."""
        self._cut = threading.Event()
        # Bytes read from one side and not yet written to the other, keyed by the side they go to.
        self._pending: dict[socket.socket, bytes] = {}
        self._ended: set[socket.socket] = set()
        """Sides that sent EOF."""
        self._thread = threading.Thread(target=self._run, name=f"{proxy!r} conn", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def cut(self) -> None:
        """Close both sides now; the pump thread notices and releases the sockets."""
        self._cut.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed by the pump thread
                    sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        try:
            if not self.dropped:
                self.upstream = self._connect_upstream()
                if self.upstream is None:
                    return
            self._pump()
        except OSError:
            pass  # a reset or broken pipe on either side ends the connection, as it would end a real one
        finally:
            for sock in (self.client, self.upstream):
                if sock is not None:
                    sock.close()
            self.proxy._forget(self)

    def _connect_upstream(self) -> socket.socket | None:
        try:
            upstream = socket.create_connection(self.proxy.target, timeout=_CONNECT_TIMEOUT)
        except OSError:
            # The target is down: reset the client, the nearest thing to "connection refused" now.
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return None
        if self._cut.is_set():
            upstream.close()
            return None
        upstream.setblocking(False)
        return upstream

    def _pump(self) -> None:
        """Move bytes until both sides closed or the connection is cut; the mode decides each round."""
        self.client.setblocking(False)
        while not self._cut.is_set():
            if self.dropped or self.upstream is None:
                finished = self._swallow_round()
            elif self.proxy.mode is Mode.FORWARD:
                finished = self._forward_round(self.upstream)
            else:
                # Stalled: neither read nor write, so the kernel holds what is sent until forward().
                time.sleep(TICK)
                continue
            if finished:
                return

    def _swallow_round(self) -> bool:
        """Read and discard both ways; True once the client has closed."""
        sockets = [
            s for s in (self.client, self.upstream) if s is not None and s not in self._ended
        ]
        readable, _, _ = select.select(sockets, [], [], TICK)
        for source in readable:
            if _receive(source) == b"":
                self._ended.add(
                    source
                )  # upstream's EOF is swallowed too: the client must not notice
        return self.client in self._ended

    def _forward_round(self, upstream: socket.socket) -> bool:
        """Write what is pending, else read; True once both sides closed and everything is delivered."""
        client = self.client
        readers: list[socket.socket] = []
        writers: list[socket.socket] = []
        for source, sink in ((client, upstream), (upstream, client)):
            if self._pending.get(sink):
                writers.append(sink)
            elif source not in self._ended:
                readers.append(source)
        if not readers and not writers:
            return True
        readable, writable, _ = select.select(readers, writers, [], TICK)
        for sink in writable:
            try:
                sent = sink.send(self._pending[sink])
            except BlockingIOError:
                continue
            self._pending[sink] = self._pending[sink][sent:]
            self.proxy._count(
                to_target=sent if sink is upstream else 0, to_client=sent if sink is client else 0
            )
            source = client if sink is upstream else upstream
            if not self._pending[sink] and source in self._ended:
                sink.shutdown(socket.SHUT_WR)  # the half-close, now that its bytes are through
        for source in readable:
            sink = upstream if source is client else client
            data = _receive(source)
            if data == b"":
                self._ended.add(source)
                sink.shutdown(
                    socket.SHUT_WR
                )  # pass the half-close on (nothing is pending for sink)
            elif data is not None:
                self._pending[sink] = data
        return False


def _receive(sock: socket.socket) -> bytes | None:
    """Up to one chunk from a non-blocking socket: b"" at EOF, None if nothing is there after all."""
    try:
        return sock.recv(_CHUNK)
    except BlockingIOError:
        return None


class RedisProcess:
    """A private `redis-server` on a free port in a temp dir; stop, restart, freeze and thaw it at will."""

    STOP_TIMEOUT = 5.0
    """Seconds SIGTERM gets before SIGKILL."""
    START_TIMEOUT = 10.0
    """Seconds a start may take until the server answers PING."""

    def __init__(
        self,
        appendonly: bool = False,
        *,
        port: int | None = None,
        config: str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """`config`: the text of a config file, given first (a Sentinel rewrites its own file);
        `extra`: more command-line options (cluster mode, a replica's `--replicaof`)."""
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError(
                "redis-server is not on PATH; install it (apt-get install redis-server)"
            )
        self.appendonly = appendonly
        self.config = config
        self.extra = list(extra)
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
        self.frozen = False
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The PID of the running server, or None."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self._process is not None:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        assert self.binary is not None
        command = [self.binary]
        if self.config is not None:
            config_file = self.dir / "redis.conf"
            if not config_file.exists():  # a restart keeps what the server wrote into it
                config_file.write_text(self.config)
            command.append(str(config_file))
        command += ["--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.dir), "--save", "", "--daemonize", "no"]
        command += ["--logfile", ""]  # to stdout, which goes to the log file
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            command += ["--appendonly", "no"]
        command += self.extra
        with open(self.dir / "redis.log", "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        # A test that forgets stop() must not leave a redis-server behind on a shared machine.
        atexit.register(self.stop)
        self._wait_for_ping()

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            if self.frozen:  # a stopped process only acts on SIGTERM once resumed
                process.send_signal(signal.SIGCONT)
            try:
                process.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(self.STOP_TIMEOUT)
        self.frozen = False

    def restart(self, empty: bool = True) -> None:
        """Stop and start again on the same port; `empty=False` (AOF only) keeps the data."""
        if not empty and not self.appendonly:
            raise ValueError(
                "only RedisProcess(appendonly=True) can keep its data across a restart"
            )
        self.stop()
        if empty:
            for entry in self.dir.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)  # Redis 7 keeps its AOF files in appendonlydir/
                elif entry.suffix != ".log":
                    entry.unlink()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open and nothing is answered."""
        os.kill(self._running_pid(), signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        """SIGCONT the server after `freeze()`."""
        os.kill(self._running_pid(), signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisProcess(port={self.port}, pid={self.pid}, appendonly={self.appendonly})"

    def _running_pid(self) -> int:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        return self._process.pid

    def _wait_for_ping(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        # No retries of its own: this loop is the retry, bounded by the deadline.
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    problem = f"exited with status {process.returncode}"
                    break
                try:
                    if client.ping():
                        return
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    pass  # not listening yet, or still loading its AOF (BusyLoadingError)
                time.sleep(0.02)
            else:
                problem = f"did not answer PING within {self.START_TIMEOUT} s"
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} {problem}; log: {self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.dir / "redis.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return " | ".join(line.strip() for line in lines[-5:]) or "(empty)"


class SqliteFaults:
    """Database faults for runs on SQLite, which has no socket to put a proxy in front of.

    `database` is a second `Database` on the same file whose connections fail (`refuse`) or hang
    (`stall`) while told to, as a PostgreSQL server behind a `FaultProxy` would: pooled connections
    are dropped on checkout and every new connection meets the fault."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import event

        from ivr.db import Database

        self.database = Database(url)
        self._mode = Mode.FORWARD
        self._changed = threading.Condition()
        event.listen(self.database.engine, "checkout", self._on_checkout)
        event.listen(self.database.engine, "do_connect", self._on_connect)

    def forward(self) -> None:
        self._set(Mode.FORWARD)

    def refuse(self) -> None:
        self._set(Mode.REFUSE)

    def stall(self) -> None:
        self._set(Mode.STALL)

    def close(self) -> None:
        self.forward()
        self.database.dispose()

    def _set(self, mode: Mode) -> None:
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    def _on_checkout(self, *_args: object) -> None:
        from sqlalchemy.exc import DisconnectionError

        if self._mode is not Mode.FORWARD:
            raise DisconnectionError("fault injected: the database went away")

    def _on_connect(self, *_args: object) -> None:
        import sqlite3

        with self._changed:
            # A stalled server answers nothing: wait (bounded) until the fault is lifted.
            self._changed.wait_for(lambda: self._mode is not Mode.STALL, timeout=60)
            if self._mode is Mode.REFUSE:
                raise sqlite3.OperationalError("fault injected: connection refused")


class PostgresFaults:
    """Database faults on PostgreSQL: `database` reaches the server through a `FaultProxy`."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import make_url

        from ivr.db import Database

        parsed = make_url(url)
        self.proxy = FaultProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        through = parsed.set(host="127.0.0.1", port=self.proxy.port)
        self.database = Database(through.render_as_string(hide_password=False))

    def forward(self) -> None:
        self.proxy.forward()

    def refuse(self) -> None:
        self.proxy.refuse()

    def stall(self) -> None:
        self.proxy.stall()

    def close(self) -> None:
        self.proxy.forward()
        self.database.dispose()
        self.proxy.close()


class SlowClients:
    """`count` sockets that each start an HTTP request and send one more header line every `every`
    seconds, never finishing it (a "slowloris" flood), until the block ends or `limit` seconds pass.

    A server that commits a thread to a request as soon as its first bytes arrive has every thread
    held by them; a buffering proxy holds them itself and passes on only whole requests."""

    def __init__(self, port: int, count: int, every: float = 1.0, limit: float = 60.0) -> None:
        self.port, self.count, self.every, self.limit = port, count, every, limit
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name="slow-clients", daemon=True)

    def __enter__(self) -> Self:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=_CONNECT_TIMEOUT)
            sock.setblocking(False)
            self._send(sock, b"POST /voice/incoming HTTP/1.1\r\nHost: slow.example\r\n")
            self._sockets.append(sock)
        self._thread.start()
        return self

    def _send(self, sock: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a server that gave up on it: it is free to
            sock.send(data)

    def _drip(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.wait(self.every) and time.monotonic() < deadline:
            for sock in self._sockets:
                self._send(sock, b"X-Slow: 1\r\n")

    def open(self) -> int:
        """How many of the sockets the server has not closed."""
        alive = 0
        for sock in self._sockets:
            try:
                alive += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                alive += 1  # nothing to read: still open
            except OSError:
                pass
        return alive

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(_JOIN_TIMEOUT + self.every)
        for sock in self._sockets:
            sock.close()


class Tmpfs:
    """A small filesystem of its own (tmpfs) mounted on `folder`, to fill up for real.

    Mounting needs root: CI runs the tests as root. `close()` unmounts it (lazily if a file in it is
    still open), and so does the end of the process if a test forgot to."""

    def __init__(self, folder: Path, size_kib: int = 512) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._filler = folder / "filler"
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if mounted.returncode != 0:
            raise RuntimeError(
                f"cannot mount a tmpfs on {folder} (it takes root, as CI runs the tests): "
                f"{mounted.stderr.strip()}"
            )
        atexit.register(self.close)

    def fill(self) -> int:
        """Write a file until the filesystem refuses (ENOSPC); how many bytes it took."""
        chunk = b"\0" * 65536
        taken = 0
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for _ in range(100_000):
                try:
                    taken += os.write(fd, chunk)
                except OSError as error:
                    if error.errno == errno.ENOSPC:
                        return taken
                    raise
        finally:
            os.close(fd)
        raise RuntimeError(f"{self.folder} took {taken} bytes and is still not full")

    def free(self) -> None:
        """Remove what `fill` wrote."""
        self._filler.unlink(missing_ok=True)

    def close(self) -> None:
        """Unmount the filesystem (what is in it is gone)."""
        atexit.unregister(self.close)
        if not os.path.ismount(self.folder):
            return
        if subprocess.run(["umount", str(self.folder)], capture_output=True, timeout=10).returncode:
            subprocess.run(["umount", "--lazy", str(self.folder)], check=True, timeout=10)


class WriteFaults:
    """A disk filling up, at the `os.write` seam, for the files under `folder` only (for unit tests;
    `Tmpfs` is the real thing). After `fill(room)` it takes `room` more bytes, writing the part of
    a write that fits as a filling disk does, then refuses every write with ENOSPC until `free()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = folder.resolve()
        self.room: int | None = None
        self._write = os.write
        monkeypatch.setattr(os, "write", self._write_or_refuse)

    def fill(self, room: int = 0) -> None:
        """From now on the disk takes `room` more bytes."""
        self.room = room

    def free(self) -> None:
        """The disk takes every write again."""
        self.room = None

    def _write_or_refuse(self, fd: int, data: bytes | memoryview) -> int:
        if self.room is None or not self._under_folder(fd):
            return self._write(fd, data)
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self._write(fd, bytes(memoryview(data)[: self.room]))
        self.room -= written
        return written

    def _under_folder(self, fd: int) -> bool:
        try:
            return Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(self.folder)
        except OSError:
            return False
