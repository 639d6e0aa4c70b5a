"""The ticket journal: records reach Redis, or a local spool when Redis is away, and nothing is lost."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ivr.tickets.journal import (
    LEGACY_KEYS,
    LOST_MARK,
    REJECTED_KEY,
    STREAM_KEY,
    Journal,
    JournalStream,
)
from ivr.tickets.records import JournalRecord
from tests.faults import WriteFaults, free_port, wait_until
from tests.support import journal_record

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_client(every_redis: redis.Redis) -> redis.Redis:
    """The stream tests run against one Redis, a real Redis Cluster and a Sentinel setup."""
    return every_redis


def unreachable_redis() -> redis.Redis:
    """A client for a port nobody listens on: every command fails at once."""
    return redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


def test_a_record_is_spooled_at_once_and_shipped_to_the_stream_for_writers(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    journal = Journal(redis_client, tmp_path)
    record = journal_record("CA1", NOW, menu_step="language:2")

    assert journal.append(record) == "spool"  # no store was asked: the webhook answers now
    assert journal.backlog().spool_files == 1
    assert journal.forward_spool() == 1
    assert (journal.backlog().stream, journal.backlog().spool_files) == (1, 0)
    (delivery,) = journal.stream.read("writer-a", 10)
    assert delivery.record == record
    # Until it is acknowledged it stays this writer's (a failed batch is read again) ...
    assert [d.record for d in journal.stream.read("writer-a", 10)] == [record]
    # ... and no other writer gets it meanwhile.
    assert journal.stream.read("writer-b", 10) == []
    journal.stream.ack([delivery.entry_id])
    assert journal.stream.read("writer-a", 10) == []
    assert journal.backlog().stream == 0


def test_when_the_disk_refuses_a_record_it_goes_to_redis(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    journal = Journal(redis_client, blocked / "spool")

    assert journal.append(journal_record("CA1", NOW)) == "stream"
    assert journal.backlog().stream == 1


def test_entries_a_dead_writer_took_are_claimed_by_another(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: object
) -> None:
    import ivr.tickets.journal

    journal = Journal(redis_client, tmp_path)
    journal.append(journal_record("CA1", NOW))
    journal.forward_spool()
    assert len(journal.stream.read("dead-writer", 10)) == 1
    assert journal.stream.read("live-writer", 10) == []

    setattr(ivr.tickets.journal, "RECLAIM_AFTER_MS", 0)  # noqa: B010  (as if 30 s had passed)
    try:
        (claimed,) = journal.stream.read("live-writer", 10)
    finally:
        ivr.tickets.journal.RECLAIM_AFTER_MS = 30_000
    assert claimed.record is not None and claimed.record.call_sid == "CA1"


def test_while_redis_is_away_records_stay_on_disk_and_are_shipped_when_it_is_back(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    away = Journal(unreachable_redis(), tmp_path)
    records = [journal_record("CA1", NOW, menu_step=f"step:{i}") for i in range(3)]

    assert [away.append(r) for r in records] == ["spool", "spool", "spool"]
    with pytest.raises(RedisError):
        away.forward_spool()
    assert away.backlog().stream is None  # Redis unknown
    assert away.backlog().spool_files == 1  # nothing lost

    back = Journal(redis_client, tmp_path)  # another process, once Redis answers
    assert back.forward_spool() == 3
    assert back.backlog().spool_files == 0
    assert [d.record for d in back.stream.read("writer", 10)] == records


def test_a_spool_file_whose_owner_is_alive_is_left_alone(tmp_path: Path) -> None:
    owner = Journal(unreachable_redis(), tmp_path)
    owner.append(journal_record("CA1", NOW))
    (path,) = owner.spool.files()
    other = Journal(unreachable_redis(), tmp_path)

    with other.spool.claim(path) as deliveries:
        assert deliveries is None  # the owner holds its lock
    with owner.spool.claim(path) as deliveries:
        assert deliveries is None  # the owner's own open file: seal it first

    owner.spool.seal()
    with other.spool.claim(path) as deliveries:
        assert deliveries is not None and len(deliveries) == 1
        # While one process drains a file, nobody else can take it.
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked_by_us = False
            except BlockingIOError:
                locked_by_us = True
        finally:
            os.close(fd)
        assert locked_by_us
        other.spool.done(path)
    assert other.spool.files() == []


def test_nobody_sees_a_new_spool_file_before_its_owner_holds_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process scanning the folder at the moment a file is created must not take it:
    # it would drain the empty file and delete it while its owner goes on writing into it.
    owner = Journal(unreachable_redis(), tmp_path)
    other = Journal(unreachable_redis(), tmp_path)
    seen_while_locking: list[list[Path]] = []
    real_flock = fcntl.flock

    def flock_seen_by_others(fd: int, operation: int) -> None:
        seen_while_locking.append(other.spool.files())
        real_flock(fd, operation)

    monkeypatch.setattr("ivr.tickets.journal.fcntl.flock", flock_seen_by_others)
    owner.append(journal_record("CA1", NOW))
    monkeypatch.setattr("ivr.tickets.journal.fcntl.flock", real_flock)

    assert seen_while_locking == [[]]
    (path,) = other.spool.files()
    with other.spool.claim(path) as deliveries:
        assert deliveries is None  # locked by its owner from the start


def test_an_unreadable_spool_line_is_set_aside_with_the_reason(tmp_path: Path) -> None:
    journal = Journal(unreachable_redis(), tmp_path)
    good = journal_record("CA1", NOW)
    path = tmp_path / "host-1-dead.jsonl"
    path.write_text(good.to_json() + "\n" + '{"v": 1, "half a rec\n')

    with journal.spool.claim(path) as deliveries:
        assert deliveries is not None
        assert [d.record for d in deliveries] == [good, None]
        assert deliveries[1].problem
        journal.spool.reject(deliveries[1], deliveries[1].problem or "")
    assert "half a rec" in (tmp_path / "rejected.txt").read_text()


def test_a_rejected_stream_entry_is_kept_for_an_operator(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    journal = Journal(redis_client, tmp_path)
    redis_client.xadd(STREAM_KEY, {"r": "garbage"})
    (delivery,) = journal.stream.read("writer", 10)
    assert delivery.record is None
    journal.stream.reject(delivery, delivery.problem or "?")

    assert journal.backlog().stream == 0
    assert journal.backlog().rejected == 1
    ((_, fields),) = redis_client.xrange(REJECTED_KEY)
    assert fields[b"r"] == b"garbage" and fields[b"reason"]


def test_records_left_in_the_stream_of_before_the_cluster_layout_are_still_written(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    # A single Redis upgraded while records waited under the old name, and a new record
    # shipped under the new name before any writer looked.
    (old_stream, _), (old_rejected, _) = LEGACY_KEYS
    for n in range(3):
        redis_client.xadd(old_stream, {"r": journal_record(f"CAOLD{n}", NOW).to_json()})
    redis_client.xadd(old_rejected, {"r": "garbage", "reason": "unreadable"})
    journal = Journal(redis_client, tmp_path)
    journal.stream.add(journal_record("CANEW", NOW).to_json())

    deliveries = journal.stream.read("writer", 10)

    sids = sorted(d.record.call_sid for d in deliveries if d.record is not None)
    assert sids == ["CANEW", "CAOLD0", "CAOLD1", "CAOLD2"]
    assert journal.backlog().rejected == 1
    assert not redis_client.exists(old_stream) and not redis_client.exists(old_rejected)


def test_when_neither_redis_nor_the_disk_takes_records_they_are_held_in_memory(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    journal = Journal(unreachable_redis(), blocked / "spool")
    records = [journal_record("CA1", NOW, menu_step=f"step:{i}") for i in range(3)]

    assert [journal.append(r) for r in records] == ["held"] * 3
    assert journal.held() == 3 and journal.lost() == 0
    assert journal.release() == 0  # still nowhere to put them: they stay
    assert journal.backlog().held == 3
    assert journal.spool.problem() == f"not a directory: {blocked / 'spool'}"

    journal.spool.folder = tmp_path / "spool"  # the disk takes them again
    assert journal.release() == 3
    assert journal.held() == 0
    assert spooled(journal) == records  # in the order they came


def test_only_a_record_that_finds_the_memory_full_is_logged_whole_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    journal = Journal(unreachable_redis(), blocked / "spool", memory_records=1)
    kept, dropped = (journal_record("CA1", NOW, menu_step=f"step:{i}") for i in range(2))
    with caplog.at_level(logging.CRITICAL, logger="ivr.journal"):
        assert journal.append(kept) == "held"
        assert journal.append(dropped) == "lost"
    assert (journal.held(), journal.lost()) == (1, 1)
    # The log line carries the record in the journal's own format: it can still be replayed.
    (lost,) = [r.getMessage() for r in caplog.records if LOST_MARK in r.getMessage()]
    assert JournalRecord.from_json(lost.split(f"{LOST_MARK} ", 1)[1]) == dropped
    assert not journal.spool.writable()


def spooled(journal: Journal) -> list[JournalRecord | None]:
    """The records of every spool file of the journal's folder (None for an unreadable line)."""
    journal.spool.seal()
    found: list[JournalRecord | None] = []
    for path in journal.spool.files():
        with journal.spool.claim(path) as deliveries:
            assert deliveries is not None
            found.extend(d.record for d in deliveries)
    return found


