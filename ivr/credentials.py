"""The agents' PINs: salted argon2 hashes in a file that is never committed, and which PINs are refused.

The rules file names agents, never their secrets. `ivr agents set-pin` writes the PIN file
(`IVR_AGENT_PINS`, JSON: `{"agents": {"emma": "$argon2id$..."}}`) atomically, readable by its owner
only; a running server notices the new file at its next PIN check (by its mtime and inode), so a
PIN set or changed takes effect without a restart.

How guessing is slowed (per source, never per agent; refused while Redis is away) is not decided
here: every PIN check goes through `ivr.throttle`, which owns that policy for every secret.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from contextlib import suppress
from itertools import pairwise
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.hash_file import HashFileError, read_hashes, write_hashes

MIN_PIN_DIGITS: Final = 6
MAX_PIN_DIGITS: Final = 12
_PIN: Final = re.compile(rf"[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}")

log = logging.getLogger(__name__)


def pin_problem(pin: str) -> str | None:
    """Why `pin` may not be an agent's PIN, or None when it may."""
    if not _PIN.fullmatch(pin):
        return f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits (0-9)"
    if any(pin == (pin[:size] * len(pin))[: len(pin)] for size in (1, 2, 3)):
        return "that PIN repeats one to three digits (like 111111 or 121212): it is guessed first"
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    if steps in ({1}, {9}):
        return "that PIN is a run of digits (like 123456 or 654321): it is guessed first"
    return None


class PinFileError(HashFileError):
    """The PIN file exists but is not one this service wrote."""


class PinStore:
    """The agents' PIN hashes in one JSON file; safe to share between threads."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        """Hashes new PINs; a stored hash is verified with the cost it was made with."""
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._hashes: dict[str, str] = {}
        self._dummies: dict[tuple[int, int, int], str] = {}

    def verify(self, agent_id: str, pin: str) -> bool:
        """True when `pin` is the agent's PIN. An agent without one costs a hash all the same, so
        the time taken does not tell which agents have a PIN."""
        if not _PIN.fullmatch(pin):
            return False  # what a PIN looks like is no secret
        hashes = self._current()
        stored = hashes.get(agent_id)
        target = stored or self._dummy(hashes)
        try:
            self._hasher.verify(target, pin)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def has_pin(self, agent_id: str) -> bool:
        """Whether the agent has a PIN (and so can log in)."""
        return agent_id in self._current()

    def agents(self) -> frozenset[str]:
        """The agents with a PIN, as the file says now; `PinFileError` if it is broken."""
        with self._lock:
            return frozenset(self._read())

    def set_pin(self, agent_id: str, pin: str) -> None:
        """Store the agent's new PIN (hashed); ValueError when it may not be a PIN."""
        self.set_pins({agent_id: pin})

    def set_pins(self, pins: Mapping[str, str]) -> None:
        """Store several agents' new PINs in one write; ValueError (nothing stored) for a PIN that
        may not be one."""
        for pin in pins.values():
            problem = pin_problem(pin)
            if problem:
                raise ValueError(problem)
        hashed = {agent_id: self._hasher.hash(pin) for agent_id, pin in pins.items()}
        with self._lock:
            hashes = self._read()
            hashes.update(hashed)
            self._write(hashes)

    def remove(self, agent_id: str) -> bool:
        """Forget the agent's PIN (it can no longer log in); False if it had none."""
        with self._lock:
            hashes = self._read()
            if hashes.pop(agent_id, None) is None:
                return False
            self._write(hashes)
            return True

    def _current(self) -> Mapping[str, str]:
        """The hashes as the file holds them now; the last good ones if it is broken meanwhile."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_ino, info.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._hashes = self._read()
                except PinFileError as exc:
                    log.error("%s; keeping the PINs read before", exc)
            return self._hashes

    def _read(self) -> dict[str, str]:
        try:
            return read_hashes(self.path, "agents", "a PIN file", "ivr agents")
        except HashFileError as exc:
            raise PinFileError(str(exc)) from exc

    def _write(self, hashes: Mapping[str, str]) -> None:
        """Replace the file at once (a reader sees the old one or the new one), owner-only (0600)."""
        write_hashes(self.path, "agents", hashes)

    def _dummy(self, hashes: Mapping[str, str]) -> str:
        """A hash of nothing anybody can type, as costly to verify as the stored ones."""
        params = self._hasher
        for stored in hashes.values():
            with suppress(InvalidHashError):
                params = PasswordHasher.from_parameters(extract_parameters(stored))
                break
        cost = (params.time_cost, params.memory_cost, params.parallelism)
        with self._lock:
            dummy = self._dummies.get(cost)
        if dummy is None:
            dummy = params.hash("not a PIN")
            with self._lock:
                self._dummies[cost] = dummy
        return dummy
