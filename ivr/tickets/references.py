"""Ticket references: short numbers a caller can note down, unique without asking a database per call.

Each process leases blocks of `BLOCK_SIZE` consecutive serial numbers from the database (one row of
`reference_blocks` per block: the row id is the block number, so two processes never get the same
block) and hands them out from memory. A caller therefore gets a reference from the very first webhook,
even while the database is down, as long as the process holds a block; it keeps `RESERVE_BLOCKS` at hand
and a background thread tops them up. Serial numbers are spread over the 7-digit space by a fixed
permutation, so consecutive callers get unrelated-looking references ("4821093", "1377580").
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

BLOCK_SIZE = 100
"""Serial numbers per leased block. Fixed forever: block b covers b*BLOCK_SIZE .. b*BLOCK_SIZE+99."""
RESERVE_BLOCKS = 2
"""Blocks a process keeps at hand: a database outage can last this many blocks' worth of new calls."""

_FIRST_DIGITS = 7
# A multiplier coprime with every tier size 9 * 10**(d - 1) (not divisible by 2, 3 or 5) makes
# n -> n * _SPREAD mod size a bijection: unique serials give unique references.
_SPREAD = 7_654_321 * 1_000_003  # 7654321 = 19 x 402859, 1000003 is prime; neither has 2, 3 or 5
_OFFSET = 4_271_093


def reference_of(serial: int) -> str:
    """The reference of a serial number: 7 digits not starting with 0 (8 digits after 9 million, ...)."""
    if serial < 0:
        raise ValueError("serial numbers start at 0")
    digits = _FIRST_DIGITS
    size = 9 * 10 ** (digits - 1)
    while serial >= size:
        serial -= size
        digits += 1
        size = 9 * 10 ** (digits - 1)
    return str(10 ** (digits - 1) + (serial * _SPREAD + _OFFSET) % size)


class References:
    """References from leased blocks; `take` never waits, `refill` (background) leases more."""

    def __init__(self, lease_block: Callable[[], int]) -> None:
        self._lease_block = lease_block
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._serials: deque[range] = deque()

    def take(self) -> str | None:
        """A new reference, or None when no leased number is left (the database was out of reach)."""
        with self._lock:
            self._forget_after_fork()
            while self._serials:
                block = self._serials[0]
                if block:
                    self._serials[0] = block[1:]
                    return reference_of(block[0])
                self._serials.popleft()
            return None

    def at_hand(self) -> int:
        """How many references this process can still give without the database."""
        with self._lock:
            self._forget_after_fork()
            return sum(len(block) for block in self._serials)

    def refill(self, needed: int = 0) -> int:
        """Lease blocks until `RESERVE_BLOCKS` (and at least `needed` references) are at hand; how
        many blocks. Raises what the lease raises."""
        leased = 0
        while self.at_hand() <= (RESERVE_BLOCKS - 1) * BLOCK_SIZE or self.at_hand() < needed:
            block = self._lease_block()  # outside the lock: a slow database must not stop `take`
            with self._lock:
                self._forget_after_fork()
                self._serials.append(range(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE))
            leased += 1
        return leased

    def _forget_after_fork(self) -> None:
        # A forked worker inherits its parent's blocks; both handing them out would duplicate
        # references, so the child starts empty and leases its own.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._serials.clear()
