"""Stopping `ivr serve` without dropping a webhook (see docs/operators/draining.md).

On SIGTERM (or SIGINT) to gunicorn's master:

1. At once, every worker's `GET /healthz` answers 503 with `"status": "draining"`: readiness probes
   and load balancers send no new calls here.
2. For `IVR_DRAIN_SECONDS` the workers go on accepting and answering every request, so a webhook a
   proxy or Twilio still sends here (the proxy has not noticed yet) is answered.
3. Then the master makes gunicorn's graceful stop: it shuts the listening socket down (new
   connections are refused from that instant, so a proxy passes them to another instance) and sends
   the workers SIGTERM; each answers the requests it holds (at most `GRACEFUL_SECONDS`) and exits.
   The master shuts the socket itself down (`shutdown`, not only its own `close`): the workers
   share it, and gunicorn's workers stop accepting at SIGTERM but keep it open until their last
   request is answered, so connections a proxy opened meanwhile would wait in the kernel's queue,
   unanswered, and be reset at the close; a reset POST is not retried by nginx.
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
import errno
import logging
import mmap
import socket
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
        # Refuse new connections at once, in every process that shares the socket (step 3).
        for listener in self.LISTENERS:
            with contextlib.suppress(OSError):  # already shut: nothing more to refuse
                listener.sock.shutdown(socket.SHUT_RD)
        super().stop(graceful)


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
