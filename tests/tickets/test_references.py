"""Ticket references: unique without a database round trip per call, and short enough to read out."""

from __future__ import annotations

import os
import threading

import pytest

from ivr.tickets.references import BLOCK_SIZE, RESERVE_BLOCKS, References, reference_of


def test_every_serial_number_gets_its_own_seven_digit_reference() -> None:
    references = [reference_of(n) for n in range(300_000)]
    assert len(set(references)) == len(references)
    assert all(len(r) == 7 and r[0] != "0" and r.isdigit() for r in references)


def test_neighbouring_serials_do_not_look_like_neighbours() -> None:
    first, second = int(reference_of(0)), int(reference_of(1))
    assert abs(first - second) > 100_000


def test_past_nine_million_references_grow_a_digit_and_stay_unique() -> None:
    last_short = reference_of(9_000_000 - 1)
    first_long = reference_of(9_000_000)
    assert len(last_short) == 7 and len(first_long) == 8
    around = {reference_of(n) for n in range(8_999_000, 9_001_000)}
    assert len(around) == 2000


def test_negative_serials_are_refused() -> None:
    with pytest.raises(ValueError):
        reference_of(-1)


class Blocks:
    """A lease that counts, like the `reference_blocks` table's ids."""

    def __init__(self) -> None:
        self.leased: list[int] = []
        self.fail = False

    def __call__(self) -> int:
        if self.fail:
            raise ConnectionError("database down")
        self.leased.append(len(self.leased) + 1)
        return self.leased[-1]


def test_references_come_from_leased_blocks_and_none_when_they_run_out() -> None:
    blocks = Blocks()
    references = References(blocks)
    assert references.take() is None  # nothing leased yet: the call goes on without one

    assert references.refill() == RESERVE_BLOCKS
    assert references.at_hand() == RESERVE_BLOCKS * BLOCK_SIZE
    taken = [references.take() for _ in range(RESERVE_BLOCKS * BLOCK_SIZE)]
    assert None not in taken and len(set(taken)) == len(taken)
    assert references.take() is None
    expected = {reference_of(n) for n in range(BLOCK_SIZE, (RESERVE_BLOCKS + 1) * BLOCK_SIZE)}
    assert set(taken) == expected  # blocks 1 and 2


def test_refill_tops_up_only_what_was_used_and_a_failing_lease_keeps_what_is_at_hand() -> None:
    blocks = Blocks()
    references = References(blocks)
    references.refill()
    for _ in range(BLOCK_SIZE + 1):
        references.take()
    assert references.refill() == 1
    blocks.fail = True
    for _ in range(BLOCK_SIZE):
        references.take()
    with pytest.raises(ConnectionError):
        references.refill()
    assert references.take() is not None


def test_threads_taking_at_once_never_share_a_reference() -> None:
    references = References(Blocks())
    references.refill()
    taken: list[str | None] = []
    lock = threading.Lock()

    def take_many() -> None:
        for _ in range(40):
            value = references.take()
            with lock:
                taken.append(value)

    threads = [threading.Thread(target=take_many) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(taken) == 200 and len(set(taken)) == 200


def test_a_forked_process_does_not_reuse_its_parents_blocks() -> None:
    references = References(Blocks())
    references.refill()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it finds at hand is written to the pipe
        os.write(write, str(references.at_hand()).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child_at_hand = int(os.read(read, 32))
    os.close(read)
    assert status == 0
    assert child_at_hand == 0
    assert references.at_hand() == RESERVE_BLOCKS * BLOCK_SIZE
