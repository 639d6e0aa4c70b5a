"""Stopping `ivr serve` without dropping a webhook (see docs/operators/draining.md).

On SIGTERM (or SIGINT) to gunicorn's master:

1. At once, every worker's `GET /healthz` answers 503 with `"status": "draining"`: readiness probes
   and load balancers send no new calls here.
2. For `IVR_DRAIN_SECONDS` the workers go on accepting and answering every request, so a webhook a
   proxy or Twilio still sends here (the proxy has not noticed yet) is answered.
3. Then the master closes the door without resetting anyone inside (`close_listeners`):
   a. it stops new connections from completing: a socket filter on the listening socket drops the
      SYNs that open them (a client's kernel sends a dropped SYN again about a second later);
   b. it waits until the workers have accepted every connection already in the kernel's accept
      queue (at most `ACCEPT_SECONDS`): those clients have sent their request already;
   c. it shuts the listening socket down: from that instant a new connection, the SYNs dropped in
      (a) included when they come again, is refused, so a proxy passes it to another instance.
   Then gunicorn's graceful stop sends the workers SIGTERM; each answers the requests it holds (at
   most `GRACEFUL_SECONDS`) and exits.
   Why (a) and (b): on Linux, shutting a listening socket down resets the connections still in its
   accept queue, and a proxy has usually written its request on them already. nginx does not pass a
   POST (every webhook) to another server once it has sent it, so each would be a failed webhook:
   the rolling restart under load in tests/test_drain.py lost a few at each stop that way.
   Why the master shuts the socket itself down (`shutdown`, not only its own `close`): the workers
   share it, and gunicorn's workers stop accepting at SIGTERM but keep it open until their last
   request is answered, so connections a proxy opened meanwhile would wait in the queue, unanswered,
   and be reset at the last close.
4. Each worker, before it exits (gunicorn's `worker_exit` hook), hands over its journal
   (`Background.finish`): what memory holds and its spool go to the Redis stream, and its spool
   file is sealed; what Redis cannot take stays in the spool for the next process or `ivr worker`.
5. The master exits 0.

A second SIGTERM or SIGINT during step 2 skips the rest of the wait (an operator's second Ctrl-C);
step 4 is never skipped. The workers ignore SIGINT: a Ctrl-C in a terminal reaches the whole
process group, and gunicorn's own handler would end a worker at once, requests and all; the master
alone decides.

How the workers learn of step 1: one byte of anonymous shared memory (`DrainFlag`), mapped by the
master before it forks, so every worker reads the same byte, a worker forked during the drain to
replace one that died included. No signal between processes to lose, no file left behind by a crash.

gunicorn's documentation (Signal Handling) says what we rely on: for the master, "TERM: Graceful
shutdown. Waits for workers to finish their current requests up to the graceful timeout." and for
a worker, "TERM: Graceful shutdown"; the hook `worker_exit` is "Called just after a worker has been
exited, in the worker process."
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import socket
import struct
import time
from typing import Any

from flask import Flask
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)

EXTENSION = "ivr.drain"
"""Where `ivr serve` keeps the `DrainFlag` in `app.extensions` (no flag: never draining)."""
GRACEFUL_SECONDS = 20
"""gunicorn's `graceful_timeout` (step 3): Twilio waits at most 15 s for a webhook, plus a margin."""
ACCEPT_SECONDS = 2.0
"""Step 3b: how long the master waits for the workers to accept the connections already queued."""
QUIET_SECONDS = 0.1
"""Step 3b: the accept queue must stay empty this long (a handshake under way when the SYNs began
to be dropped still completes, and joins the queue, within a round trip)."""

_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; the `socket` module does not name it
_DROP_SYNS = [  # classic BPF, run on each TCP segment for the listening socket; offset 0 is the TCP header
    (0x30, 0, 0, 13),  # ldb [13]             the flags byte
    (0x54, 0, 0, 0x12),  # and #0x12          SYN and ACK
    (0x15, 0, 1, 0x02),  # jeq #0x02, drop, keep: SYN without ACK opens a connection
    (0x06, 0, 0, 0),  # drop: ret #0
    (0x06, 0, 0, 0xFFFFFFFF),  # keep: ret #-1 (a handshake's last ACK, anything else)
]


