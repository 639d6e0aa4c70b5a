"""The work a serving process does beside its requests, in daemon threads, so no request waits for it.

- `ivr-writer`: the ticket writer (`IVR_WRITER=thread`, the default; `off` leaves it to `ivr worker`).
- `ivr-health`: probes the database for `/healthz` every 0.5 s, on a thread of its own: a probe stuck
  in a frozen database shows as "no answer" (`db.DatabaseHealth.latest`) and holds nothing else up.
- `ivr-database`: while the database answers, keeps ticket reference blocks at hand, and rebuilds
  kept callbacks and agent logins in a Redis that lost its data (`ivr.recovery`).
- `ivr-journal`: writes the journal records held in memory (neither the spool nor Redis took them) to
  whichever takes them first, and ships the records this process spooled to the Redis stream, every
  0.1 s.
- `ivr-redis`: sweeps callers whose heartbeat lapsed out of the hold queues, and settles the agents
  of the rules (one left busy by a call whose Dial action and status callback were both lost is
  released once no Twilio call could still be going on; each agent is put in its lines' agent sets):
  all of them in the first round, then `SETTLE_AGENTS_PER_ROUND` a second in turn, so that a
  thousand agents cost each process no more Redis work a second than fifty.
- `ivr-database`, in a process that writes tickets (`IVR_WRITER=thread`, `ivr worker`), also prunes
  every minute the journal records of calls that ended more than `IVR_TICKET_CHANGES_RETENTION_DAYS`
  ago, at most `RETENTION_BATCHES` batches a round (`ivr.tickets.retention`).
- `ivr-database` also reads, every minute, what the database says about each line for the `live`
  wait estimate (`refresh_histories`).
- `ivr-callbacks`: every 30 s, puts the after-hours callback requests that are due in their lines
  once their team opens, and gives up those out of tries (`ivr.callbacks`). Every process runs it;
  a claim in Redis makes each try happen once.

Threads do not survive a fork, and gunicorn may build the app before forking its workers, so the threads
start in the process that serves (the first request, or gunicorn's post-worker-init hook): `ensure_started`
is idempotent per process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from ivr.callbacks import schedule_due
from ivr.db import PROBE_EVERY_SECONDS
from ivr.recovery import rebuild_if_lost
from ivr.services import Services
from ivr.tickets.events import line_histories
from ivr.tickets.journal import SHIP_EVERY_SECONDS
from ivr.tickets.retention import Pruned, cutoff, prune

log = logging.getLogger(__name__)

DATABASE_EVERY_SECONDS = 2.0
REDIS_EVERY_SECONDS = 1.0
CALLBACKS_EVERY_SECONDS = 30.0
HISTORY_EVERY_SECONDS = 60.0
SHIP_RETRY_SECONDS = 1.0
SWEEP_LIMIT = 1000
SETTLE_AGENTS_PER_ROUND = 50
RETENTION_EVERY_SECONDS = 60.0
RETENTION_BATCHES = 10
"""Batches of `retention.BATCH_CALLS` calls a round at most: a backlog (the first run on a database
kept whole so far) is worked off a minute at a time, not in one long burst."""


class Background:
    """Starts, once per process, the threads that keep tickets, references and queues in order."""

    def __init__(self, services: Services, *, writer: bool) -> None:
        self._services = services
        self._writer = writer
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ship_again_at = 0.0
        self._settle_from: int | None = None  # None: settle every agent in the next round
        self._prune_at = 0.0

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
                ("ivr-health", lambda: self._every(PROBE_EVERY_SECONDS, self._probe)),
                ("ivr-database", lambda: self._every(DATABASE_EVERY_SECONDS, self._database_work)),
                ("ivr-journal", lambda: self._every(SHIP_EVERY_SECONDS, self._ship)),
                ("ivr-redis", lambda: self._every(REDIS_EVERY_SECONDS, self._redis_work)),
                ("ivr-callbacks", lambda: self._every(CALLBACKS_EVERY_SECONDS, self._callbacks)),
            ]
            if self._writer:
                loops.append(("ivr-writer", lambda: s.writer.run(self._stop)))
            self._threads = [threading.Thread(target=f, name=n, daemon=True) for n, f in loops]
            for thread in self._threads:
                thread.start()
            s.rules.start()
            self._pid = os.getpid()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this process's threads, waiting `timeout` seconds at most for all of them (the
        writer finishes the batch it is applying: committed whole, or not at all)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %g s", thread.name, timeout)
        self._services.rules.stop()
        self._pid = None

    def finish(self, timeout: float = 5.0) -> None:
        """Before the process exits (gunicorn's `worker_exit`, `ivr worker` on SIGTERM): tell the
        threads to stop, hand the journal over (`Journal.hand_over`: nothing this process spooled
        stays behind unless Redis is away, and then it stays sealed on disk), then wait up to
        `timeout` seconds for the threads (`stop`)."""
        self._stop.set()
        try:
            shipped = self._services.journal.hand_over()
            log.info("journal handed over: %d records shipped to the stream", shipped)
        except RedisError as exc:
            log.warning("journal: Redis is away (%s); the spool keeps the records, sealed", exc)
        self.stop(timeout)

    def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                work()
            except Exception:  # a bad moment of a store must not end the thread
                log.exception("background work failed; trying again")
            self._stop.wait(seconds)

    def _probe(self) -> None:
        self._services.health.probe()

    def _database_work(self) -> None:
        s = self._services
        state = s.health.latest()
        if state.checked_at is None:  # the first round: the health thread may not have asked yet
            state = s.health.probe()
        if state.problem is not None:
            return
        s.references.refill()
        rebuild_if_lost(s)
        if s.switchboard.histories.due(HISTORY_EVERY_SECONDS):
            refresh_histories(s)
        if self._writer and time.monotonic() >= self._prune_at:
            self._prune_at = time.monotonic() + RETENTION_EVERY_SECONDS
            prune_old_changes(s)

    def _callbacks(self) -> None:
        s = self._services
        if s.health.latest().problem is not None:
            return  # the database is away or behind: the next round asks again
        schedule_due(s)

    def _ship(self) -> None:
        s = self._services
        s.journal.release()  # what waits in memory first: it may go to the spool, shipped below
        if time.monotonic() < self._ship_again_at or not s.journal.spool.files():
            return
        try:
            s.journal.forward_spool()
        except RedisError:
            # Away: the spool keeps the records; try again in a moment, not every round.
            self._ship_again_at = time.monotonic() + SHIP_RETRY_SECONDS

    def _redis_work(self) -> None:
        s = self._services
        try:
            s.queue.sweep(SWEEP_LIMIT)
            agents = list(s.rules.get().rules.agents)
            if agents:
                # Reading an agent settles it (see agent_state and index_agent in the scripts).
                chunk, self._settle_from = agents_to_settle(agents, self._settle_from)
                s.queue.agent_statuses(chunk)
        except RedisError:
            return  # away; the next round sweeps


def agents_to_settle(agents: Sequence[str], start: int | None) -> tuple[list[str], int]:
    """The agents a round settles, and where the next round starts: every agent when `start` is
    None (a process may start right after an upgrade that added the per-line agent sets), then
    `SETTLE_AGENTS_PER_ROUND` of the roster in turn, from `start` on, wrapping around."""
    if start is None or len(agents) <= SETTLE_AGENTS_PER_ROUND:
        return list(agents), 0
    start %= len(agents)
    chunk = [agents[(start + i) % len(agents)] for i in range(SETTLE_AGENTS_PER_ROUND)]
    return chunk, (start + SETTLE_AGENTS_PER_ROUND) % len(agents)


def prune_old_changes(s: Services, max_batches: int = RETENTION_BATCHES) -> Pruned:
    """Prune the journal records retention no longer keeps (`IVR_TICKET_CHANGES_RETENTION_DAYS`;
    0 keeps them all), logging what was deleted."""
    days = s.settings.ticket_changes_retention_days
    if not days:
        return Pruned(0, 0)
    now = s.clock.now()
    done = prune(s.db, before=cutoff(now, days), now=now, max_batches=max_batches)
    if done.records:
        log.info(
            "retention: deleted %d journal records of %d calls that ended more than %d days ago",
            done.records,
            done.calls,
            days,
        )
    return done


def refresh_histories(s: Services) -> None:
    """Read every line's history from the database into the switchboard's `LineHistories`."""
    with s.db.sessions() as session:
        s.switchboard.histories.replace(line_histories(session, s.clock.now()))
