"""The ticket writer: takes journal records (the Redis stream and spool files) to the database in batches.

It runs as a thread of `ivr serve` by default and as `ivr worker` in production; any number of writers
may run at once (the consumer group hands each stream entry to one of them, a spool file is drained by
whoever holds its lock, and applying a record twice is applying it once). While the database is down or
its schema is behind, records wait in the journal and the writer retries with a growing pause; nothing
is acknowledged before it is committed. A record no database will take (unreadable, or refused for its
data) is set aside with the reason instead of blocking the ones behind it, and so is a record new to a
call whose records retention pruned (`ivr.tickets.retention`): its ticket is final.

During a rolling upgrade a writer meets records a newer release wrote that it cannot read: it leaves
them for a newer process (`JournalStream.hold`), and reads those left for a version it reads, along
with the records an older release set aside that it can read now (`_recover`; docs/operators/upgrading.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from ivr.clock import Clock
from ivr.db import Database
from ivr.tickets import writes
from ivr.tickets.journal import NEWER_READ, REJECTED_KEY, Delivery, Journal, newer_key
from ivr.tickets.references import References

# The name the writer's lines have always been logged under (log filters and alerts match it), kept
# when the module moved into `ivr.tickets`.
log = logging.getLogger("ivr.writer")

BATCH_SIZE = 500
LINGER_SECONDS = 0.5
"""After a batch smaller than `BATCH_SIZE`, let the next one gather this long: a batch costs about
the same for 5 records as for 50, so tickets land a fraction of a second later for far less work."""
_IDLE_SECONDS = 0.1
_RECLAIM_EVERY_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = 5.0
_SCHEMA_CHECK_SECONDS = 10.0
RECOVER_EVERY_SECONDS = 10.0
"""How often a writer looks for new entries in the rejected stream and the version streams it reads
(at once again while it finds a whole batch)."""


class StoreUnavailable(Exception):
    """The database cannot take the batch now (down, timing out, schema behind); try again later."""


@dataclass
class WriterStatus:
    """What `/healthz` says about this process's writer."""

    running: bool = False
    last_batch_at: datetime | None = None
    applied: int = 0
    rejected: int = 0
    problem: str | None = None
    """Why the last attempt did not write (the database is down, the schema is behind)."""


