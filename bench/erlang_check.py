"""Does the load simulator agree with queueing theory? The Erlang scenarios against their formulas.

    .venv/bin/python -m bench.erlang_check                      # every scenarios/waits/erlang_*.yaml
    .venv/bin/python -m bench.erlang_check scenarios/waits/erlang_a_s4_119.yaml

Runs each scenario in-process (`ivr simulate --load`, seeded) and measures, over every caller who
reached the queue: the mean time in the queue (until an agent was assigned, or until they hung up),
the share who waited at all, the share who gave up, and how many hung up after an agent was assigned
(Erlang A has none). It prints them beside Erlang C (M/M/s) or Erlang A (Palm's M/M/s+M), computed
for the scenario's arrival rate, its agents, a service time of talk mean + connect time (the agent is
taken from the assignment to the end of the conversation), and the mean patience.

The simulated line is the model within two small differences: the connect time (11.2 s) is constant,
not exponential, and a caller's patience starts at their first hold round, 4.4 s ("please hold")
after they joined the queue. Nothing is asserted: the figures carry the sampling noise of ~700 or
~1,500 callers (a few percent on the shares, more on the mean wait near load 1).
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.simulator.engine import SimulatedCall, Simulator
from ivr.simulator.load import LoadScenario, load_scenario, run_load

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "waits"
CONNECT_SECONDS = 11.2
"""From an agent's assignment to the caller being put through, on rules/single_line.yaml with
answer_after 0: "connecting" (4.8 s) and the whisper (6.4 s), as the simulator speaks them."""
PATIENCE_AFTER = 4.4
"""A caller's patience starts at their first hold round, this long ("please hold") after they join."""
WAITED = 0.5
"""A wait longer than this counts as waiting at all (callers assigned at once wait 0 s)."""


@dataclass(frozen=True)
class Model:
    """What Erlang C (no patience) or Erlang A says about a line, for each arriving caller."""

    name: str
    load: float
    mean_wait: float
    """Mean seconds in the queue: until assigned, or until hanging up."""
    p_wait: float
    p_abandon: float


def erlang(per_second: float, service: float, agents: int, patience: float | None) -> Model:
    """The stationary birth-death chain of M/M/s (+M with exponential `patience`), by PASTA."""
    mu = 1 / service
    theta = 0.0 if patience is None else 1 / patience
    load = per_second * service / agents
    if patience is None and load >= 1:
        return Model("C", load, math.inf, 1.0, 0.0)
    weights = [1.0]
    n = 0
    while True:
        n += 1
        weights.append(
            weights[-1] * per_second / (min(n, agents) * mu + max(n - agents, 0) * theta)
        )
        if n > agents and weights[-1] < 1e-15 * max(weights):
            break
    total = sum(weights)
    p = [w / total for w in weights]
    waiting = sum((k - agents) * pk for k, pk in enumerate(p) if k > agents)
    return Model(
        "C" if patience is None else "A",
        load,
        waiting / per_second,  # Little's law over every caller
        sum(p[agents:]),
        theta * waiting / per_second,
    )


@dataclass(frozen=True)
class Measured:
    callers: int
    mean_wait: float
    p_wait: float
    p_abandon: float
    after_assignment: int
    """Callers who hung up after an agent was assigned, before talking to them."""
    still_waiting: int
    per_second: float
    """Callers who reached the queue while callers arrived, per second."""
    service: float
    """The mean time an agent was taken per conversation: connect time and talk, as drawn."""
    replayed_mean_wait: float
    """The mean wait of the same callers (arrival instants, conversation lengths, patience) in an
    ideal first-come first-served queue with the same agents: the simulated line without the app."""
    mismatches: int
    """Callers answered in the run and not in that replay, or the other way round."""
    seconds: float
    """How long the run took (wall clock)."""


@contextmanager
def _simulators() -> Iterator[list[Simulator]]:
    """Every `Simulator` run meanwhile (run_load keeps its own to itself)."""
    seen: list[Simulator] = []
    run = Simulator.run

    def keep(self: Simulator) -> None:
        seen.append(self)
        run(self)

    Simulator.run = keep  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Simulator.run = run  # type: ignore[method-assign]


def _said_at(call: SimulatedCall, prompt: str) -> float | None:
    return next((call.started + r.at for r in call.records if r.data.get("prompt") == prompt), None)


