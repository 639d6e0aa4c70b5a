"""The one source of "now". Production uses the system clock; tests and QA set their own.

Every time the code handles is timezone-aware and in UTC; local time appears only at the edges
(business hours, what the caller hears).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """Starts at a chosen instant and then runs with real time (`IVR_CLOCK`, for QA servers).

    `start` is the time at the real instant `at`, or at the moment the clock is made when `at` is
    None. Processes given the same `start` and `at` keep the same time, whenever each started."""

    def __init__(self, start: datetime, at: datetime | None = None) -> None:
        self._offset = _utc(start) - (datetime.now(UTC) if at is None else _utc(at))

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


class FrozenClock:
    """Stands still until told to move; for tests and the call simulator."""

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = _utc(instant)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("the clock needs an aware datetime (with a UTC offset)")
    return instant.astimezone(UTC)


def epoch_ms(instant: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware instant (how URLs and the queue carry time)."""
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def clock_from(start: datetime | None, at: datetime | None = None) -> Clock:
    """The system clock, or an `OffsetClock` when a start is set (`IVR_CLOCK`)."""
    return SystemClock() if start is None else OffsetClock(start, at)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with an offset or Z, for example 2026-12-25T09:00:00+01:00."""
    instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return _utc(instant)


def wall_now() -> datetime:
    """The machine's real time, never a set clock's: for what other systems stamped with theirs
    (a Redis stream entry's id carries Redis's wall clock, not the service's, possibly QA-shifted,
    one), so ages measured against it stay true whatever `IVR_CLOCK` says."""
    return datetime.now(UTC)
