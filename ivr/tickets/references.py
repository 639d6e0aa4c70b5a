"""Ticket references: short numbers a caller can note down, unique however long a database outage lasts.

Each process leases blocks of `BLOCK_SIZE` consecutive serial numbers from the database (one row of
`reference_blocks` per block: the row id is the block number, so two processes never get the same
block) and hands them out from memory. A caller therefore gets a reference from the very first webhook,
even while the database is down; the process keeps `RESERVE_BLOCKS` at hand and a background thread
tops them up. Serial numbers are spread over the 7-digit space by a fixed permutation, so consecutive
callers get unrelated-looking references ("4821093", "1377580").

When a long outage has used up every leased number, the process goes on without the database: a
block it leased is its own forever, so the block's number can name the process, and the k-th
**outage reference** of the process that owns block b is made from (k, b). Outage references are 10
to 16 digits long, leased ones 7 to 9, so the two kinds never meet; two processes never own the same
block, so their outage references never meet either. A process needs one leased block to have them:
`ivr serve` leases one for each gunicorn worker before forking it (`set_aside_for_child`), so a
worker forked during an outage has one too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

BLOCK_SIZE: Final = 100
"""Serial numbers per leased block. Fixed forever: block b covers b*BLOCK_SIZE .. b*BLOCK_SIZE+99."""
RESERVE_BLOCKS: Final = 2
"""Blocks a process keeps at hand; after them, an outage goes on with outage references."""

_FIRST_DIGITS: Final = 7
_OUTAGE_FIRST_DIGITS: Final = 10
LONGEST: Final = 16
"""Digits of the longest reference (the `tickets.reference` column holds this many)."""
SERIALS: Final = sum(9 * 10 ** (d - 1) for d in range(_FIRST_DIGITS, _OUTAGE_FIRST_DIGITS))
"""Serial numbers with a leased reference (7 to 9 digits): 999 million."""
BLOCKS: Final = SERIALS // BLOCK_SIZE
"""Blocks a database can lease; a block number at or past this is refused."""
# A multiplier coprime with every tier size 9 * 10**(d - 1) (not divisible by 2, 3 or 5) makes
# n -> n * _SPREAD mod size a bijection: unique serials give unique references.
_SPREAD: Final = (
    7_654_321 * 1_000_003
)  # 7654321 = 19 x 402859, 1000003 is prime; neither has 2, 3 or 5
_OFFSET: Final = 4_271_093


class ReferencesExhausted(RuntimeError):
    """The database leased a block past the last one references have room for."""


def reference_of(serial: int) -> str:
    """The reference of a serial number: 7 digits not starting with 0 (8 after 9 million, 9 after
    99 million); raises ValueError outside 0 .. SERIALS - 1."""
    if not 0 <= serial < SERIALS:
        raise ValueError(f"serial numbers run from 0 to {SERIALS - 1}, not {serial}")
    return _spread(serial, _FIRST_DIGITS)


def outage_reference(block: int, number: int) -> str:
    """The `number`-th outage reference of the process that owns leased `block`: 10 to 16 digits,
    never equal to a leased reference nor to another block's or number's."""
    if not 0 <= block < BLOCKS or number < 0:
        raise ValueError(f"no outage reference for block {block}, number {number}")
    reference = _spread(number * BLOCKS + block, _OUTAGE_FIRST_DIGITS)
    if len(reference) > LONGEST:
        raise ValueError(f"outage reference {number} of block {block} needs over {LONGEST} digits")
    return reference


def _spread(index: int, digits: int) -> str:
    """The index-th number of the tiers of `digits`, `digits + 1`, ... digits (no leading 0),
    permuted within each tier."""
    size = 9 * 10 ** (digits - 1)
    while index >= size:
        index -= size
        digits += 1
        size = 9 * 10 ** (digits - 1)
    return str(10 ** (digits - 1) + (index * _SPREAD + _OFFSET) % size)


class References:
    """References from leased blocks, then outage references; `take` never waits, `refill`
    (background) leases more."""

    def __init__(self, lease_block: Callable[[], int]) -> None:
        self._lease_block = lease_block
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._serials: deque[range] = deque()
        self._owned: int | None = None
        """A block this process leased (or was given at its fork): it names its outage references."""
        self._outage_given = 0
        self._for_child: range | None = None

    def take(self) -> str | None:
        """A new reference: a leased one, else the next outage reference; None only before this
        process ever held a block (it started while the database was out of reach)."""
        with self._lock:
            self._forget_after_fork()
            while self._serials:
                block = self._serials[0]
                if block:
                    self._serials[0] = block[1:]
                    return reference_of(block[0])
                self._serials.popleft()
            if self._owned is None:
                return None
            if self._outage_given == 0:
                log.warning(
                    "no leased ticket reference left (the database is out of reach): giving "
                    "outage references of block %d",
                    self._owned,
                )
            reference = outage_reference(self._owned, self._outage_given)
            self._outage_given += 1
            return reference

    def at_hand(self) -> int:
        """How many leased references this process can still give without the database."""
        with self._lock:
            self._forget_after_fork()
            return sum(len(block) for block in self._serials)

    def outage_given(self) -> int:
        """How many outage references this process has given."""
        with self._lock:
            self._forget_after_fork()
            return self._outage_given

    def refill(self, needed: int = 0) -> int:
        """Lease blocks until `RESERVE_BLOCKS` (and at least `needed` references) are at hand; how
        many blocks. Raises what the lease raises, and `ReferencesExhausted`."""
        leased = 0
        while self.at_hand() <= (RESERVE_BLOCKS - 1) * BLOCK_SIZE or self.at_hand() < needed:
            block = self._leased()  # outside the lock: a slow database must not stop `take`
            with self._lock:
                self._forget_after_fork()
                self._add(range(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE))
            leased += 1
        return leased

    def set_aside_for_child(self) -> int | None:
        """In a parent about to fork (gunicorn's master): set aside a block for the next child to
        start with (one at hand, else a new lease) and say which, or None when there is none. Call it
        before every fork: each child must get its own."""
        with self._lock:
            self._forget_after_fork()
            # Never the block that names this process's own outage references.
            mine = [block for block in self._serials if _block_of(block) == self._owned]
            others = [block for block in self._serials if _block_of(block) != self._owned and block]
            given = others.pop(0) if others else None
            self._serials = deque(mine + others)
        if given is None:
            try:
                number = self._leased()
            except Exception as exc:
                log.warning("no reference block for the next worker (%s)", exc)
                number = None
            if number is not None:
                given = range(number * BLOCK_SIZE, (number + 1) * BLOCK_SIZE)
        with self._lock:
            self._for_child = given
        return None if given is None else _block_of(given)

    def _leased(self) -> int:
        block = self._lease_block()
        if not 0 <= block < BLOCKS:
            raise ReferencesExhausted(
                f"the database leased reference block {block}: references have room for "
                f"{BLOCKS} blocks, and a new kind of reference is needed"
            )
        return block

    def _add(self, serials: range) -> None:
        self._serials.append(serials)
        if self._owned is None:
            self._owned = _block_of(serials)

    def _forget_after_fork(self) -> None:
        # A forked worker inherits its parent's blocks; both handing them out would duplicate
        # references, so the child starts with only the block its parent set aside for it.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._serials.clear()
            self._owned, self._outage_given = None, 0
            if self._for_child is not None:
                self._add(self._for_child)
            self._for_child = None


def _block_of(serials: range) -> int:
    return serials.start // BLOCK_SIZE
