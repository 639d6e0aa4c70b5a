"""How long a waiting caller will probably wait, and how to say it so that it holds.

Two estimators, chosen per queue (`wait_estimate` in the rules):

* `formula`, the first one: ceil(position / agents) x average handling time, with the handling time
  the mean of the line's last 50 conversations (or the queue's `default_handle_time`), said as a
  range of the queue's `wait_range` factors around it.
* `live` (`live_estimate`): the *predictive distribution* of the caller's wait, from what the line
  knows now, and its median and percentiles. The median is the estimate with the least mean absolute
  error, and the 10th to 90th percentiles (the queue's `wait_percentiles`) are the narrowest range
  that holds for 80% of callers. For the textbook models it is the known answer: with every agent
  busy, a caller with k callers ahead waits an Erlang(k + 1, s mu) time (Erlang C), or, when callers
  give up at rate theta, the sum over i = 0..k of Exp(s mu + i theta) (Ibrahim and Whitt's QL
  predictor, "Real-time delay estimation in overloaded multiserver queues with abandonments",
  Management Science 55, 2009). Real lines are not textbook ones, so the distribution is drawn as
  `SAMPLES` possible futures of the line, each played out departure by departure:

  - each agent on a call frees up after the *rest* of its call, drawn from the line's conversations
    that lasted longer than this one has so far (Whitt, "Predicting queueing delays", Management
    Science 45, 1999: the elapsed times improve the prediction); a call longer than nearly any seen
    ends after an exponential rest as long as the longest calls' excess;
  - an agent still putting a caller through frees up after the rest of the connect time and a
    whole conversation; every agent who frees up takes the next caller ahead, for the connect time
    (ringing and the whisper, learnt from the line) and a conversation drawn from the history;
  - between two agents freeing up, each caller ahead gives up with probability 1 - exp(-theta dt)
    (theta: abandons / seconds waited, the maximum-likelihood rate of exponential patience), and
    callers of higher priority join ahead as a Poisson stream at the rate they joined this line at
    this hour (which is what makes an estimate given during a security emergency grow less
    surprisingly);
  - available agents take the first callers at once; logged-out agents are not counted; the caller's
    own wait ends when an agent is free for them and has picked up;
  - the wait told is that of the callers who are answered: a future counts for less by the chance
    exp(-theta w) that a caller as patient as the line's holds on that long (without it, the
    estimate is that of a caller who would never give up, longer than what the answered waited).

  The handling times are the database's recent conversations, else the line's last 50 in Redis;
  with fewer than `MIN_SHAPE_TALKS` of them, only their mean (or the queue's
  `default_handle_time`) is trusted, with exponential conversations around it. The futures use a
  fixed seed: the same line gives the same estimate, and a caller further back is never told a
  shorter wait for the same line.

  A line of many agents costs what a line of 64 does: it plays out fewer futures (`DRAWS` next free
  times drawn at most, `MIN_SAMPLES` futures at least), and in each only the agents who free up first
  (as many as there are callers ahead, plus `SPARE_AGENTS`): the others cannot serve those callers.

How it is said (`spoken_wait`): "about N minutes" (the median), "less than N minutes" (the high
percentile), or "between A and B minutes" (the two percentiles, rounded to the nearest minute).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from babel.dates import format_timedelta
from babel.units import format_unit

if TYPE_CHECKING:  # the flow imports this module, and must load no store
    from numpy.typing import NDArray

    from ivr.queue.history import LineLoad
    from ivr.rules.schema import Queue

MIN_DATABASE_TALKS = 10
"""Below this many conversations in the database's history, the Redis list is used instead."""
MIN_SHAPE_TALKS = 10
"""Below this many conversations, only their mean is trusted (exponential conversations around it)."""
MIN_TAIL = 8
"""The rest of a call is drawn from the conversations that lasted longer, when there are this many;
else from an exponential as long as the longest `MIN_TAIL` calls' excess over the shortest of them."""
SAMPLES = 1000
"""Possible futures drawn per estimate: the median's own error is then about 5% of a one-departure
wait, which costs the mean absolute error under 1% (the error is flat around the median)."""
DRAWS = 64 * SAMPLES
"""Draws of the agents' next free times an estimate makes at most: a line of more than 64 agents
plays out fewer futures (at least `MIN_SAMPLES`), so that a thousand agents cost what 64 do. Its
waits are short and made of many departures, so fewer futures tell them as well."""
MIN_SAMPLES = 64
SEED = 2009
"""Every estimate draws from the same seed, so the same line state always gives the same answer."""
MAX_STEPS = 2000
"""Departures played out per future; a caller further back is estimated from where the walk stops,
at the line's mean pace."""
SPARE_AGENTS = 32
"""Agents kept in the walk beyond those whose departures a caller's wait needs (callers ahead and
joining ahead, and the caller): a line of a thousand agents is played out as a few dozen, the ones
that free up first in each future. Urgent callers joining at random may need more departures than
that; those come from the agents kept, played on (later than they could be: rare, and on the long
side)."""
NARROWING = 0.25
"""`formula` only: its range narrows as position ** -NARROWING (docs/qa/waits.md)."""


