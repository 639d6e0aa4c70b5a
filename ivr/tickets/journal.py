"""The ticket journal: where webhooks put what they learned, for a writer to turn into tickets.

A webhook appends its record to this process's **spool**: one append-only file of JSON lines per
process in `IVR_SPOOL_DIR`, written with a single `write()` before the webhook answers. That takes
microseconds and needs no store at all, and a process killed right after answering (even with SIGKILL)
loses nothing: the bytes are the kernel's. A thread of the process (`ivr-journal`) ships the spool to a
**Redis stream** every `SHIP_EVERY_SECONDS` (0.1 s), in one round trip for all the records of that moment.

The stream is what writers read: shared by every instance, so any writer on any host drains it; its
consumer group hands each entry to one writer at a time and gives entries a dead writer took to another
(`RECLAIM_AFTER_MS`). With AOF (`appendfsync everysec`, see docs/operators/production.md) Redis keeps
the backlog across its own restarts while PostgreSQL is away. While Redis is unreachable the spool
simply grows; a writer in the same process may write it straight to the database meanwhile.

When a spool write fails (a full disk: ENOSPC, EFBIG, EIO, a write cut short) the bytes it left are cut
off the file again, so the next record starts on a line of its own, and the spool says why it is not
writable (`Spool.problem`, shown on `/healthz` and `/metrics`) until a later write succeeds. The record
goes to the Redis stream instead; when Redis cannot take it either, the `Journal` holds it in memory
(at most `memory_records`, in order) and the shipping thread writes what it holds to whichever of the
two takes it first, every round. Only a record that finds that memory full is given up to the log, as a
`JOURNAL-LOST <json>` line that `ivr journal replay` puts back into the journal.

A process holds an exclusive `flock` on its own spool file while it writes to it; any process that can
take the lock of another's file knows it is sealed or its owner is gone, and may ship or drain it. A
record is applied once however often it is delivered (its id is the `ticket_changes` key), so
at-least-once delivery everywhere is enough. The one thing a record can be lost to is the machine itself
dying in the moment between the webhook's answer and the next shipping round.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import stat
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import redis
from redis.exceptions import RedisError, ResponseError

from ivr.config import MEMORY_RECORDS
from ivr.tickets.records import READS_UP_TO, BadRecord, JournalRecord, NewerRecord

# The name JOURNAL-LOST lines and the journal's warnings have always been logged under (log filters,
# alerts and `ivr journal replay` users match it), kept when the module moved into `ivr.tickets`.
log = logging.getLogger("ivr.journal")

STREAM_KEY: Final = "ivr:{journal}"
"""One entry per record, deleted once a writer applied it: its length is the backlog. The hash
tag `{journal}` keeps it in one Redis Cluster slot with `REJECTED_KEY` (`reject` is a MULTI)."""
REJECTED_KEY: Final = "ivr:{journal}:rejected"
"""Entries no writer can apply (unreadable, or refused by the database), kept for an operator."""
NEWER_KEY: Final = "ivr:{journal}:v%d"
"""Records waiting for a process that reads this version (`newer_key`): a newer release wrote them
and an older writer met them (docs/operators/upgrading.md). Same hash tag: `hold` is a MULTI."""
NEWER_VERSIONS_KEY: Final = "ivr:{journal}:versions"
"""The set of versions that have a `NEWER_KEY` stream, for `/healthz` and `/metrics`."""
LEGACY_KEYS: Final = (("ivr:journal", STREAM_KEY), ("ivr:journal:rejected", REJECTED_KEY))
"""The names before Redis Cluster support, and the new ones their entries move to."""
LEGACY_BATCH: Final = 500
GROUP: Final = "ivr-writers"
RECLAIM_AFTER_MS: Final = 30_000
"""A delivered entry not acknowledged for this long is taken over by another writer."""
SHIP_EVERY_SECONDS: Final = 0.1
"""How often a process ships its spool to the stream (the longest a record waits on local disk)."""
_FIELD: Final = "r"
_SPOOL_SUFFIX: Final = ".jsonl"
_OPENING_SUFFIX: Final = ".opening"
_REJECTED_SPOOL: Final = "rejected.txt"
_PROBE_BYTES: Final = 4096
"""What a spool whose last write failed writes (and cuts off again) to find out whether the disk
takes writes again: a block's worth, as a record may need a new block."""
LOST_MARK: Final = "JOURNAL-LOST"
"""Precedes the record's JSON in the log line of a record nothing could keep (`ivr journal replay`)."""