def test_a_write_the_full_disk_cut_short_leaves_nothing_the_next_record_is_glued_to(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = WriteFaults(monkeypatch, tmp_path)
    journal = Journal(redis_client, tmp_path / "spool")
    before, cut, after = (journal_record("CA1", NOW, menu_step=f"step:{i}") for i in range(3))
    assert journal.append(before) == "spool"

    disk.fill(room=len(cut.to_json()) // 2)  # half of the record fits, then ENOSPC
    assert journal.append(cut) == "stream"  # kept whole in Redis instead
    disk.free()
    assert journal.append(after) == "spool"

    records = spooled(journal)
    assert None not in records  # no line of half a record with the next one glued onto it
    assert records == [before, after]
    assert journal.spool.writable()


def test_a_spool_that_refused_a_write_says_so_until_the_disk_takes_writes_again(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = WriteFaults(monkeypatch, tmp_path)
    journal = Journal(redis_client, tmp_path / "spool")
    assert journal.spool.writable()  # nothing refused yet, and the folder has room

    disk.fill()
    assert journal.append(journal_record("CA1", NOW)) == "stream"  # Redis takes it at once
    assert not journal.spool.writable()
    assert journal.spool.problem() == "no space left on device"
    assert journal.release() == 0  # nothing held; the disk, tried again, still refuses
    assert not journal.spool.writable()

    disk.free()
    journal.release()  # the shipping thread's round: the disk takes writes again
    assert journal.spool.writable()
    assert journal.backlog().spool_bytes == 0  # what the trial wrote was cut off again


def test_records_held_in_memory_go_to_redis_when_it_answers_before_the_disk_has_room(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    WriteFaults(monkeypatch, tmp_path).fill()
    journal = Journal(unreachable_redis(), tmp_path / "spool")
    records = [journal_record("CA1", NOW, menu_step=f"step:{i}") for i in range(3)]
    assert [journal.append(r) for r in records] == ["held"] * 3

    journal.stream = JournalStream(redis_client)  # Redis answers again
    assert journal.release() == 3
    assert [d.record for d in journal.stream.read("writer", 10)] == records
    assert journal.held() == 0 and not journal.spool.writable()


def test_a_forked_child_holds_none_of_its_parents_records_and_locks_nothing(tmp_path: Path) -> None:
    # gunicorn forks workers from the process that built the app: what the parent holds is the
    # parent's to write, and a lock another of its threads held at the fork must not be held in
    # the child for good.
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading
        from datetime import UTC, datetime
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from ivr.tickets.journal import Journal
        from ivr.tickets.records import JournalRecord

        now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        dead = Redis(port={free_port()}, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        journal = Journal(dead, {str(tmp_path / "file" / "spool")!r})
        assert journal.append(JournalRecord(id="parent", call_sid="CA1", at=now)) == "held"
        journal._lock.acquire()  # another thread is inside `append` at the moment of the fork
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a lock copied held would hang the child: die instead
            held_at_start = journal.held()
            where = journal.append(JournalRecord(id="child", call_sid="CA2", at=now))
            os._exit(0 if (held_at_start, where, journal.held()) == (0, "held", 1) else 3)
        journal._lock.release()
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), journal.held())
        """
    )
    (tmp_path / "file").write_text("")  # the spool folder cannot be made: records are held
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1"]  # the child did well; the parent still holds its own


def test_a_spool_file_drained_by_another_process_while_it_is_listed_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(unreachable_redis(), tmp_path)
    for name in ("a", "b", "c"):
        (tmp_path / f"host-1-{name}.jsonl").write_text(journal_record("CA1", NOW).to_json() + "\n")
    listed = Path.glob

    def drained_meanwhile(folder: Path, pattern: str) -> Iterator[Path]:
        # Another process drains "a" as the listing reaches it, and "b" right after.
        for path in listed(folder, pattern):
            if path.name == "host-1-a.jsonl":
                path.unlink()
            yield path
            if path.name == "host-1-b.jsonl":
                path.unlink()

    monkeypatch.setattr(Path, "glob", drained_meanwhile)
    assert [p.name for p in journal.spool.files()] == ["host-1-c.jsonl"]
    assert journal.backlog().spool_files == 1


def test_a_process_killed_right_after_answering_loses_no_spooled_record(tmp_path: Path) -> None:
    # A child process spools records with Redis away and reports each one after `append`
    # returned (the moment a webhook would answer); it is killed with SIGKILL mid-stream.
    script = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from ivr.tickets.journal import Journal
        from ivr.tickets.changes import TicketChange
        from ivr.tickets.records import JournalRecord

        now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        dead = Redis(port={free_port()}, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        journal = Journal(dead, {str(tmp_path)!r})
        for i in range(100000):
            record = JournalRecord(id=f"r{{i}}", call_sid="CA1", at=now,
                                   change=TicketChange(menu_step=f"step:{{i}}"))
            assert journal.append(record) == "spool"
            print(i, flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    answered = -1
    try:
        for line in child.stdout:
            answered = int(line)
            if answered >= 50:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        for line in child.stdout:  # what it answered before the kill landed
            answered = int(line)
    finally:
        if child.poll() is None:
            child.kill()
    assert answered >= 50

    reader = Journal(unreachable_redis(), tmp_path)
    (path,) = wait_until(reader.spool.files, timeout=5)
    with reader.spool.claim(path) as deliveries:  # the dead child's lock is gone with it
        assert deliveries is not None
        steps = [d.record.change.menu_step for d in deliveries if d.record is not None]
    assert steps[: answered + 1] == [f"step:{i}" for i in range(answered + 1)]


def test_a_record_holding_a_line_separator_is_one_record_in_the_spool(tmp_path: Path) -> None:
    journal = Journal(unreachable_redis(), tmp_path)
    record = journal_record("CA1", NOW, caller="+1415\u2028555\u0085\x00")
    assert "\u2028" not in record.to_json() and record.to_json().isascii()
    journal.append(record)
    # A line an older version wrote, with the separators raw in it, reads back whole too.
    raw = record.to_json().replace("\\u2028", "\u2028").replace("\\u0085", "\u0085")
    journal.spool.write(raw.replace('"test-', '"raw-'))
    journal.spool.seal()
    [path] = journal.spool.files()
    with journal.spool.claim(path) as deliveries:
        assert deliveries is not None
        assert [d.record.caller if d.record else d.problem for d in deliveries] == [
            "+1415\u2028555\u0085\x00"
        ] * 2