class TicketWriter:
    """Drains the journal into tickets: `step` (one batch), `drain` (until empty), `run` (a loop)."""

    def __init__(
        self,
        journal: Journal,
        db: Database,
        references: References,
        clock: Clock,
        *,
        consumer: str,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.journal = journal
        self.db = db
        self.references = references
        self.clock = clock
        self.consumer = consumer
        self.batch_size = batch_size
        self.status = WriterStatus()
        self._schema_ok_until = 0.0
        self._parsed = writes.ParsedRecords()
        self._own_pending = True  # at start, and after a failed batch: read our own first
        self._next_reclaim = 0.0
        self._next_recover = 0.0
        self._recovered_up_to: dict[str, str] = {}
        """Per stream `_recover` reads, the last entry it looked at: this code reads the same
        records for as long as it runs, so an entry it left is not looked at again."""
        self._lock = threading.Lock()  # one batch at a time per writer (inline drains and the loop)

    def step(self) -> int:
        """Apply one batch (spool files first, then the stream); how many records it applied.

        Raises `StoreUnavailable` when the database cannot take them now (they stay in the journal).
        """
        with self._lock:
            try:
                return self._step()
            except StoreUnavailable as exc:
                self.status.problem = str(exc)
                raise

    def _step(self) -> int:
        self._check_schema()
        done = self._drain_spool()
        if done:
            return done
        if time.monotonic() >= self._next_recover:
            done = self._recover()
            if done:
                return done
        reclaim = time.monotonic() >= self._next_reclaim
        try:
            deliveries = self.journal.stream.read(
                self.consumer, self.batch_size, own_pending=self._own_pending, reclaim=reclaim
            )
        except RedisError:
            # The read may have reached Redis and its answer not us: those entries are ours now
            # (pending), so the next read starts with them.
            self._own_pending = True
            # Redis is away: what this process spooled meanwhile is drained straight from disk.
            self.journal.spool.seal()
            return 0
        if reclaim:
            self._next_reclaim = time.monotonic() + _RECLAIM_EVERY_SECONDS
        if not deliveries:
            self._own_pending = False
            return 0
        self._own_pending = True  # until this batch is acknowledged
        applied = self._apply(deliveries)
        try:
            self.journal.stream.ack([d.entry_id for d in deliveries if d.record is not None])
            self._own_pending = False
        except RedisError:
            # Written but not acknowledged: they come back and are applied once more, harmlessly.
            log.warning(
                "ticket writer: could not acknowledge %d journal entries",
                applied,
                exc_info=True,
            )
        return applied

    def drain(self, max_batches: int = 1000) -> int:
        """Apply everything waiting now (bounded), this process's own spool included; how many."""
        self.journal.spool.seal()
        total = 0
        for _ in range(max_batches):
            done = self.step()
            if not done:
                break
            total += done
        return total

    def run(self, stop: threading.Event) -> None:
        """Write until `stop` is set, pausing when idle and backing off while the database is away."""
        self.status.running = True
        backoff = _IDLE_SECONDS
        try:
            while not stop.is_set():
                try:
                    done = self.step()
                    backoff = _IDLE_SECONDS
                    if done >= self.batch_size:
                        continue  # more is waiting: go on at once
                    if done:
                        stop.wait(LINGER_SECONDS)
                        continue
                except StoreUnavailable as exc:
                    self.status.problem = str(exc)
                    backoff = min(_MAX_BACKOFF_SECONDS, backoff * 2)
                except Exception:  # the loop must outlive any one bad moment
                    log.exception("ticket writer: unexpected failure; retrying")
                    backoff = min(_MAX_BACKOFF_SECONDS, backoff * 2)
                stop.wait(backoff)
        finally:
            self.status.running = False

    # --- internals -----------------------------------------------------------------------------

    def _check_schema(self) -> None:
        if time.monotonic() < self._schema_ok_until:
            return
        try:
            problem = self.db.schema().problem()
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database unreachable: {_short(exc)}") from exc
        if problem:
            raise StoreUnavailable(problem)
        self._schema_ok_until = time.monotonic() + _SCHEMA_CHECK_SECONDS

    def _drain_spool(self) -> int:
        spool = self.journal.spool
        for path in spool.files():
            with spool.claim(path) as deliveries:
                if deliveries is None:
                    continue
                newer = [(d.line, d.newer) for d in deliveries if d.newer is not None]
                held = not newer or self._hold_spooled(newer)
                if not held and len(newer) == len(deliveries):
                    continue  # only records for a newer release, and Redis away: they wait here
                for start in range(0, len(deliveries), self.batch_size):
                    self._apply(deliveries[start : start + self.batch_size])
                if held:
                    spool.done(path)
                else:
                    spool.keep_only(path, [line for line, _ in newer])
                return max(1, len(deliveries) - len(newer))  # an empty file is progress too
        return 0

    def _hold_spooled(self, lines: list[tuple[str, int]]) -> bool:
        """Leave spooled records of a newer release in Redis for it; False while Redis is away."""
        try:
            self.journal.stream.hold_lines(lines)
        except RedisError:
            return False
        log.warning("ticket writer: left %d spooled records for a newer release", len(lines))
        return True

    def _recover(self) -> int:
        """Apply a batch of the entries this code reads that wait in the version streams it reads
        or that an older release set aside (`ivr:{journal}:rejected`), and delete them there; what
        it cannot read stays, or moves to where it belongs. How many it applied."""
        applied = 0
        full = False
        try:
            for key in (REJECTED_KEY, *NEWER_READ):
                after = self._recovered_up_to.get(key, "0")
                deliveries = self.journal.stream.scan(key, after, self.batch_size)
                if not deliveries:
                    continue
                full = full or len(deliveries) == self.batch_size
                applied += self._recover_batch(key, deliveries)
                self._recovered_up_to[key] = deliveries[-1].entry_id
        except RedisError:
            log.warning("ticket writer: could not look at the held journal entries", exc_info=True)
        if not full:
            self._next_recover = time.monotonic() + RECOVER_EVERY_SECONDS
        return applied

    def _recover_batch(self, key: str, deliveries: list[Delivery]) -> int:
        applied = self._written([d for d in deliveries if d.record is not None])
        self.journal.stream.forget(key, [d.entry_id for d in applied])
        for delivery in deliveries:
            if delivery.newer is not None:
                if newer_key(delivery.newer) != key:
                    self.journal.stream.move(delivery, newer=delivery.newer)
            elif key == REJECTED_KEY:
                continue  # unreadable, or refused again: it stays where an operator looks
            elif delivery.record is None:
                self.journal.stream.move(delivery, reason=delivery.problem or "unreadable")
            elif delivery not in applied:
                self.journal.stream.move(delivery, reason="refused by the database")
        if applied:
            log.warning("ticket writer: applied %d journal entries held in %s", len(applied), key)
        self.status.applied += len(applied)
        return len(applied)

    def _written(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Write the records (one by one when the batch is refused); those the database took."""
        if not deliveries:
            return []
        try:
            refused = set(self._write(deliveries))
        except (DataError, IntegrityError):
            refused = set()
            for delivery in deliveries:
                try:
                    refused.update(self._write([delivery]))
                except (DataError, IntegrityError):
                    refused.add(delivery.record.id if delivery.record is not None else "")
        return [d for d in deliveries if d.record is not None and d.record.id not in refused]

    def _apply(self, deliveries: list[Delivery]) -> int:
        for delivery in deliveries:
            if delivery.newer is not None and delivery.source == "stream":
                log.warning(
                    "ticket writer: left journal entry %s for a newer release: %s",
                    delivery.entry_id,
                    delivery.problem,
                )
                self.journal.stream.hold(delivery, delivery.newer)
        unreadable = [d for d in deliveries if d.record is None and d.newer is None]
        for delivery in unreadable:
            self._reject(delivery, delivery.problem or "unreadable")
        readable = [d for d in deliveries if d.record is not None]
        if not readable:
            return 0
        refused: set[str] = set()
        try:
            refused.update(self._write(readable))
        except (DataError, IntegrityError) as exc:
            # Something in the batch is refused for its data: find it, write the rest.
            log.warning("ticket writer: batch refused (%s); applying record by record", _short(exc))
            for delivery in readable:
                try:
                    refused.update(self._write([delivery]))
                except (DataError, IntegrityError) as single:
                    self._reject(delivery, _short(single))
        set_aside = [d for d in readable if d.record is not None and d.record.id in refused]
        for delivery in set_aside:
            self._reject(delivery, writes.REFUSED_PRUNED)
        self.status.applied += len(readable) - len(set_aside)
        self.status.last_batch_at = self.clock.now()
        self.status.problem = None
        return len(readable)

    def _write(self, deliveries: list[Delivery]) -> tuple[str, ...]:
        """Apply the records in one transaction; the ids of those refused (`Applied.refused`)."""
        records = [d.record for d in deliveries if d.record is not None]
        try:
            # Every call of the batch may be new and unnumbered: have enough references at hand
            # before the batch's transaction (leasing takes a transaction of its own).
            self.references.refill(needed=len({r.call_sid for r in records}))
            with self.db.sessions() as session:
                applied = writes.apply_records(
                    session, records, new_reference=self._new_reference, parsed=self._parsed
                )
            return applied.refused
        except (DataError, IntegrityError):
            raise
        except SQLAlchemyError as exc:
            self._schema_ok_until = 0.0  # look at the schema again before the next try
            raise StoreUnavailable(f"database unavailable: {_short(exc)}") from exc

    def _new_reference(self) -> str:
        reference = self.references.take()
        if reference is None:  # `_write` leased enough; another thread may have taken them
            raise RuntimeError("no ticket reference at hand")
        return reference

    def _reject(self, delivery: Delivery, reason: str) -> None:
        log.error("ticket writer: set aside journal entry %s: %s", delivery.entry_id, reason)
        self.status.rejected += 1
        if delivery.source == "stream":
            self.journal.stream.reject(delivery, reason)
        else:
            self.journal.spool.reject(delivery, reason)


def _short(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