@dataclass(frozen=True)
class LineHistory:
    """What the database says about one line (`ivr.tickets.events.line_history`), for `live`."""

    talk_seconds: tuple[float, ...] = ()
    """Recent conversations' lengths."""
    abandon_rate: float = 0.0
    """Per second of waiting: abandons / seconds waited by everyone (exponential patience)."""
    arrivals_per_second: dict[int, float] = field(default_factory=dict)
    """By priority: how often callers joined this line lately (the last hour), or at this hour of
    the day, whichever is higher."""
    usual_arrivals_per_second: dict[int, float] = field(default_factory=dict)
    """By priority: how often callers joined this line at this hour of the day (the last week)."""

    def faster_arrivals(self, priority: int) -> float:
        """Callers per second who join with a higher priority than `priority` (they go ahead)."""
        return sum(rate for p, rate in self.arrivals_per_second.items() if p > priority)


@dataclass(frozen=True)
class WaitEstimate:
    """What a holding caller can expect, in seconds: the `median` of their predicted wait, and the
    range between the low and high percentiles the queue asks for (`wait_percentiles`)."""

    median: int
    low: int
    high: int


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


def formula_estimate(seconds: int, factors: tuple[float, float], position: int = 1) -> WaitEstimate:
    """`formula`'s estimate of `seconds` with its range: the queue's `wait_range` factors for a
    caller next in line, narrowing further back as position ** -NARROWING (a wait of many
    departures averages out more than a wait of one)."""
    spread = max(1, position) ** -NARROWING
    low = seconds * (1 - (1 - factors[0]) * spread)
    high = seconds * (1 + (factors[1] - 1) * spread)
    return WaitEstimate(seconds, math.floor(low), math.ceil(high))


