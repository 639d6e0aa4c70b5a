"""How long a waiting caller will probably wait, and how to say it so that it holds.

Two estimators, chosen per queue (`wait_estimate` in the rules):

* `formula`, the first one: ceil(position / agents) x average handling time, with the handling time
  the mean of the line's last 50 conversations (or the queue's `default_handle_time`).
* `live` (`live_estimate`), which uses what the line knows now. It is a queue-length-based
  predictor in the sense of Whitt ("Predicting queueing delays", Management Science 45, 1999) and
  Ibrahim and Whitt ("Real-time delay estimation based on delay history", MSOM 11, 2009; "Real-time
  delay estimation in overloaded multiserver queues with abandonments", Management Science 55,
  2009). Their QL_m predictor for the M/M/s+M model gives the caller with n others ahead

      E[W] = sum over i = 0..n of 1 / (s mu + i theta)

  (s agents finishing at rate mu each, each caller ahead giving up at rate theta). We follow the
  same reasoning step by step instead of in closed form, so that it can use more than the rates:

  - the calls in progress and how long each has run: the first agents free up after the
    *residual* of their call, E[T - e | T > e] over the line's handling-time history (Whitt's
    point that the elapsed service times improve the prediction), not after a full mean;
  - the handling-time distribution itself (recent conversations from the database, else the
    line's last 50 in Redis, else `default_handle_time`), not only its mean;
  - abandonment: between two agents freeing up, the callers ahead shrink by exp(-theta dt), with
    theta the maximum-likelihood rate of exponential patience (abandons / total time waited);
  - callers of higher priority likely to arrive and go ahead (the rate at which they joined this
    line at this hour of the day, from the database), which is what makes an estimate given during
    a security emergency grow less surprisingly;
  - the agents' state: available agents take the first callers at once; logged-out agents are not
    counted.

  With no history it falls back to the queue's `default_handle_time` and no abandonment, which is
  the formula's assumption without the rounding up.

How it is said (`wait_speech`): "about N minutes", "less than N minutes", or "between A and B
minutes", where A and B are the estimate times the queue's `wait_range` factors. The factors are
chosen from the measured error (docs/waits.md) so that the range holds for about 80% of callers.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from babel.dates import format_timedelta
from babel.units import format_unit

if TYPE_CHECKING:  # the flow imports this module, and must load no store
    from ivr.queue.history import LineLoad
    from ivr.rules.schema import Queue

MIN_DATABASE_TALKS = 10
"""Below this many conversations in the database's history, the Redis list is used instead."""
NARROWING = 0.25
"""The range said narrows as position ** -NARROWING. Whitt's M/M/s analysis gives 0.5 (the relative
error of the estimate falls as 1 / sqrt(n + 1)); the load scenarios, whose staffing and arrivals
change, show the error falling more slowly, and 0.25 holds about as well at every position
(docs/waits.md)."""
MAX_STEPS = 5000
"""Bound on the step-by-step walk (a line of thousands ahead is estimated from where it stops)."""


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


def estimate_wait(
    position: int,
    agents_available: int,
    agents_busy: int,
    recent_talk_seconds: Sequence[int],
    default_handle_seconds: int,
) -> int | None:
    """The `formula` estimator: seconds a caller at `position` (1 = next) can expect to wait;
    None when no agent is logged in."""
    agents = agents_available + agents_busy
    if agents <= 0:
        return None
    if position <= agents_available:
        return 0
    talks = [t for t in recent_talk_seconds if t > 0]
    handle = sum(talks) / len(talks) if talks else default_handle_seconds
    return math.ceil(math.ceil(position / agents) * handle)


def live_estimate(
    position: int,
    priority: int,
    agents_available: int,
    busy_seconds: Sequence[float],
    recent_talk_seconds: Sequence[int],
    default_handle_seconds: int,
    history: LineHistory | None = None,
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


def line_estimate(
    queue: Queue,
    position: int,
    priority: int,
    load: LineLoad,
    history: LineHistory | None,
) -> int | None:
    """The wait of a caller at `position` with `priority` in a line of `queue`, by the queue's
    `wait_estimate`; None when no agent is logged in."""
    if queue.wait_estimate == "formula":
        return estimate_wait(
            position,
            load.agents_available,
            load.agents_busy,
            load.recent_talk_seconds,
            queue.default_handle_time,
        )
    return live_estimate(
        position,
        priority,
        load.agents_available,
        load.busy_seconds,
        load.recent_talk_seconds,
        queue.default_handle_time,
        history,
    )


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


@dataclass(frozen=True)
class Spoken:
    """What a caller is told: between `low` and `high` minutes (`low` 0: "less than"; equal: "about")."""

    low: int
    high: int


def spoken_wait(
    seconds: int, style: str, factors: tuple[float, float], position: int = 1
) -> Spoken:
    """The minutes to say for an estimate of `seconds` (> 0) in a queue's `wait_speech` style.

    `factors` (the queue's `wait_range`) bracket the estimate of a caller next in line; further
    back the range narrows as position ** -NARROWING, as the relative error of a queue-length-based
    estimate does: a wait of many departures averages out more than a wait of one."""
    if style == "about":
        minutes = spoken_minutes(seconds)
        return Spoken(minutes, minutes)
    spread = max(1, position) ** -NARROWING
    low_factor = 1 - (1 - factors[0]) * spread
    high_factor = 1 + (factors[1] - 1) * spread
    high = max(1, math.ceil(seconds * high_factor / 60))
    if style == "under":
        return Spoken(0, high)
    low = math.floor(seconds * low_factor / 60)
    return Spoken(low if 0 < low < high else 0, high)


def spoken_minutes(seconds: int) -> int:
    """Whole minutes to announce: rounded up, at least one (nobody is promised "zero minutes")."""
    return max(1, math.ceil(seconds / 60))


def say_minutes(minutes: int, locale: str) -> str:
    """ "5 minutes", "5分钟", "5 minutes", "5 Minuten", "4 hours": Babel's words for a duration,
    in minutes below three hours (so that "between 45 and 100 minutes" is not rounded to hours)."""
    if minutes < 180:
        minute_words: str = format_unit(minutes, "duration-minute", length="long", locale=locale)
        return minute_words
    words: str = format_timedelta(
        timedelta(minutes=minutes), threshold=1, format="long", locale=locale
    )
    return words


class LineHistories:
    """The `LineHistory` of every line, kept in memory by the background database thread so that
    no webhook waits on the database for its estimate (`refresh`); empty until the first refresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str], LineHistory] = {}
        self.refreshed_at: float | None = None
        """time.monotonic() of the last refresh."""

    def get(self, queue: str, language: str) -> LineHistory | None:
        with self._lock:
            return self._lines.get((queue, language))

    def replace(self, lines: Mapping[tuple[str, str], LineHistory]) -> None:
        with self._lock:
            self._lines = dict(lines)
            self.refreshed_at = time.monotonic()

    def due(self, every_seconds: float) -> bool:
        """Whether the last refresh is older than `every_seconds` (or there was none)."""
        return self.refreshed_at is None or time.monotonic() - self.refreshed_at >= every_seconds