def measure(scenario: LoadScenario) -> Measured:
    started = time.perf_counter()
    with _simulators() as seen:
        run_load(scenario, ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    seconds = time.perf_counter() - started
    waits: list[float] = []
    services: list[float] = []
    callers: list[tuple[float, float | None, float | None, bool]] = []
    abandoned = after = waiting = arrived = 0
    for call in seen[0].calls.values():
        joined = _said_at(call, "please_hold")  # said as the app puts the caller in its queue
        if call.direction != "inbound" or joined is None:
            continue
        assigned = _said_at(call, "connecting")
        arrived += joined < scenario.duration * 60
        if assigned is not None and call.agent_done_at is not None:
            services.append(call.agent_done_at - assigned)
        if call.ended_at >= scenario.horizon - 1e-6 and call.connected_at is None:
            waiting += 1
            continue
        service = (
            None
            if call.agent_done_at is None or assigned is None
            else call.agent_done_at - assigned
        )
        callers.append((joined, service, call.patience, call.connected_at is not None))
        if call.connected_at is None:
            abandoned += 1
            if assigned is not None:
                after += 1
            waits.append((assigned or call.ended_at) - joined)
        else:
            assert assigned is not None
            waits.append(assigned - joined)
    return Measured(
        callers=len(waits),
        mean_wait=statistics.fmean(waits),
        p_wait=sum(1 for w in waits if w > WAITED) / len(waits),
        p_abandon=abandoned / len(waits),
        after_assignment=after,
        still_waiting=waiting,
        per_second=arrived / (scenario.duration * 60),
        **_replay(sorted(callers), len({shift.agent for shift in scenario.shifts})),
        service=statistics.fmean(services),
        seconds=seconds,
    )


def _replay(
    callers: list[tuple[float, float | None, float | None, bool]], agents: int
) -> dict[str, Any]:
    """The callers (joined, service, patience, answered), in order, through `agents` first-come
    first-served servers: who is answered, and the mean time in the queue."""
    free = [0.0] * agents
    waits: list[float] = []
    mismatches = 0
    for joined, service, patience, answered in callers:
        start = max(joined, free[0])
        gives_up = patience is not None and start - joined > PATIENCE_AFTER + patience
        if gives_up:
            waits.append(PATIENCE_AFTER + (patience or 0))
        else:
            waits.append(start - joined)
            heapq.heapreplace(free, start + (service if service is not None else 0.0))
        mismatches += gives_up == answered or (service is None and not gives_up)
    return {"replayed_mean_wait": statistics.fmean(waits), "mismatches": mismatches}


def model_of(scenario: LoadScenario, drawn: Measured | None = None) -> Model:
    """The model of the scenario's figures, or (`drawn`) of the arrival rate and service time its
    run drew: what is left between the latter and the run is the simulated line itself."""
    (stream,) = scenario.streams
    (period,) = stream.arrivals
    agents = len({shift.agent for shift in scenario.shifts})
    if drawn is not None:
        return erlang(drawn.per_second, drawn.service, agents, stream.patience)
    service = scenario.talk.mean + CONNECT_SECONDS
    return erlang(period.per_hour / 3600, service, agents, stream.patience)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    files = parser.parse_args(argv).files or sorted(SCENARIOS.glob("erlang_*.yaml"))
    print(
        "Each figure: the run; the model of the scenario's figures; the model of the arrival rate "
        "and service time the run drew (its load in the second column)."
    )
    print(
        "| scenario | model, load (drawn) | callers | mean wait s | P(wait>0) | abandoned "
        "| hung up after assignment | still waiting | replay: mean wait s, mismatches | run s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for file in files:
        scenario = load_scenario(file)
        got = measure(scenario)
        model, drawn = model_of(scenario), model_of(scenario, got)
        print(
            f"| {scenario.name} | {model.name}, {model.load:.2f} ({drawn.load:.2f}) | {got.callers} "
            f"| {got.mean_wait:.0f}; {model.mean_wait:.0f}; {drawn.mean_wait:.0f} "
            f"| {got.p_wait:.3f}; {model.p_wait:.3f}; {drawn.p_wait:.3f} "
            f"| {got.p_abandon:.3f}; {model.p_abandon:.3f}; {drawn.p_abandon:.3f} "
            f"| {got.after_assignment} | {got.still_waiting} "
            f"| {got.replayed_mean_wait:.0f}, {got.mismatches} | {got.seconds:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