def live_estimate(
    position: int,
    priority: int,
    agents_available: int,
    busy_seconds: Sequence[float],
    recent_talk_seconds: Sequence[int],
    default_handle_seconds: int,
    history: LineHistory | None = None,
    *,
    connecting_seconds: Sequence[float] = (),
    recent_connect_seconds: Sequence[int] = (),
    percentiles: tuple[int, int] = (10, 90),
    waiting_elsewhere: Sequence[tuple[int, float]] = (),
) -> WaitEstimate | None:
    """The `live` estimator (see the module's docstring): the median and `percentiles` of the
    seconds until a caller at `position` (1 = next) with `priority` is talking to an agent; None
    when no agent is logged in.

    `busy_seconds`: how long each busy agent has been talking (0 while putting a caller through);
    `connecting_seconds`: for each agent still putting a caller through, the seconds since it was
    handed the caller; `recent_connect_seconds`: how long putting a caller through took lately;
    `waiting_elsewhere`: (callers, share) of the other lines our agents serve, the callers an agent
    would take before ours and the share of that line's agents that are ours."""
    agents = agents_available + len(busy_seconds)
    if agents <= 0:
        return None
    ahead = position - 1
    if ahead < agents_available:
        return WaitEstimate(0, 0, 0)
    history = history or LineHistory()
    lengths = _talks(history.talk_seconds, recent_talk_seconds, default_handle_seconds)
    connects = [float(c) for c in recent_connect_seconds if c >= 0]
    futures = _Futures(
        np.sort(np.asarray(lengths, dtype=float)),
        sum(connects) / len(connects) if connects else 0.0,
        max(MIN_SAMPLES, min(SAMPLES, DRAWS // agents)),
    )
    connecting = list(connecting_seconds)[: sum(1 for e in busy_seconds if e <= 0)]
    talking = sorted(busy_seconds, reverse=True)[: len(busy_seconds) - len(connecting)]
    free = np.hstack(
        [
            np.zeros((futures.samples, agents_available)),
            futures.rests_of_calls(np.asarray(talking, dtype=float)),
            np.maximum(0.0, futures.connect - np.asarray(connecting, dtype=float))
            + futures.conversations(columns=len(connecting)),
        ]
    )
    # Only the agents who free up first can serve the callers ahead: in each future, the
    # departures that decide this caller's wait are among the `needed` earliest of them (the
    # callers ahead, those who join ahead, this caller) or come from agents those freed.
    needed = ahead + 1 + sum(c for c, _ in waiting_elsewhere) + SPARE_AGENTS
    if needed < free.shape[1]:
        free = np.partition(free, needed - 1, axis=1)[:, :needed]
    theta = max(0.0, history.abandon_rate)
    waits = futures.wait(free, ahead, theta, history.faster_arrivals(priority), waiting_elsewhere)
    # The wait told is that of the callers who are answered: a future in which this caller, as
    # patient as the line's callers, would have given up first counts for less, by the chance
    # exp(-theta w) that they hold on for w (with exponential patience, the waits of the callers
    # who stay are those of Ibrahim and Whitt's predictor with every stage theta faster).
    weights = np.exp(-theta * (waits - futures.connect)) if theta > 0 else None
    low, middle, high = _quantiles(
        waits, weights, (percentiles[0] / 100, 0.5, percentiles[1] / 100)
    )
    return WaitEstimate(round(middle), round(low), round(high))


def _quantiles(
    values: NDArray[np.float64], weights: NDArray[np.float64] | None, qs: tuple[float, ...]
) -> tuple[float, ...]:
    """The `qs` quantiles of `values`, each counted by its weight (None: equally)."""
    if weights is None:
        return tuple(float(v) for v in np.quantile(values, qs))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    at = np.searchsorted(cumulative, qs, side="left")
    return tuple(float(values[order][min(i, len(values) - 1)]) for i in at)


class _Futures:
    """Possible futures of one line: conversations drawn from its history, played out."""

    def __init__(self, lengths: NDArray[np.float64], connect: float, samples: int) -> None:
        self.samples = samples
        """How many futures."""
        self.lengths = lengths
        """The conversations' lengths, sorted."""
        self.mean = float(lengths.mean())
        self.connect = connect
        self.shaped = len(lengths) >= MIN_SHAPE_TALKS
        """Whether the history is long enough for its shape to be trusted, not only its mean."""
        seeds = np.random.SeedSequence(SEED).spawn(5)
        # One stream per kind of draw, so that the futures of a caller further back are those of
        # the caller before them, played on for longer.
        self._rests, self._talks, self._patience, self._joins, scales = (
            np.random.default_rng(s) for s in seeds
        )
        # The line's mean conversation is itself only known from its history: each future plays
        # its conversations at a pace drawn from what that mean may be (its standard error), so
        # that the range of a caller far back, whose wait is many conversations, stays honest.
        spread = float(lengths.std()) / self.mean / math.sqrt(len(lengths)) if self.shaped else 0.0
        self.pace = np.clip(1 + spread * scales.standard_normal(samples), 0.5, 1.5)

    def conversations(
        self, rng: np.random.Generator | None = None, columns: int | None = None
    ) -> NDArray[np.float64]:
        """One conversation per future (`columns`: one per future and column, each column's
        draws stratified on their own)."""
        u = _stratified(rng or self._rests, self.samples, columns)
        pace = self.pace if columns is None else self.pace[:, None]
        if self.shaped:
            return self.lengths[(u * len(self.lengths)).astype(np.int64)] * pace
        return -self.mean * np.log1p(-u)

    def rests_of_calls(self, elapsed: NDArray[np.float64]) -> NDArray[np.float64]:
        """What is left of calls `elapsed` seconds old: futures x calls."""
        u = _stratified(self._rests, self.samples, len(elapsed))
        if not self.shaped:
            return -self.mean * np.log1p(-u)
        cut = np.searchsorted(self.lengths, elapsed, side="right")
        longer = len(self.lengths) - cut
        # Drawn from the conversations that lasted longer, when there are MIN_TAIL of them ...
        picked = np.minimum(cut + (u * longer).astype(np.int64), len(self.lengths) - 1)
        from_history = self.lengths[picked] - elapsed
        # ... else an exponential as long as the longest calls' excess over the shortest of them.
        longest = self.lengths[-MIN_TAIL:]
        excess = float((longest - longest[0]).mean())
        scale = excess if excess > 0 else max(1.0, self.mean / 4)
        return np.where(longer >= MIN_TAIL, from_history, -scale * np.log1p(-u))

    def wait(
        self,
        free: NDArray[np.float64],
        ahead: int,
        theta: float,
        joining: float,
        elsewhere: Sequence[tuple[int, float]] = (),
    ) -> NDArray[np.float64]:
        """Per future, the seconds until the caller with `ahead` callers ahead is talking to an
        agent, given when each agent is next free (`free`, futures x agents; updated in place).

        A departure serves, in turn: a caller of higher priority who joined meanwhile, else the
        next caller ahead who has not given up (each has an exponential patience at rate `theta`),
        else our caller."""
        samples = self.samples
        rows = np.arange(samples)
        patience = (
            self._patience.exponential(1 / theta, (ahead, samples))
            if theta > 0 and ahead > 0
            else None
        )
        served = np.zeros(samples, dtype=np.int64)
        """Per future, callers ahead served or given up."""
        urgent = np.zeros(samples, dtype=np.int64)
        for callers, share in elsewhere:  # each goes to one of our agents with that share
            urgent += self._joins.binomial(callers, min(1.0, max(0.0, share)), samples)
        waits = np.full(samples, np.nan)
        now = np.zeros(samples)
        for _ in range(MAX_STEPS):
            agent = free.argmin(axis=1)
            at = free[rows, agent]
            if joining > 0:
                urgent += self._joins.poisson(joining * (at - now))
            if patience is not None:
                while True:  # those ahead who gave up before this departure are gone
                    left = served < ahead
                    gone = left & (patience[np.minimum(served, ahead - 1), rows] <= at)
                    if not gone.any():
                        break
                    served += gone
            first = urgent > 0
            urgent -= first
            ours = ~first & (served >= ahead) & np.isnan(waits)
            waits[ours] = at[ours]
            served += ~first & ~ours
            free[rows, agent] = at + self.connect + self.conversations(self._talks)
            now = at
            if not np.isnan(waits).any():
                break
        else:
            late = np.isnan(waits)
            pace = (self.connect + self.mean) / free.shape[1]
            waits[late] = now[late] + (ahead - served[late] + urgent[late] + 1) * pace
        return waits + self.connect


def _stratified(
    rng: np.random.Generator, samples: int, columns: int | None = None
) -> NDArray[np.float64]:
    """`samples` uniform draws in [0, 1), one in each of `samples` equal slices, shuffled (Latin
    hypercube sampling: each agent's draws follow its distribution closely, so that a few hundred
    futures say what thousands of independent draws would); `columns`: samples x columns, each
    column on slices of its own."""
    if columns is None:
        return (rng.permutation(samples) + rng.random(samples)) / samples
    slices = rng.permuted(np.tile(np.arange(samples), (columns, 1)), axis=1).T
    return (slices + rng.random((samples, columns))) / samples


def line_estimate(
    queue: Queue,
    position: int,
    priority: int,
    load: LineLoad,
    history: LineHistory | None,
    waiting_elsewhere: Sequence[tuple[int, float]] = (),
) -> WaitEstimate | None:
    """The wait of a caller at `position` with `priority` in a line of `queue`, by the queue's
    `wait_estimate`; None when no agent is logged in."""
    if queue.wait_estimate == "formula":
        seconds = estimate_wait(
            position,
            load.agents_available,
            load.agents_busy,
            load.recent_talk_seconds,
            queue.default_handle_time,
        )
        return None if seconds is None else formula_estimate(seconds, queue.wait_range, position)
    return live_estimate(
        position,
        priority,
        load.agents_available,
        load.busy_seconds,
        load.recent_talk_seconds,
        queue.default_handle_time,
        history,
        connecting_seconds=load.connecting_seconds,
        recent_connect_seconds=load.recent_connect_seconds,
        percentiles=queue.wait_percentiles,
        waiting_elsewhere=waiting_elsewhere,
    )


def sharing_agents(
    shares: Mapping[tuple[str, str], float], histories: LineHistories, history: LineHistory | None
) -> LineHistory | None:
    """`history` with the usual arrival rates of the other lines our agents serve (`Rules.shared_lines`)
    added, weighted by their share: `faster_arrivals` then counts those who go ahead. Their usual
    rate at this hour, not the last hour's: a burst there is counted while its callers wait
    (`waiting_elsewhere`), and when it ends is not known; projecting it forward told the callers
    of the emergency scenario minutes too much once it was over (docs/qa/waits.md)."""
    arrivals = dict(history.arrivals_per_second) if history is not None else {}
    added = False
    for other, share in shares.items():
        seen = histories.get(*other)
        if seen is None:
            continue
        for priority, rate in seen.usual_arrivals_per_second.items():
            arrivals[priority] = arrivals.get(priority, 0.0) + share * rate
            added = True
    if not added:
        return history
    return replace(history or LineHistory(), arrivals_per_second=arrivals)


def _talks(database: Sequence[float], redis: Sequence[int], default: int) -> list[float]:
    if len(database) >= MIN_DATABASE_TALKS:
        return [float(t) for t in database if t > 0] or [float(default)]
    recent = [float(t) for t in redis if t > 0]
    return recent or [float(t) for t in database if t > 0] or [float(default)]


@dataclass(frozen=True)
class Spoken:
    """What a caller is told: between `low` and `high` minutes (`low` 0: "less than"; equal: "about")."""

    low: int
    high: int


def spoken_wait(estimate: WaitEstimate, style: str) -> Spoken:
    """The minutes to say for an `estimate` (median > 0) in a queue's `wait_speech` style: "about"
    the median, "less than" the high end, or "between" the low and high ends rounded to the nearest
    minute (so that the range said holds about as often as the range estimated; equal ends: "about",
    a low end of 0: "less than")."""
    if style == "about":
        minutes = spoken_minutes(estimate.median)
        return Spoken(minutes, minutes)
    if style == "under":
        return Spoken(0, spoken_minutes(estimate.high))
    high = max(1, _nearest_minute(estimate.high))
    low = min(_nearest_minute(estimate.low), high)
    return Spoken(low, high)


def _nearest_minute(seconds: int) -> int:
    """Whole minutes, halves rounded up (90 s: 2 minutes)."""
    return math.floor(seconds / 60 + 0.5)


def spoken_minutes(seconds: int) -> int:
    """Whole minutes to announce: rounded up, at least one (nobody is promised "zero minutes")."""
    return max(1, math.ceil(seconds / 60))


@lru_cache(maxsize=4096)
def say_minutes(minutes: int, locale: str) -> str:
    """ "5 minutes", "5分钟", "5 minutes", "5 Minuten", "4 hours": Babel's words for a duration,
    in minutes below three hours (so that "between 45 and 100 minutes" is not rounded to hours).

    Kept once worked out (per process, the most recent few thousand): Babel takes about 50 µs
    a phrase, and every hold round says one or two."""
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