class DrainFlag:
    """Whether this instance is draining, shared by a process and every child it forks later."""

    def __init__(self) -> None:
        # fileno -1: anonymous memory, MAP_SHARED by default, so children see the parent's writes.
        self._memory = mmap.mmap(-1, 1)

    def start(self) -> None:
        """From now on this instance is draining (in every process that shares the flag)."""
        self._memory[0] = 1

    def is_set(self) -> bool:
        """Whether the instance is draining."""
        return self._memory[0] == 1


def install(app: Flask) -> DrainFlag:
    """Give `app` a drain flag (in gunicorn's master, before it forks the workers)."""
    flag = DrainFlag()
    app.extensions[EXTENSION] = flag
    return flag


def draining(app: Flask) -> bool:
    """Whether the instance serving `app` is draining."""
    flag: DrainFlag | None = app.extensions.get(EXTENSION)
    return flag is not None and flag.is_set()


class DrainingArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master with steps 1-2 in front of its graceful stop (module docstring)."""

    def __init__(self, app: Any, flag: DrainFlag, drain_seconds: float) -> None:
        super().__init__(app)
        self.drain_flag = flag
        self.drain_seconds = drain_seconds
        self.stop_at: float | None = None
        """When the drain ends (monotonic); None: not draining."""

    def handle_term(self) -> None:
        self._drain()

    def handle_int(self) -> None:
        self._drain()

    def _drain(self) -> None:
        if self.stop_at is not None:
            self.log.info("Second signal while draining: stopping now")
            raise StopIteration  # the main loop's way to halt(): the graceful stop
        self.drain_flag.start()
        self.stop_at = time.monotonic() + self.drain_seconds
        self.log.info(
            "Draining: /healthz answers 503; taking requests for %g s more, then stopping",
            self.drain_seconds,
        )
        if self.drain_seconds <= 0:
            raise StopIteration

    def wait_for_signals(self, timeout: float = 1.0) -> list[int]:
        # Wake up when the drain ends, not up to a second later.
        if self.stop_at is not None:
            timeout = max(0.0, min(timeout, self.stop_at - time.monotonic()))
        signals: list[int] = super().wait_for_signals(timeout=timeout)
        return signals

    def manage_workers(self) -> None:
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            raise StopIteration
        super().manage_workers()

    def stop(self, graceful: bool = True) -> None:
        # Step 3: refuse new connections, in every process that shares the socket, but only after
        # the workers have taken the ones already queued (not when stopping at once: they are dying).
        close_listeners(
            [listener.sock for listener in self.LISTENERS], ACCEPT_SECONDS if graceful else 0.0
        )
        super().stop(graceful)


def close_listeners(sockets: list[socket.socket], accept_seconds: float) -> None:
    """Step 3 (module docstring): stop new connections, give the workers up to `accept_seconds`
    to accept the queued ones, then shut every listening socket down."""
    filtered = [sock for sock in sockets if _drop_syns(sock)]
    deadline = time.monotonic() + accept_seconds
    empty_since: float | None = None
    while filtered and time.monotonic() < deadline:
        now = time.monotonic()
        if any(_queued(sock) for sock in filtered):
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= QUIET_SECONDS:
            break
        time.sleep(0.01)
    left = sum(_queued(sock) for sock in filtered)
    if left:
        log.warning("Stopping with %d connections not accepted: they are reset", left)
    for sock in sockets:
        with contextlib.suppress(OSError):  # already shut: nothing more to refuse
            sock.shutdown(socket.SHUT_RD)


def _drop_syns(sock: socket.socket) -> bool:
    """Make the kernel drop the SYNs that open new connections to listening socket `sock`; False
    where it cannot (not TCP, or not Linux): that socket is shut down with no wait."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in _DROP_SYNS))
    program = struct.pack("HxxxxxxP", len(_DROP_SYNS), ctypes.addressof(code))  # sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)  # the kernel copies it
    except OSError as exc:
        log.warning("Cannot hold new connections back while draining (%s): not waiting", exc)
        return False
    return True


def _queued(sock: socket.socket) -> int:
    """How many connections wait in listening socket `sock`'s accept queue: Linux reports it as
    `tcpi_unacked` of a listening socket's TCP_INFO (offset 24)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:  # closed meanwhile: nothing waits in it
        return 0
    queued: int = struct.unpack_from("I", info, 24)[0]
    return queued


class DrainingWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, which takes a listening socket the master shut down (step 3)
    for what it is: nothing more will come, so it finishes what it holds and exits, as on
    SIGTERM (which follows), instead of failing on the `accept` (EINVAL)."""

    def accept(self, listener: Any) -> None:
        try:
            super().accept(listener)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.alive = False
            self.set_accept_enabled(False)