Where = Literal["stream", "spool", "held", "lost"]


@dataclass(frozen=True)
class Delivery:
    """A journal entry handed to a writer: its record, or why it cannot be read."""

    source: str
    """"stream" or the spool file's path."""
    entry_id: str
    """The stream entry id, or the line number in the spool file."""
    line: str
    record: JournalRecord | None
    problem: str | None = None
    newer: int | None = None
    """The version a process must read to take the record, when a newer release wrote it."""


@dataclass(frozen=True)
class Backlog:
    """What is waiting to be written, for `/healthz`."""

    stream: int | None
    """Entries in the stream (None: Redis unreachable)."""
    oldest_at: datetime | None
    """When the oldest waiting stream entry was added."""
    spool_files: int
    spool_bytes: int
    rejected: int | None
    held: int = 0
    """Records held in this process's memory, neither the spool nor Redis having taken them yet."""
    newer: Mapping[int, int] | None = None
    """Records waiting for a newer release, by the version it must read (None: Redis unreachable)."""


class JournalStream:
    """The Redis side of the journal: append, read as a consumer group member, acknowledge."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._legacy_checked = False

    def add(self, line: str) -> None:
        """Append one record line; raises RedisError when Redis cannot take it."""
        self._client.xadd(STREAM_KEY, {_FIELD: line})

    def add_many(self, lines: list[str]) -> None:
        """Append several record lines in one round trip (not atomic: a retry may repeat some)."""
        with self._client.pipeline(transaction=False) as pipe:
            for line in lines:
                pipe.xadd(STREAM_KEY, {_FIELD: line})
            pipe.execute()

    def read(
        self, consumer: str, count: int, *, own_pending: bool = True, reclaim: bool = True
    ) -> list[Delivery]:
        """Entries for this consumer: with `own_pending`, first its own unacknowledged ones (a batch
        that failed); with `reclaim`, those a dead writer left unacknowledged; then new ones."""
        self._adopt_legacy()
        try:
            return self._read(consumer, count, own_pending, reclaim)
        except ResponseError as exc:
            # No group yet (a new or emptied Redis); fakeredis words it as a missing key.
            if "NOGROUP" not in str(exc) and "key to exist" not in str(exc):
                raise
            self._ensure_group()
            return self._read(consumer, count, own_pending, reclaim)

    def _read(self, consumer: str, count: int, own_pending: bool, reclaim: bool) -> list[Delivery]:
        entries = self._group_read(consumer, "0", count) if own_pending else []
        if not entries and reclaim:
            stale: Any = self._client.xautoclaim(
                STREAM_KEY, GROUP, consumer, RECLAIM_AFTER_MS, "0-0", count=count
            )
            entries = list(stale[1]) if stale else []
        if not entries:
            entries = self._group_read(consumer, ">", count)
        return [_delivery("stream", _text(entry_id), fields) for entry_id, fields in entries]

    def _group_read(self, consumer: str, start: str, count: int) -> list[Any]:
        # start "0": this consumer's delivered-but-unacknowledged entries; ">": never delivered.
        reply: Any = self._client.xreadgroup(GROUP, consumer, {STREAM_KEY: start}, count=count)
        entries: list[Any] = []
        for _stream, items in reply or ():
            entries.extend(item for item in items if item[1])  # a deleted entry comes back empty
        return entries

    def _ensure_group(self) -> None:
        try:
            self._client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _adopt_legacy(self) -> None:
        """Move the entries of a stream left under its old name (a single Redis, before an
        upgrade) to the new one, so no record is lost; once per process. Writers apply a record
        once whatever the entry, so an entry copied twice by two processes is still one record."""
        if self._legacy_checked:
            return
        for old, new in LEGACY_KEYS:
            if not self._client.exists(old):
                continue
            while True:
                entries: list[Any] = list(
                    self._client.xrange(old, "-", "+", count=LEGACY_BATCH) or []
                )
                if not entries:
                    break
                with self._client.pipeline(transaction=False) as pipe:
                    for _entry_id, fields in entries:
                        pipe.xadd(new, fields)
                    pipe.execute()
                self._client.xdel(old, *[_text(entry_id) for entry_id, _ in entries])
            self._client.delete(old)
            log.warning("journal: moved the entries of %s to %s (Redis Cluster layout)", old, new)
        self._legacy_checked = True

    def ack(self, entry_ids: list[str]) -> None:
        """Forget entries a writer applied; atomic (MULTI: XACK and XDEL)."""
        if not entry_ids:
            return
        with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM_KEY, GROUP, *entry_ids)
            pipe.xdel(STREAM_KEY, *entry_ids)
            pipe.execute()

    def reject(self, delivery: Delivery, reason: str) -> None:
        """Set an entry aside for an operator and forget it; atomic (MULTI)."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(REJECTED_KEY, {_FIELD: delivery.line, "reason": reason})
            pipe.xack(STREAM_KEY, GROUP, delivery.entry_id)
            pipe.xdel(STREAM_KEY, delivery.entry_id)
            pipe.execute()

    def hold(self, delivery: Delivery, version: int) -> None:
        """Leave an entry a newer release wrote for a process that reads `version`: moved to that
        version's stream and forgotten here; atomic (MULTI)."""
        with self._client.pipeline(transaction=True) as pipe:
            self._hold_in(pipe, delivery.line, version)
            pipe.xack(STREAM_KEY, GROUP, delivery.entry_id)
            pipe.xdel(STREAM_KEY, delivery.entry_id)
            pipe.execute()

    def hold_lines(self, lines: Sequence[tuple[str, int]]) -> None:
        """Leave (line, version) pairs for newer processes (spool lines); one round trip."""
        with self._client.pipeline(transaction=True) as pipe:
            for line, version in lines:
                self._hold_in(pipe, line, version)
            pipe.execute()

    @staticmethod
    def _hold_in(pipe: Any, line: str, version: int) -> None:
        pipe.xadd(newer_key(version), {_FIELD: line})
        pipe.sadd(NEWER_VERSIONS_KEY, version)

    def scan(self, key: str, after: str, count: int) -> list[Delivery]:
        """Up to `count` entries of `key` (the rejected stream, a version's stream) after the entry
        id `after` ("0" for the first), parsed as this code reads them."""
        entries: list[Any] = list(self._client.xrange(key, f"({after}", "+", count=count) or [])
        return [_delivery(key, _text(entry_id), fields) for entry_id, fields in entries]

    def move(self, delivery: Delivery, *, newer: int | None = None, reason: str = "") -> None:
        """Take an entry out of the stream `scan` found it in: to the stream of version `newer`,
        else to the rejected stream with the reason; atomic (MULTI)."""
        with self._client.pipeline(transaction=True) as pipe:
            if newer is not None:
                self._hold_in(pipe, delivery.line, newer)
            else:
                pipe.xadd(REJECTED_KEY, {_FIELD: delivery.line, "reason": reason})
            pipe.xdel(delivery.source, delivery.entry_id)
            pipe.execute()

    def forget(self, key: str, entry_ids: Sequence[str]) -> None:
        """Delete entries `scan` found that a writer applied."""
        if entry_ids:
            self._client.xdel(key, *entry_ids)

    def backlog(self) -> tuple[int, datetime | None, int, dict[int, int]]:
        """(waiting entries, when the oldest was added, rejected entries, records waiting for a
        newer release by version, only versions with some): one round trip, and a second only
        while some version stream exists (during or after a rolling upgrade)."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.xlen(STREAM_KEY)
            pipe.xrange(STREAM_KEY, "-", "+", count=1)
            pipe.xlen(REJECTED_KEY)
            pipe.smembers(NEWER_VERSIONS_KEY)
            length, first, rejected, members = pipe.execute()
        oldest = None
        if first:
            ms = int(_text(first[0][0]).split("-")[0])
            oldest = datetime.fromtimestamp(ms / 1000, tz=UTC)
        versions = sorted(int(_text(v)) for v in members or ())
        newer: dict[int, int] = {}
        if versions:
            with self._client.pipeline(transaction=False) as pipe:
                for version in versions:
                    pipe.xlen(newer_key(version))
                lengths = pipe.execute()
            newer = {v: int(n) for v, n in zip(versions, lengths, strict=True) if n}
        return int(length), oldest, int(rejected), newer


class Spool:
    """This process's append-only file of records, and the files dead processes left behind."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._pid = -1
        self._fd: int | None = None
        self._path: Path | None = None
        self._failure: str | None = None
        """Why the last write failed; None once one succeeded (or before the first)."""

    def write(self, line: str) -> None:
        """Append one record line; raises OSError, leaving nothing of it in the file, when the
        disk refuses it."""
        self.write_many([line])

    def write_many(self, lines: Sequence[str]) -> None:
        """Append record lines with one write(): all of them, or none (OSError)."""
        data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode()
        with self._lock:
            try:
                fd = self._own_file()
                before = os.fstat(fd).st_size
                try:
                    _write_all(fd, data)
                except OSError:
                    # A full disk may take part of the bytes: cut them off again, or the next
                    # record would be glued onto them and both be unreadable.
                    self._cut_back(fd, before)
                    raise
            except OSError as exc:
                self._failed(exc)
                raise
            self._succeeded()

    def probe(self) -> bool:
        """Whether the disk takes writes again after a failed one (a block written to this
        process's file and cut off again); True at once when the last write succeeded."""
        if self._failure is None:
            return True
        with self._lock:
            try:
                fd = self._own_file()
                before = os.fstat(fd).st_size
                try:
                    _write_all(fd, b"\n" * _PROBE_BYTES)  # blank lines: readers skip them
                finally:
                    self._cut_back(fd, before)
            except OSError as exc:
                self._failed(exc)
                return False
            self._succeeded()
            return True

    def _cut_back(self, fd: int, size: int) -> None:
        try:
            os.ftruncate(fd, size)
        except OSError:
            # The partial line stays at the end of this file: the next record goes to a new one.
            log.exception("journal: could not cut a failed write off the spool file %s", self._path)
            self._close_locked()

    def _failed(self, exc: OSError) -> None:
        reason = _reason(exc)
        if self._failure is None:
            log.error("journal: the spool cannot take records: %s", reason)
        self._failure = reason

    def _succeeded(self) -> None:
        if self._failure is not None:
            log.warning("journal: the spool takes records again")
        self._failure = None

    def _own_file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            if self._fd is not None:
                # A forked child's copy of its parent's file: the parent still owns it (and its
                # lock, which our copy would keep alive after the parent sealed the file).
                os.close(self._fd)
                self._fd = None
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            path = self.folder / f"{name}{_SPOOL_SUFFIX}"
            opening = self.folder / f"{name}{_OPENING_SUFFIX}"
            # Locked under a name nobody looks for, then renamed: another process must never see
            # (and take, drain and delete) a spool file before its owner holds the lock on it.
            fd = os.open(opening, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(opening, path)  # a full disk may refuse even this
            except OSError:
                os.close(fd)
                opening.unlink(missing_ok=True)
                raise
            self._fd, self._path, self._pid = fd, path, os.getpid()
        return self._fd

    def seal(self) -> Path | None:
        """Close this process's file so that it can be drained; the next write opens a new one.
        The file it closed, if this process had one open."""
        with self._lock:
            path = self._path if self._pid == os.getpid() else None
            self._close_locked()
            return path

    def _close_locked(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)  # releases the lock: the file is now anybody's to drain
        self._fd = self._path = None

    def _after_fork(self) -> None:
        """In a forked child: a lock of its own (another thread of the parent may have held the
        parent's at the fork), and none of the parent's file, which the parent still owns (our
        copy of it would keep its lock alive after the parent sealed it)."""
        self._lock = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._path = None

    def problem(self) -> str | None:
        """Why records cannot be spooled now, in an operator's words (the last write failed, the
        folder cannot be made or written to, the disk is full), or None."""
        if self._failure is not None:
            return self._failure
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not os.access(self.folder, os.W_OK):
                return f"the spool folder {self.folder} is not writable"
            room = os.statvfs(self.folder)
        except OSError as exc:
            return _reason(exc)
        # Seen by every process of the host at once, not only by the one whose write failed.
        root = os.geteuid() == 0  # root may use the blocks a filesystem keeps in reserve
        if (room.f_bfree if root else room.f_bavail) == 0:
            return "no space left on device"
        if room.f_files and (room.f_ffree if root else room.f_favail) == 0:
            return "no free inodes left on device"
        return None

    def writable(self) -> bool:
        """Whether records can be spooled now (see `problem`)."""
        return self.problem() is None

    def files(self) -> list[Path]:
        """Spool files in the folder, oldest first (this process's open file included)."""
        return [path for path, _ in self._listing()]

    def size(self) -> tuple[int, int]:
        """(files, bytes) waiting in the folder."""
        listing = self._listing()
        return len(listing), sum(info.st_size for _, info in listing)

    def _listing(self) -> list[tuple[Path, os.stat_result]]:
        """The spool files with their status, oldest first. Another process may drain and remove
        a file between the listing and its `stat`: it is gone, which is no error."""
        if not self.folder.is_dir():
            return []
        found: list[tuple[Path, os.stat_result]] = []
        for path in list(self.folder.glob(f"*{_SPOOL_SUFFIX}")):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((path, info))
        return sorted(found, key=lambda item: item[1].st_mtime)

    @contextmanager
    def claim(self, path: Path) -> Iterator[list[Delivery] | None]:
        """The records of a spool file nobody holds (None when its owner is alive or it is gone).

        The caller applies them inside the block; `done(path)` removes the file afterwards."""
        if self._path == path and self._pid == os.getpid():
            yield None  # our own open file: `seal` it first
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None  # its owner is alive and still writing to it
                return
            if not _still_named(path, fd):
                yield None  # drained and removed by another process meanwhile
                return
            with os.fdopen(os.dup(fd), "rb") as file:
                data = file.read()
            # Records end at "\n" alone: splitlines() would also cut at a separator a record from
            # an older version may hold raw (U+2028, U+0085, ...).
            lines = data.decode("utf-8", errors="replace").split("\n")
            yield [
                _delivery(str(path), str(number), {_FIELD: line})
                for number, line in enumerate(lines, 1)
                if line.strip()
            ]
        finally:
            os.close(fd)

    def done(self, path: Path) -> None:
        """Remove a drained spool file (call inside `claim`)."""
        path.unlink(missing_ok=True)

    def keep_only(self, path: Path, lines: Sequence[str]) -> None:
        """Replace a claimed spool file by the given lines of it (call inside `claim`): the records
        a newer release must read, while Redis, where they would wait, is away."""
        partial = path.with_suffix(_OPENING_SUFFIX)
        partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.rename(partial, path)

    def reject(self, delivery: Delivery, reason: str) -> None:
        """Keep an unreadable spool line for an operator."""
        with (self.folder / _REJECTED_SPOOL).open("a", encoding="utf-8") as file:
            file.write(f"{reason}\t{delivery.line}\n")


class Journal:
    """Append records (the local spool, shipped to the Redis stream), and hand them to writers."""

    def __init__(
        self, client: redis.Redis, spool_dir: Path | str, *, memory_records: int = MEMORY_RECORDS
    ) -> None:
        self.stream = JournalStream(client)
        self.spool = Spool(spool_dir)
        self.memory_records = memory_records
        """The most records held in memory while neither the spool nor Redis takes them."""
        self._held: deque[str] = deque()
        self._lock = threading.Lock()  # over `_held`; taken before the spool's, never after
        self._lost = 0
        self.on_held: Callable[[int], None] | None = None
        """Called with the number of records held after it changed (the metrics of several processes)."""
        self.on_lost: Callable[[], None] | None = None
        """Called for each record given up to the log."""
        _JOURNALS.add(self)

    def append(self, record: JournalRecord) -> Where:
        """Keep a record before the webhook answers: on local disk, else in Redis, else in memory
        until one of them takes it; in the log (`JOURNAL-LOST`) only when that memory is full."""
        line = record.to_json()
        if not self._held:  # the usual case: nothing waits in memory
            where = self._put([line])
            if where is not None:
                return where
            with self._lock:
                self._held.append(line)
                return self._held_or_lost()
        with self._lock:
            self._held.append(line)  # behind those waiting, which go first
            return self._release() or self._held_or_lost()

    def release(self) -> int:
        """Write the records held in memory to the spool, else Redis (the shipping thread calls
        this every round); how many. With none held, a spool whose last write failed is tried
        again, so that it does not look full for good once the disk has room."""
        if not self._held:
            self.spool.probe()
            return 0
        with self._lock:
            count = len(self._held)
            return count if self._release() else 0

    def held(self) -> int:
        """How many records this process holds in memory."""
        return len(self._held)

    def lost(self) -> int:
        """How many records this process gave up to the log (`JOURNAL-LOST`) since it started."""
        return self._lost

    def _put(self, lines: list[str], spool: bool = True) -> Where | None:
        """The spool (unless told not to try it), else the stream: where the lines went, or None
        if neither took them."""
        if spool:
            try:
                self.spool.write_many(lines)
                return "spool"
            except OSError:
                pass  # the spool logged why, and says it until a write succeeds (`Spool.problem`)
        try:
            self.stream.add_many(lines)
            return "stream"
        except RedisError:
            return None

    def _release(self) -> Where | None:
        # Under `_lock`: every record held so far, in order, in one write (or one round trip).
        # A spool that refused the last write is tried with a block first, not with all of them.
        lines = list(self._held)
        where = self._put(lines, spool=self.spool.probe())
        if where is not None:
            self._held.clear()
            self._held_changed()
            log.warning("journal: the %d records held in memory went to the %s", len(lines), where)
        return where

    def _held_or_lost(self) -> Where:
        # Under `_lock`, the newest record last in `_held`: keep it if there is room.
        if len(self._held) <= self.memory_records:
            if len(self._held) == 1:
                log.error(
                    "journal: neither the spool (%s) nor Redis takes records: holding them in "
                    "memory (up to %d) until one does",
                    self.spool.problem(),
                    self.memory_records,
                )
            self._held_changed()
            return "held"
        line = self._held.pop()
        self._lost += 1
        if self.on_lost is not None:
            self.on_lost()
        # Nowhere left to keep it: the log line is the last copy, in the format the journal reads.
        log.critical("journal: could not keep record; %s %s", LOST_MARK, line)
        return "lost"

    def _held_changed(self) -> None:
        if self.on_held is not None:
            self.on_held(len(self._held))

    def _after_fork(self) -> None:
        """In a forked child: nothing held (the parent holds those records and writes them) and
        locks of its own (another thread may have held the parent's at the fork)."""
        self._lock = threading.Lock()
        self._held = deque()
        self._lost = 0
        self.spool._after_fork()

    def forward_spool(self, limit_files: int = 10) -> int:
        """Ship spooled records to the stream (this process's and any sealed or orphaned file);
        how many. Raises RedisError when Redis cannot take them (they stay on disk)."""
        own = self.spool.seal()
        paths = self.spool.files()
        if own in paths:  # this process's first: it may be about to exit (`hand_over`)
            paths.remove(own)
            paths.insert(0, own)
        moved = 0
        for path in paths[:limit_files]:
            with self.spool.claim(path) as deliveries:
                if deliveries is None:
                    continue
                self.stream.add_many([d.line for d in deliveries])
                self.spool.done(path)
                moved += len(deliveries)
        return moved

    def hand_over(self) -> int:
        """Before this process exits: write what memory holds to the spool (else Redis), then
        seal this process's spool file and ship it, and other sealed ones, to the stream; how
        many records were shipped. Raises RedisError when Redis cannot take them: they stay in
        the sealed file for the next process or `ivr worker`. What neither takes is logged as
        `JOURNAL-LOST` lines (`ivr journal replay`), since the memory holding it is about to go."""
        self.release()
        with self._lock:
            while self._held:
                self._lost += 1
                log.critical(
                    "journal: could not keep record; %s %s", LOST_MARK, self._held.popleft()
                )
            self._held_changed()
        return self.forward_spool()

    def backlog(self) -> Backlog:
        """How much is waiting in the stream, the spool and memory; never raises."""
        files, size = self.spool.size()
        held = self.held()
        try:
            length, oldest, rejected, newer = self.stream.backlog()
        except RedisError:
            return Backlog(None, None, files, size, None, held)
        return Backlog(length, oldest, files, size, rejected, held, newer)


_JOURNALS: weakref.WeakSet[Journal] = weakref.WeakSet()
"""Every journal of this process, for the fork hook."""


def _after_fork_in_child() -> None:
    for journal in list(_JOURNALS):
        journal._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: a write cut short is continued, which either completes it or meets the
    error that cut it (ENOSPC, EFBIG, EIO)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the spool file took no bytes")
        view = view[written:]


def _reason(exc: OSError) -> str:
    """An OSError in an operator's words: "no space left on device"."""
    text = (exc.strerror or str(exc)).strip()
    text = text[:1].lower() + text[1:]
    return f"{text}: {exc.filename}" if exc.filename else text


def _still_named(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def newer_key(version: int) -> str:
    """The stream where records wait for a process that reads `version`."""
    return NEWER_KEY % version


NEWER_READ: Final = tuple(newer_key(v) for v in range(2, READS_UP_TO + 2))
"""The version streams this code's writer reads: up to its own version, and the one above it (a
newer release that wrote a new name without bumping the version may be this one)."""


def _delivery(source: str, entry_id: str, fields: Mapping[Any, Any]) -> Delivery:
    line = next((_text(fields[k]) for k in (_FIELD, _FIELD.encode()) if k in fields), "")
    try:
        return Delivery(source, entry_id, line, JournalRecord.from_json(line))
    except NewerRecord as exc:
        return Delivery(source, entry_id, line, None, str(exc), newer=exc.version)
    except BadRecord as exc:
        return Delivery(source, entry_id, line, None, str(exc))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
