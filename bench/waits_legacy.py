"""The `live` wait estimator as it was before issue 21, kept only so that `python -m bench.waits`
can compare the new estimator with it on the same hold rounds (the load runner computes the
"legacy" estimate of every round with `legacy_estimate`). Nothing in the service uses it.

`live_estimate`, `_talks`, `_residual` and `LineHistory` are copied verbatim from
`git show 9852eb9:ivr/waits.py`; only the type of `history` is loosened (`HistoryLike`), so that
today's `ivr.waits.LineHistory`, whatever fields it gains, can be passed in.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

MIN_DATABASE_TALKS = 10
"""Below this many conversations in the database's history, the Redis list is used instead."""
MAX_STEPS = 5000
"""Bound on the step-by-step walk (a line of thousands ahead is estimated from where it stops)."""


class HistoryLike(Protocol):
    """What the legacy estimator reads of a line's database history."""

    @property
    def talk_seconds(self) -> Sequence[float]: ...

    @property
    def abandon_rate(self) -> float: ...

    def faster_arrivals(self, priority: int) -> float: ...


@dataclass(frozen=True)
class LineHistory:
    """What the database says about one line (`ivr.tickets.events.line_history`), for `live`."""

    talk_seconds: tuple[float, ...] = ()
    """Recent conversations' lengths."""
    abandon_rate: float = 0.0
    """Per second of waiting: abandons / seconds waited by everyone (exponential patience)."""
    arrivals_per_second: dict[int, float] = field(default_factory=dict)
    """By priority: how often callers joined this line at this hour of the day."""

    def faster_arrivals(self, priority: int) -> float:
        """Callers per second who join with a higher priority than `priority` (they go ahead)."""
        return sum(rate for p, rate in self.arrivals_per_second.items() if p > priority)


def live_estimate(
    position: int,
    priority: int,
    agents_available: int,
    busy_seconds: Sequence[float],
    recent_talk_seconds: Sequence[int],
    default_handle_seconds: int,
    history: HistoryLike | None = None,
) -> int | None:
    """The `live` estimator (see the module's docstring): seconds until a caller at `position`
    (1 = next) with `priority` is put through; None when no agent is logged in."""
    if agents_available + len(busy_seconds) <= 0:
        return None
    ahead = float(position - 1)
    if ahead < agents_available:
        return 0
    history = history or LineHistory()
    talks = _talks(history.talk_seconds, recent_talk_seconds, default_handle_seconds)
    mean = sum(talks) / len(talks)
    theta = max(0.0, history.abandon_rate)
    joining = max(0.0, history.faster_arrivals(priority))
    # When each agent is next free: now, or after the rest of the call it is on.
    free = [0.0] * agents_available + [_residual(talks, mean, e) for e in busy_seconds]
    heapq.heapify(free)
    now = 0.0
    for _ in range(MAX_STEPS):
        at = heapq.heappop(free)
        span = at - now
        # Meanwhile some callers ahead give up, and some with a higher priority join ahead.
        ahead = ahead * math.exp(-theta * span) + joining * span
        now = at
        if ahead < 0.5:
            return math.ceil(now)
        ahead -= 1.0
        heapq.heappush(free, at + mean)
    return math.ceil(now)


def _talks(database: Sequence[float], redis: Sequence[int], default: int) -> list[float]:
    if len(database) >= MIN_DATABASE_TALKS:
        return [float(t) for t in database if t > 0] or [float(default)]
    recent = [float(t) for t in redis if t > 0]
    return recent or [float(t) for t in database if t > 0] or [float(default)]


def _residual(talks: Sequence[float], mean: float, elapsed: float) -> float:
    """E[T - e | T > e] over the history; a call longer than any seen is given a quarter mean."""
    longer = [t - elapsed for t in talks if t > elapsed]
    if not longer:
        return max(1.0, mean / 4)
    return sum(longer) / len(longer)


legacy_estimate = live_estimate
"""The name bench.waits compares it under: seconds the pre-issue-21 `live` estimator would tell a
caller at `position` (1 = next) with `priority`; None when no agent is logged in."""
