"""Stand-ins for the load runner's hold rounds and scenarios (the shapes `bench.waits` reads), and
rounds drawn from an Erlang model, for the tests of bench.waits and bench.waits_models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.waits_models import Model


@dataclass(frozen=True)
class Estimate:
    median: int
    low: int
    high: int


@dataclass(frozen=True)
class Round:
    position: int
    actual: float | None
    estimates: Mapping[str, Estimate] = field(default_factory=dict)
    agents_available: int = 0
    agents_busy: int = 4


@dataclass(frozen=True)
class Talk:
    mean: float
    distribution: str = "exponential"


@dataclass(frozen=True)
class Stream:
    patience: float | None = None
    callback_share: float = 0.0


@dataclass(frozen=True)
class Shift:
    login: float = 0.0
    logout: float | None = None


@dataclass(frozen=True)
class Scenario:
    talk: Talk = Talk(240.0)
    streams: Sequence[Stream] = (Stream(),)
    shifts: Sequence[Shift] = (Shift(),) * 4


def model_waits(model: Model, ahead: int, n: int, seed: int) -> np.ndarray:
    """`n` waits of answered callers with `ahead` callers ahead, drawn stage by stage."""
    rng = np.random.default_rng(seed)
    waits = np.full(n, model.connect)
    for rate in model.rates(ahead):
        waits += rng.exponential(1 / rate, n)
    return waits


def drawn_rounds(
    model: Model,
    per_position: int,
    positions: Sequence[int],
    estimate: Mapping[str, Callable[[int], Estimate]],
    seed: int = 7,
) -> list[Round]:
    """Rounds with every agent busy whose waits follow the model; each estimator's estimate is a
    function of the position."""
    rounds = []
    for position in positions:
        waits = model_waits(model, position - 1, per_position, seed + position)
        told = {name: make(position) for name, make in estimate.items()}
        rounds += [Round(position, float(w), told, 0, model.agents) for w in waits]
    return rounds
