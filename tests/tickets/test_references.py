"""Ticket references: unique without a database round trip per call, and short enough to read out."""

from __future__ import annotations

import os
import threading

import pytest

from ivr.tickets.references import (
    BLOCK_SIZE,
    BLOCKS,
    LONGEST,
    RESERVE_BLOCKS,
    SERIALS,
    References,
    ReferencesExhausted,
    outage_reference,
    reference_of,
)


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


def test_serials_outside_the_nine_digit_tiers_are_refused() -> None:
    assert len(reference_of(SERIALS - 1)) == 9
    for serial in (-1, SERIALS):
        with pytest.raises(ValueError):
            reference_of(serial)


def test_outage_references_are_longer_than_any_leased_one_and_never_meet() -> None:
    blocks = [0, 1, 2, 77, 90_000, BLOCKS - 1]
    outage = [outage_reference(b, n) for b in blocks for n in range(2_000)]
    assert len(set(outage)) == len(outage)
    assert all(10 <= len(r) <= LONGEST and r[0] != "0" and r.isdigit() for r in outage)
    assert len(outage_reference(5, 0)) == 10  # the first of an outage: 10 digits
    assert len(reference_of(SERIALS - 1)) < 10  # every leased reference: 9 digits at most


def test_outage_references_grow_a_digit_at_a_time_and_stop_at_the_longest() -> None:
    first_of_eleven = -(-9 * 10**9 // BLOCKS)  # the 10-digit tier holds 9 * 10**9 references
    assert len(outage_reference(0, first_of_eleven - 1)) == 10
    assert len(outage_reference(0, first_of_eleven)) == 11
    tiers = sum(9 * 10 ** (d - 1) for d in range(10, LONGEST + 1))
    last = (tiers - 1) // BLOCKS  # a process can give about 10**9 outage references
    assert last > 10**8
    assert len(outage_reference(0, last)) == LONGEST
    with pytest.raises(ValueError):
        outage_reference(BLOCKS - 1, last + 1)
    for block, number in ((-1, 0), (BLOCKS, 0), (0, -1)):
        with pytest.raises(ValueError):
            outage_reference(block, number)


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


def test_references_come_from_leased_blocks_then_from_the_process_s_own_outage_space() -> None:
    blocks = Blocks()
    references = References(blocks)
    assert references.take() is None  # nothing ever leased: the call goes on without one

    assert references.refill() == RESERVE_BLOCKS
    assert references.at_hand() == RESERVE_BLOCKS * BLOCK_SIZE
    taken = [references.take() for _ in range(RESERVE_BLOCKS * BLOCK_SIZE)]
    expected = {reference_of(n) for n in range(BLOCK_SIZE, (RESERVE_BLOCKS + 1) * BLOCK_SIZE)}
    assert set(taken) == expected  # blocks 1 and 2

    # The database is gone for longer than the blocks last: block 1 names what comes next.
    blocks.fail = True
    outage = [references.take() for _ in range(5_000)]
    assert outage == [outage_reference(1, n) for n in range(5_000)]
    assert references.outage_given() == 5_000 and references.at_hand() == 0
    assert not set(outage) & set(taken)


def test_two_processes_in_one_outage_never_give_the_same_reference() -> None:
    blocks = Blocks()
    first, second = References(blocks), References(blocks)
    first.refill()
    second.refill()
    given = [r.take() for _ in range(3 * RESERVE_BLOCKS * BLOCK_SIZE) for r in (first, second)]
    assert None not in given and len(set(given)) == len(given)


def test_a_block_past_the_last_one_is_refused_with_what_it_means() -> None:
    references = References(lambda: BLOCKS)
    with pytest.raises(ReferencesExhausted, match="new kind of reference"):
        references.refill()
    assert references.take() is None


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


def _in_child(references: References) -> tuple[int, list[str | None]]:
    """Fork; the child reports what it has at hand and its first references after taking them all."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        at_hand = references.at_hand()
        taken = [references.take() for _ in range(at_hand + 3)]
        os.write(write, repr((at_hand, taken)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        reply = pipe.read().decode()
    assert status == 0
    at_hand, taken = eval(reply)  # our own child's repr of an int and a list of strings
    return at_hand, taken


def test_a_worker_forked_in_an_outage_starts_with_a_block_its_parent_set_aside() -> None:
    blocks = Blocks()
    parent = References(blocks)
    parent.refill(needed=3 * BLOCK_SIZE)  # the master leases one block per worker, and its own
    assert blocks.leased == [1, 2, 3]
    blocks.fail = True  # the database goes away before the workers are forked

    children = []
    for _ in range(2):
        assert parent.set_aside_for_child() in (2, 3)
        children.append(_in_child(parent))
    (first_at_hand, first), (second_at_hand, second) = children
    assert first_at_hand == second_at_hand == BLOCK_SIZE
    assert None not in first + second
    assert not set(first) & set(second)  # each its own block, and its own outage references
    # No block is left but the parent's own, which names the parent's outage references: the
    # next worker gets none rather than a copy of it.
    assert parent.set_aside_for_child() is None
    assert _in_child(parent) == (0, [None, None, None])
    assert parent.at_hand() == BLOCK_SIZE
    parents = [parent.take() for _ in range(BLOCK_SIZE + 3)]
    assert not set(parents) & set(first + second)


def test_a_worker_gets_a_new_lease_when_the_parent_has_no_block_to_spare() -> None:
    blocks = Blocks()
    parent = References(blocks)
    assert parent.set_aside_for_child() == 1
    at_hand, taken = _in_child(parent)
    assert at_hand == BLOCK_SIZE
    assert taken[:BLOCK_SIZE] == [reference_of(n) for n in range(BLOCK_SIZE, 2 * BLOCK_SIZE)]
    assert taken[BLOCK_SIZE:] == [outage_reference(1, n) for n in range(3)]
    assert parent.at_hand() == 0 and parent.take() is None  # the parent kept nothing of it
