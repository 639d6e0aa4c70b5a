"""The work a serving process does beside its requests, in daemon threads, so no request waits for it.

- `ivr-writer`: the ticket writer (`IVR_WRITER=thread`, the default; `off` leaves it to `ivr worker`).
- `ivr-database`: probes the database for `/healthz`, keeps ticket reference blocks at hand, and
  rebuilds kept callbacks and agent logins in a Redis that lost its data (`ivr.recovery`).
- `ivr-redis`: moves spooled journal records to Redis once it answers again, and sweeps callers whose
  heartbeat lapsed out of the hold queues.

Threads do not survive a fork, and gunicorn may build the app before forking its workers, so the threads
start in the process that serves (the first request, or gunicorn's post-worker-init hook): `ensure_started`
is idempotent per process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from redis.exceptions import RedisError

from ivr.services import Services

log = logging.getLogger(__name__)

DATABASE_EVERY_SECONDS = 2.0
REDIS_EVERY_SECONDS = 1.0
SWEEP_LIMIT = 1000


class Background:
    """Starts, once per process, the threads that keep tickets, references and queues in order."""

    def __init__(self, services: Services, *, writer: bool) -> None:
        self._services = services
        self._writer = writer
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def running(self) -> bool:
        """Whether this process's threads are running."""
        return self._pid == os.getpid() and not self._stop.is_set()

    def ensure_started(self) -> None:
        """Start the threads in this process if they are not running yet (cheap when they are)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stop = threading.Event()
            s = self._services
            loops: list[tuple[str, Callable[[], None]]] = [
                ("ivr-database", lambda: self._every(DATABASE_EVERY_SECONDS, self._database_work)),
                ("ivr-redis", lambda: self._every(REDIS_EVERY_SECONDS, self._redis_work)),
            ]
            if self._writer:
                loops.append(("ivr-writer", lambda: s.writer.run(self._stop)))
            self._threads = [threading.Thread(target=f, name=n, daemon=True) for n, f in loops]
            for thread in self._threads:
                thread.start()
            s.rules.start()
            self._pid = os.getpid()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this process's threads (tests, `ivr worker` on a signal)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._services.rules.stop()
        self._pid = None

    def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                work()
            except Exception:  # a bad moment of a store must not end the thread
                log.exception("background work failed; trying again")
            self._stop.wait(seconds)

    def _database_work(self) -> None:
        s = self._services
        state = s.health.probe()
        if state.problem is not None:
            return
        s.references.refill()
        from ivr.recovery import rebuild_if_lost

        rebuild_if_lost(s)

    def _redis_work(self) -> None:
        s = self._services
        try:
            if s.journal.spool.files() and s.queue.ping():
                moved = s.journal.forward_spool()
                if moved:
                    log.info("journal: moved %d spooled records to Redis", moved)
            s.queue.sweep(SWEEP_LIMIT)
        except RedisError:
            return  # still away; the spool keeps the records
