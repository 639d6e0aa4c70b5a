"""A circuit breaker: after some failures in a row, stop asking a service that is away for a while.

Used in front of Redis (`ivr.queue.guard`, which opens on the first failure) and in front of the
exchange's back office (`ivr.exchange.client`, which waits for a few): a webhook that would wait out
a deadline on every request to a frozen service answers at once instead while the breaker is open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Breaker:
    """Opens after `threshold` failures in a row, stays open `cooldown` seconds, closes on the next
    success. Once the cooldown is over, requests are let through again: one more failure reopens it
    at once (the count of failures in a row is still at the threshold)."""

    def __init__(
        self,
        cooldown: float,
        threshold: int = 1,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown = cooldown
        self.threshold = threshold
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._failures = 0

    def failed(self) -> None:
        """One more failure in a row; opens the breaker at the threshold."""
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = self._monotonic() + self.cooldown

    def succeeded(self) -> None:
        """The service answered: close, and start counting failures afresh."""
        if self._failures or self._open_until:
            with self._lock:
                self._failures = 0
                self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._monotonic() < self._open_until

    @property
    def failures(self) -> int:
        """Failures in a row since the last success."""
        return self._failures

    def seconds_open(self) -> float:
        """How long the breaker stays open from now (0 when closed)."""
        return max(0.0, self._open_until - self._monotonic())
