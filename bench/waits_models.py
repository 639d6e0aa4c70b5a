"""The yardsticks `python -m bench.waits` measures the wait estimates against.

Where a load scenario is an Erlang model (`model_of`: exponential talk times, one stream of Poisson
callers, no callbacks, a fixed team), the wait of a caller with k callers ahead, once every agent
is busy, has a known distribution (Whitt 1999; Ibrahim and Whitt 2009, the QL predictor of the
M/M/s+M model): the time for k + 1 agents to free up, each free-up taking Exp(s mu + i theta) with
i callers still ahead (s agents finishing at rate mu = 1 / service mean, each caller ahead giving
up at rate theta = 1 / patience mean), then the connect time (ring and whisper) to the answer:

    W = connect + sum over i = 0..k of Exp(s mu + i theta)

Its median is the estimate with the least mean absolute error a line could have given those
callers (`least_possible_mae`), and its 10th-90th percentiles the narrowest range holding for 80%.

Only callers who were answered have a wait to measure. With abandonment they are the callers whose
own patience outlasted the queue, so the measured waits follow W *given* the caller stayed: the
caller also leaves the line at rate theta while holding, and a sum of exponentials tilted by
exp(-theta w) is the sum of the same exponentials at rate + theta. `served=True` (the default of
the benchmark) uses that distribution, Exp(s mu + (i + 1) theta); `served=False` is the QL
predictor as published (the wait of a caller who would never give up). Without abandonment the two
are the same.

The approximation: an agent is busy for connect + talk, and the model treats that service as
exponential with mean connect + talk mean; with a connect time of a few seconds against talk of
minutes the difference is small, and the connect time the caller waits for is added as a constant.

Elsewhere (lognormal talk, logouts, callbacks, several lines) there is no model, and the yardstick
is the best position-only predictor measured in the same run (`position_only`): the in-sample
median wait per position, 1 to 5 each and 6 or more pooled.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

GROUPS = ("1", "2", "3", "4", "5", "6+")
"""Position groups of the report: 1 to 5 each, 6 or more pooled."""
LOW_Q, HIGH_Q = 0.1, 0.9
"""The range a caller should hear: the 10th to the 90th percentile of their wait."""
CONNECT_SAMPLES = 5
"""At least this many put-through-at-once rounds to measure the connect time from them."""


class EstimateLike(Protocol):
    """A wait estimate (`ivr.waits.WaitEstimate`): seconds."""

    @property
    def median(self) -> int: ...

    @property
    def low(self) -> int: ...

    @property
    def high(self) -> int: ...


class RoundLike(Protocol):
    """What the benchmark reads of a hold round (`ivr.simulator.accuracy.Round`)."""

    @property
    def position(self) -> int: ...

    @property
    def agents_available(self) -> int: ...

    @property
    def agents_busy(self) -> int: ...

    @property
    def estimates(self) -> Mapping[str, EstimateLike]: ...

    @property
    def actual(self) -> float | None: ...


class StreamLike(Protocol):
    @property
    def patience(self) -> float | None: ...

    @property
    def callback_share(self) -> float: ...


class ShiftLike(Protocol):
    @property
    def login(self) -> float: ...

    @property
    def logout(self) -> float | None: ...


class TalkLike(Protocol):
    @property
    def mean(self) -> float: ...

    @property
    def distribution(self) -> str: ...


class ScenarioLike(Protocol):
    """What `model_of` reads of a load scenario (`ivr.simulator.load.LoadScenario`)."""

    @property
    def talk(self) -> TalkLike: ...

    @property
    def streams(self) -> Sequence[StreamLike]: ...

    @property
    def shifts(self) -> Sequence[ShiftLike]: ...


@dataclass(frozen=True)
class Model:
    """M/M/s (Erlang C, `patience_mean` None) or M/M/s+M (Erlang A, Palm): `agents` serving for
    `service_mean` seconds on average, callers giving up after `patience_mean` on average, and
    `connect` seconds from an agent being assigned to the agent answering."""

    agents: int
    service_mean: float
    patience_mean: float | None
    connect: float = 0.0

    @property
    def theta(self) -> float:
        return 0.0 if not self.patience_mean else 1.0 / self.patience_mean

    def rates(self, ahead: int, served: bool = True) -> np.ndarray:
        """The rates of the k + 1 exponential stages of the wait with `ahead` = k callers ahead."""
        base = self.agents / self.service_mean
        shift = 1 if served else 0
        return base + (np.arange(ahead + 1) + shift) * self.theta

    def mean_wait(self, ahead: int, served: bool = True) -> float:
        return self.connect + float(np.sum(1.0 / self.rates(ahead, served)))


# --- the distribution of the wait ---------------------------------------------------------------


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1)))))


def _poisson_pmf(x: float, n: int) -> np.ndarray:
    """P(N = j) for j = 0..n, N ~ Poisson(x), computed in log space (no overflow at large x)."""
    j = np.arange(n + 1)
    pmf: np.ndarray = (
        (j == 0).astype(float) if x <= 0 else np.exp(-x + j * math.log(x) - _log_factorials(n))
    )
    return pmf


def erlang_cdf(t: float, stages: int, rate: float) -> float:
    """P(Erlang(stages, rate) <= t): the probability that a Poisson(rate t) count reaches
    `stages`, summed in log space from whichever tail is smaller."""
    if t <= 0:
        return 0.0
    x = rate * t
    if x < stages:  # the upper tail is the smaller: sum it directly
        top = stages + int(10 * math.sqrt(x) + 10 * x + 50)
        return float(math.fsum(_poisson_pmf(x, top)[stages:]))
    return max(0.0, 1.0 - math.fsum(_poisson_pmf(x, stages - 1)))


class _Uniformized:
    """P(sum of Exp(rates[i]) <= t) by uniformization of the pure-death chain: one Poisson clock
    at the largest rate, each tick moving the caller forward with probability rate / largest.
    Every term is a probability (no alternating sums), so it is stable for hundreds of stages."""

    def __init__(self, rates: np.ndarray, t_max: float) -> None:
        self.top = float(rates.max())
        ticks = self.top * t_max
        self.steps = int(ticks + 12 * math.sqrt(ticks) + 60)
        move = rates / self.top
        state = np.zeros(len(rates) + 1)
        state[0] = 1.0  # stage 0 of len(rates); the last index is "answered"
        absorbed = np.empty(self.steps + 1)
        absorbed[0] = 0.0
        for n in range(1, self.steps + 1):
            moved = state[:-1] * move
            state[:-1] -= moved
            state[1:] += moved
            absorbed[n] = state[-1]
        self.absorbed = absorbed

    def cdf(self, t: float) -> float:
        if t <= 0:
            return 0.0
        weights = _poisson_pmf(self.top * t, self.steps)
        # Ticks beyond the last step (past the t it was built for) count as that step's share.
        beyond = max(0.0, 1.0 - math.fsum(weights)) * float(self.absorbed[-1])
        return float(min(1.0, math.fsum(weights * self.absorbed) + beyond))


def _t_max(rates: np.ndarray, top_q: float) -> float:
    """A time the wait (without the connect time) stays below with probability at least `top_q`:
    the tighter of Cantelli's bound, P(W > mean + c sd) <= 1 / (1 + c^2), and Chernoff's at
    lambda = half the smallest rate, P(W > t) <= 2^(k+1) exp(-lambda t)."""
    mean = float(np.sum(1.0 / rates))
    sd = math.sqrt(float(np.sum(1.0 / rates**2)))
    cantelli = mean + sd * math.sqrt(top_q / (1 - top_q))
    chernoff = (len(rates) * math.log(2) - math.log(1 - top_q)) * 2 / float(rates.min())
    return min(cantelli, chernoff)


def wait_cdf(
    model: Model, ahead: int, served: bool = True, top_q: float = 0.999
) -> Callable[[float], float]:
    """P(W <= t) for the wait of a caller with `ahead` callers ahead, every agent busy (the
    module's docstring): exact Erlang CDF without abandonment; with it, uniformization, accurate
    for the t below which the wait falls with probability `top_q`."""
    rates = model.rates(ahead, served)
    if model.theta == 0:
        rate = float(rates[0])

        def queue_cdf(t: float) -> float:
            return erlang_cdf(t, ahead + 1, rate)

    else:
        queue_cdf = _Uniformized(rates, _t_max(rates, top_q)).cdf
    return lambda t: queue_cdf(t - model.connect)


def wait_quantiles(
    model: Model, ahead: int, qs: Sequence[float], served: bool = True
) -> tuple[float, ...]:
    """The `qs` quantiles (seconds) of the wait of a caller with `ahead` callers ahead, every agent
    busy (`wait_cdf`), each found by bisection to well under 0.1%."""
    if any(not 0 < q < 1 for q in qs):
        raise ValueError(f"quantiles are strictly between 0 and 1 (got {list(qs)})")
    top_q = max(qs)
    t_max = _t_max(model.rates(ahead, served), top_q)
    cdf = wait_cdf(model, ahead, served, top_q)
    found = []
    for q in qs:
        low, high = model.connect, model.connect + t_max
        for _ in range(100):
            middle = (low + high) / 2
            if cdf(middle) < q:
                low = middle
            else:
                high = middle
            if high - low < 1e-7 * high:
                break
        found.append((low + high) / 2)
    return tuple(found)


# --- the yardsticks -----------------------------------------------------------------------------


def group_of(position: int) -> str:
    """The report's position group: "1" to "5", then "6+"."""
    return str(position) if position < 6 else "6+"


def busy_measured(rounds: Iterable[RoundLike]) -> list[RoundLike]:
    """The rounds the figures are taken over: every agent of the line busy, the caller answered."""
    return [r for r in rounds if r.agents_available == 0 and r.actual is not None]


def _actual(round_: RoundLike) -> float:
    assert round_.actual is not None  # busy_measured rounds only
    return round_.actual


@dataclass(frozen=True)
class Yardstick:
    """The best a predictor could do on some rounds: its MAE, and its 10th-90th percentile range's
    mean width and the share of waits that fell inside it."""

    rounds: int
    mae: float | None
    width: float | None
    coverage: float | None


def _yardstick(
    rounds: Sequence[RoundLike], ranges: Sequence[tuple[float, float, float]]
) -> Yardstick:
    """Figures of (median, low, high) predictions, one per round."""
    if not rounds:
        return Yardstick(0, None, None, None)
    actual = [_actual(r) for r in rounds]
    return Yardstick(
        len(rounds),
        statistics.fmean(abs(a - m) for a, (m, _, _) in zip(actual, ranges, strict=True)),
        statistics.fmean(high - low for _, low, high in ranges),
        sum(1 for a, (_, low, high) in zip(actual, ranges, strict=True) if low <= a <= high)
        / len(rounds),
    )


class ModelRanges:
    """The model's (median, 10th, 90th percentile) per number of callers ahead, computed once each."""

    def __init__(self, model: Model, served: bool = True) -> None:
        self.model = model
        self.served = served
        self._known: dict[int, tuple[float, float, float]] = {}

    def __call__(self, ahead: int) -> tuple[float, float, float]:
        if ahead not in self._known:
            low, median, high = wait_quantiles(self.model, ahead, (LOW_Q, 0.5, HIGH_Q), self.served)
            self._known[ahead] = (median, low, high)
        return self._known[ahead]


def least_possible_mae(
    model: Model | ModelRanges, rounds: Iterable[RoundLike], served: bool = True
) -> Yardstick:
    """Over the rounds with every agent busy and an answer: the MAE of the model's median for
    k = position - 1 callers ahead (the least any estimate can have if the model holds), its
    10th-90th range's mean width, and the share of waits inside that range (about 80%)."""
    ranges = model if isinstance(model, ModelRanges) else ModelRanges(model, served)
    kept = busy_measured(rounds)
    return _yardstick(kept, [ranges(max(0, r.position - 1)) for r in kept])


def position_only(rounds: Iterable[RoundLike]) -> dict[str, float]:
    """The best position-only predictor, in-sample: the median wait that followed per position
    group (`GROUPS`), over the rounds with every agent busy and an answer."""
    waits: dict[str, list[float]] = {}
    for r in busy_measured(rounds):
        waits.setdefault(group_of(r.position), []).append(_actual(r))
    return {g: statistics.median(waits[g]) for g in GROUPS if g in waits}


def spread(waits: Sequence[float]) -> tuple[float, float]:
    """The 10th and 90th percentiles of `waits` (linear interpolation between order statistics)."""
    if len(waits) == 1:
        return waits[0], waits[0]
    low, high = np.quantile(np.asarray(waits, dtype=float), [LOW_Q, HIGH_Q])
    return float(low), float(high)


def position_only_yardstick(rounds: Iterable[RoundLike]) -> Yardstick:
    """The figures of the in-sample position-only predictor: the MAE of its median, and the width
    and coverage of the in-sample 10th-90th percentiles of the waits per position group."""
    kept = busy_measured(rounds)
    waits: dict[str, list[float]] = {}
    for r in kept:
        waits.setdefault(group_of(r.position), []).append(_actual(r))
    per_group = {g: (statistics.median(w), *spread(w)) for g, w in waits.items()}
    return _yardstick(kept, [per_group[group_of(r.position)] for r in kept])


# --- which scenarios have a model ---------------------------------------------------------------


def model_of(scenario: ScenarioLike, connect: float, whisper: float = 0.0) -> Model | None:
    """A `Model` when the scenario is of the Erlang kind: exponential talk times, one stream of
    callers, none asking for a callback, every agent logged in from minute 0 and none logging out;
    else None. `connect` is the run's connect time (handed to an agent -> the agent picks up, part
    of the wait) and `whisper` what the agent then hears before the caller is put through; the
    service an agent gives is taken as exponential with mean talk mean + connect + whisper (the
    module's docstring)."""
    if scenario.talk.distribution != "exponential" or len(scenario.streams) != 1:
        return None
    (stream,) = scenario.streams
    if stream.callback_share > 0 or not scenario.shifts:
        return None
    if any(s.login != 0 or s.logout is not None for s in scenario.shifts):
        return None
    return Model(
        agents=len(scenario.shifts),
        service_mean=scenario.talk.mean + connect + whisper,
        patience_mean=stream.patience,
        connect=connect,
    )


def connect_time(rounds: Iterable[RoundLike], fallback: float) -> float:
    """Seconds from an agent being assigned to the agent answering, as measured in the run: the
    median wait of callers next in line at a round where an agent was free (they were put through
    at once, so their whole wait is the connect time); `fallback` (say, the scenario's ring time)
    when fewer than `CONNECT_SAMPLES` such rounds were seen."""
    waits = [
        r.actual
        for r in rounds
        if r.position == 1 and r.agents_available > 0 and r.actual is not None
    ]
    return statistics.median(waits) if len(waits) >= CONNECT_SAMPLES else fallback
