"""Load scenarios: many callers over simulated hours, to measure how right the announced waits are.

A scenario (YAML, see scenarios/waits/) says when the run starts and how long callers keep arriving,
the streams of callers (the keys that take them to a queue, Poisson arrivals per period, how patient
they are, how many ask for a callback while holding), the agents' shifts (log in and out at given
minutes, through the app's switchboard as the agent line does) and how long conversations last (a
lognormal, exponential or fixed length per conversation). Everything random is seeded: a scenario
runs the same every time.

While it runs, every wait estimate a caller hears is recorded (`accuracy.heard_interval`) with the
wait that followed it, up to the moment an agent answered; `accuracy.summarize` makes the figures.
A scenario may state targets for them (`targets:`); `ivr simulate --load` exits 1 when one is missed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ivr.rules.schema import Queue, Rules
from ivr.simulator.accuracy import WAIT_PROMPTS, Pair, Round, figures, heard_interval, summarize
from ivr.simulator.caller import ScriptedCaller, ScriptError, parse_script
from ivr.simulator.engine import AgentBehaviour, SimulatedCall, Simulator
from ivr.simulator.progress import Progress
from ivr.simulator.session import in_process
from ivr.simulator.shared import parse_when
from ivr.switchboard import EstimateMade
from ivr.waits import WaitEstimate

Estimator = Callable[[EstimateMade], WaitEstimate | None]
"""Another way to estimate a wait, compared with the line's own on the same line state."""

ESTIMATORS = ("formula", "live")
POSITION_PROMPTS = {"queue_next", "queue_position", "many_ahead"}
CALLBACK_PROMPT = "callback_kept"
"""What a caller hears once the service has taken their callback request while holding."""
HISTORY_FOR_TARGETS = 30
"""Estimates count towards the targets once their queue has finished this many conversations."""


class LoadError(ValueError):
    """A load scenario that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Arrivals:
    """Poisson arrivals at `per_hour` from minute `start` (inclusive) to minute `end` (exclusive)."""

    start: float
    end: float
    per_hour: float


@dataclass(frozen=True)
class Stream:
    """Callers who press the same keys to reach their queue."""

    name: str
    keys: str
    arrivals: tuple[Arrivals, ...]
    patience: float | None = None
    """Mean seconds (exponential) a caller holds before hanging up; None: they never do. Only time
    on hold counts, not the time an assigned agent takes to be put through."""
    callback_share: float = 0.0
    """Share of callers who press the callback key `callback_after` seconds into holding."""
    callback_after: float = 60.0


@dataclass(frozen=True)
class Shift:
    agent: str
    login: float
    """Minute of the run the agent logs in."""
    logout: float | None = None


TALK_DISTRIBUTIONS = ("lognormal", "exponential", "fixed")
PATIENCE_DISTRIBUTIONS = ("exponential",)


@dataclass(frozen=True)
class Talk:
    """Conversation length in seconds, drawn per conversation: lognormal with this mean and standard
    deviation (no sd: the mean every time), exponential with this mean, or fixed (the mean)."""

    mean: float
    sd: float = 0.0
    distribution: str = "lognormal"

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        if self.distribution == "exponential":
            return lambda: rng.expovariate(1 / self.mean)
        if self.distribution == "fixed" or self.sd <= 0:
            return lambda: self.mean
        sigma2 = math.log(1 + (self.sd / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2
        return lambda: rng.lognormvariate(mu, math.sqrt(sigma2))


@dataclass(frozen=True)
class Targets:
    """What a scenario expects of the estimates (`targets:`), judged over every queue together on
    the estimates heard once their queue had `HISTORY_FOR_TARGETS` conversations; None: not set."""

    mae_percent: float | None = None
    """The MAE is at most this share (%) of the mean wait."""
    inside_percent: tuple[float, float] | None = None
    """The wait that followed falls inside the range told for this share (%) of the estimates."""
    position_rises: int | None = None
    """At most this many announcements of a higher position than the caller heard before."""


@dataclass(frozen=True)
class TargetCheck:
    """One target of a scenario after its run: what it asks, what was measured, whether it is met."""

    target: str
    measured: str
    met: bool


@dataclass(frozen=True)
class LoadScenario:
    path: Path
    name: str
    description: str
    start: datetime
    duration: float
    """Minutes during which callers arrive."""
    drain: float
    """Minutes after that until the run ends; callers still holding then count as `waiting`."""
    seed: int
    rules: Path | None
    shifts: tuple[Shift, ...]
    talk: Talk
    answer_after: float
    streams: tuple[Stream, ...]
    targets: Targets = Targets()

    @property
    def horizon(self) -> float:
        """Seconds from the start to the end of the run."""
        return (self.duration + self.drain) * 60.0


# --- reading a scenario ------------------------------------------------------------------------


def _number(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LoadError(f"{where}: {key} must be a number >= 0 (got {value!r})")
    return float(value)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LoadError(f"{where}: must be a mapping")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise LoadError(f"{where}: must be a non-empty list")
    return value


KNOWN = {
    "name",
    "description",
    "start",
    "duration_minutes",
    "drain_minutes",
    "seed",
    "rules",
    "agents",
    "talk",
    "answer_after",
    "callers",
    "targets",
}
TARGET_KEYS = ("mae_percent", "inside_percent", "position_rises")


def load_scenario(path: Path) -> LoadScenario:
    """Read a load scenario file; `LoadError` names the file and key of any mistake."""
    try:
        data = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    except (OSError, yaml.YAMLError) as exc:
        raise LoadError(f"{path}: cannot read: {exc}") from exc
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise LoadError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(KNOWN)})")
    try:
        start = parse_when(str(data.get("start", "")))
    except ValueError as exc:
        raise LoadError(f"{path}: start: {exc}") from None
    duration = _number(data, "duration_minutes", str(path))
    shifts = tuple(
        _shift(_mapping(item, f"{path}: agents[{i}]"), f"{path}: agents[{i}]")
        for i, item in enumerate(_list(data.get("agents"), f"{path}: agents"))
    )
    streams = tuple(
        _stream(_mapping(item, f"{path}: callers[{i}]"), f"{path}: callers[{i}]", duration)
        for i, item in enumerate(_list(data.get("callers"), f"{path}: callers"))
    )
    rules = data.get("rules")
    return LoadScenario(
        path=path,
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        start=start,
        duration=duration,
        drain=_number(data, "drain_minutes", str(path), 60),
        seed=int(_number(data, "seed", str(path), 1)),
        rules=(path.parent / str(rules)).resolve() if rules else None,
        shifts=shifts,
        talk=_talk(data.get("talk", {"mean": 240}), f"{path}: talk"),
        answer_after=_number(data, "answer_after", str(path), 5),
        streams=streams,
        targets=_targets(data.get("targets", {}), f"{path}: targets"),
    )


def _targets(value: object, where: str) -> Targets:
    item = _mapping(value, where)
    unknown = sorted(set(item) - set(TARGET_KEYS))
    if unknown:
        raise LoadError(
            f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(TARGET_KEYS)})"
        )
    inside = item.get("inside_percent")
    if inside is not None:
        if not isinstance(inside, list) or len(inside) != 2:
            raise LoadError(f"{where}: inside_percent must be [low, high], e.g. [75, 85]")
        bounds = {"low": inside[0], "high": inside[1]}
        inside = (_number(bounds, "low", where), _number(bounds, "high", where))
        if not inside[0] <= inside[1] <= 100:
            raise LoadError(
                f"{where}: inside_percent needs low <= high <= 100 (got {list(inside)})"
            )
    rises = item.get("position_rises")
    return Targets(
        mae_percent=None if "mae_percent" not in item else _number(item, "mae_percent", where),
        inside_percent=inside,
        position_rises=None if rises is None else int(_number(item, "position_rises", where)),
    )


def _distribution(item: Mapping[str, Any], where: str, known: tuple[str, ...]) -> str:
    distribution = item.get("distribution", known[0])
    if distribution not in known:
        allowed = known[0] if len(known) == 1 else f"one of {', '.join(known)}"
        raise LoadError(f"{where}: distribution must be {allowed} (got {distribution!r})")
    return str(distribution)


def _talk(value: object, where: str) -> Talk:
    talk = _mapping(value, where)
    unknown = sorted(set(talk) - {"mean", "sd", "distribution"})
    if unknown:
        raise LoadError(
            f"{where}: unknown keys {', '.join(unknown)} (known: mean, sd, distribution)"
        )
    distribution = _distribution(talk, where, TALK_DISTRIBUTIONS)
    mean = _number(talk, "mean", where)
    if mean <= 0:
        raise LoadError(f"{where}: mean must be above 0")
    if "sd" in talk and distribution != "lognormal":
        raise LoadError(
            f"{where}: sd is for the lognormal distribution only; {distribution} takes the mean "
            f"alone{' (its sd is the mean)' if distribution == 'exponential' else ''}"
        )
    return Talk(mean, _number(talk, "sd", where, 0), distribution)


def _patience(item: Mapping[str, Any], where: str) -> float | None:
    """A stream's mean patience: `patience: 300`, or `patience: {distribution: exponential, mean: 300}`."""
    value = item.get("patience")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return _number(item, "patience", where)
    at = f"{where}: patience"
    unknown = sorted(set(value) - {"mean", "distribution"})
    if unknown:
        raise LoadError(f"{at}: unknown keys {', '.join(unknown)} (known: mean, distribution)")
    _distribution(value, at, PATIENCE_DISTRIBUTIONS)
    return _number(value, "mean", at)


def _shift(item: Mapping[str, Any], where: str) -> Shift:
    agent = item.get("id")
    if not isinstance(agent, str) or not agent:
        raise LoadError(f"{where}: id must name an agent of the rules")
    logout = item.get("logout")
    return Shift(
        agent,
        _number(item, "login", where, 0),
        None if logout is None else _number(item, "logout", where),
    )


def _stream(item: Mapping[str, Any], where: str, duration: float) -> Stream:
    keys = item.get("keys")
    if not isinstance(keys, str) or not keys:
        raise LoadError(f'{where}: keys must be a caller script, e.g. "2,2,2"')
    try:
        parse_script(keys)  # a bad script is refused before anything runs
    except ScriptError as exc:
        raise LoadError(f"{where}: keys: {exc}") from None
    periods = []
    for i, period in enumerate(_list(item.get("arrivals"), f"{where}: arrivals")):
        at = f"{where}: arrivals[{i}]"
        period = _mapping(period, at)
        start = _number(period, "from", at, 0)
        end = _number(period, "to", at, duration)
        if end <= start or end > duration:
            raise LoadError(f"{at}: needs from < to <= duration_minutes ({duration:g})")
        periods.append(Arrivals(start, end, _number(period, "per_hour", at)))
    share = _number(item, "callback_share", where, 0)
    if share > 1:
        raise LoadError(f"{where}: callback_share is a share, from 0 to 1")
    return Stream(
        name=str(item.get("name", keys)),
        keys=keys,
        arrivals=tuple(periods),
        patience=_patience(item, where),
        callback_share=share,
        callback_after=_number(item, "callback_after", where, 60),
    )


def arrival_times(periods: tuple[Arrivals, ...], rng: random.Random) -> list[float]:
    """Seconds into the run at which callers arrive: a Poisson process per period."""
    times: list[float] = []
    for period in periods:
        if period.per_hour <= 0:
            continue
        t = period.start * 60.0
        while True:
            t += rng.expovariate(period.per_hour / 3600.0)
            if t >= period.end * 60.0:
                break
            times.append(t)
    return sorted(times)


# --- running one -------------------------------------------------------------------------------


@dataclass
class _Heard:
    at: float
    prompt: str
    text: str
    queue: str
    language: str
    position: int | None
    low: float
    high: float
    point: float


@dataclass
class Recorder:
    """Listens to what callers hear (`Simulator.on_prompt`) and keeps every wait estimate."""

    simulator: Simulator
    locales: Mapping[str, tuple[str, str]]
    """A <Say> language (or catalog code) -> (catalog code, Babel locale)."""
    heard: dict[str, list[_Heard]] = field(default_factory=dict)
    callbacks: set[str] = field(default_factory=set)
    unread: list[str] = field(default_factory=list)
    """Wait texts that could not be read back (a catalog the inverse does not know)."""
    compare: Mapping[str, Estimator] = field(default_factory=dict)
    estimated: list[tuple[float, EstimateMade, dict[str, WaitEstimate]]] = field(
        default_factory=list
    )
    """Every hold round's estimates: (when, what the line made it from, by estimator)."""
    _positions: dict[str, int | None] = field(default_factory=dict)

    def on_estimate(self, made: EstimateMade) -> None:
        """`Switchboard.on_estimate`: keep the line's estimate and the compared ones."""
        if made.estimate is None:
            return
        estimates: dict[str, WaitEstimate] = {made.queue.wait_estimate: made.estimate}
        for name, estimator in self.compare.items():
            other = estimator(made)
            if other is not None:
                estimates.setdefault(name, other)
        self.estimated.append((self.simulator.t, made, estimates))

    def __call__(
        self, call: SimulatedCall, prompt: str, params: dict[str, str], say_language: str
    ) -> None:
        if prompt in POSITION_PROMPTS:
            position = params.get("position", "")
            self._positions[call.sid] = (
                1 if prompt == "queue_next" else int(position) if position.isdigit() else None
            )
        elif prompt == CALLBACK_PROMPT:
            self.callbacks.add(call.sid)
        elif prompt in WAIT_PROMPTS:
            language, locale = self.locales.get(say_language, (say_language, "en_US"))
            told = heard_interval(prompt, params, locale)
            text = call.heard[-1] if call.heard else ""
            if told is None:
                self.unread.append(f"{prompt} ({language}): {params}")
                return
            self.heard.setdefault(call.sid, []).append(
                _Heard(
                    self.simulator.t,
                    prompt,
                    text,
                    call.queues[-1] if call.queues else "?",
                    language,
                    self._positions.get(call.sid),
                    told.low,
                    told.high,
                    told.point,
                )
            )


@dataclass
class LoadResult:
    scenario: LoadScenario
    estimator: str | None
    pairs: list[Pair]
    calls: int
    positions_heard: int
    """Position announcements heard, by every caller."""
    position_rises: int
    """Of those, announcements of a position higher than the one that caller heard before."""
    fates: dict[str, int]
    """Every caller (whether or not they heard an estimate): answered, abandoned, callback, waiting."""
    by_stream: dict[str, dict[str, int]]
    callbacks_placed: int
    errors: list[str]
    unread: list[str]
    rounds: list[Round] = field(default_factory=list)
    """Every hold round's estimates with the wait that followed (`Round`)."""
    connect_seconds: float | None = None
    """Median seconds from the line handing a caller to an agent to the agent picking up."""
    whisper_seconds: float | None = None
    """Median seconds from the agent picking up to the caller being put through (the whisper)."""
    hung_up_after_assignment: int = 0
    """Callers who hung up after an agent was handed their call, before it was answered."""
    abandoned_after_assignment_unrecorded: int = 0
    """Of those, how many have no ABANDON in the line's history (the database)."""

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "file": str(self.scenario.path),
            "start": self.scenario.start.isoformat(),
            "estimator": self.estimator or "rules",
            "calls": self.calls,
            "positions_heard": self.positions_heard,
            "position_rises": self.position_rises,
            "fates": self.fates,
            "by_stream": self.by_stream,
            "callbacks_placed": self.callbacks_placed,
            "errors": self.errors,
            "unread_estimates": self.unread,
            "hold_rounds_estimated": len(self.rounds),
            "hung_up_after_assignment": self.hung_up_after_assignment,
            "abandoned_after_assignment_unrecorded": self.abandoned_after_assignment_unrecorded,
            "queues": summarize(self.pairs, HISTORY_FOR_TARGETS),
            "targets": [asdict(check) for check in self.target_checks()],
        }

    def target_checks(self) -> list[TargetCheck]:
        """Each target of the scenario, with what this run measured."""
        targets = self.scenario.targets
        late = [p for p in self.pairs if p.history >= HISTORY_FOR_TARGETS]
        after = f"after {HISTORY_FOR_TARGETS}+ conversations"
        measured = figures(late)
        checks: list[TargetCheck] = []
        if targets.mae_percent is not None:
            mae = measured.mae_percent
            checks.append(
                TargetCheck(
                    f"MAE at most {targets.mae_percent:g}% of the mean wait, {after}",
                    "nothing measured" if mae is None else f"{mae:.1f}%",
                    mae is not None and mae <= targets.mae_percent,
                )
            )
        if targets.inside_percent is not None:
            low, high = targets.inside_percent
            inside = measured.inside_share
            checks.append(
                TargetCheck(
                    f"the wait inside the range told for {low:g}-{high:g}% of estimates, {after}",
                    "nothing measured" if inside is None else f"{100 * inside:.1f}%",
                    inside is not None and low <= 100 * inside <= high,
                )
            )
        if targets.position_rises is not None:
            checks.append(
                TargetCheck(
                    f"at most {targets.position_rises} positions heard higher than the caller's "
                    "previous one",
                    str(self.position_rises),
                    self.position_rises <= targets.position_rises,
                )
            )
        return checks


def check_estimator(estimator: str) -> None:
    """`LoadError` unless the rules have the `wait_estimate` field and `estimator` is a value of it."""
    if "wait_estimate" not in Queue.model_fields:
        raise LoadError(
            "--estimator needs the rules field queues.<id>.wait_estimate, which this version of "
            "ivr/rules/schema.py does not have; run without --estimator"
        )
    if estimator not in ESTIMATORS:
        raise LoadError(f"--estimator must be one of {', '.join(ESTIMATORS)}")


def on_every_queue(rules: Rules, settings: Mapping[str, Any]) -> Rules:
    """The rules with these queue settings on every queue."""
    queues = {
        queue_id: queue.model_copy(update=dict(settings))
        for queue_id, queue in rules.queues.items()
    }
    return rules.model_copy(update={"queues": queues})


def fate_of(call: SimulatedCall, callbacks: set[str], horizon: float) -> str:
    """answered (an agent answered while they held), callback (they asked for one while holding),
    waiting (still holding when the run ended), abandoned (hung up, or the service let them go)."""
    if call.connected_at is not None:
        return "answered"
    if call.sid in callbacks:
        return "callback"
    if call.ended_at >= horizon - 1e-6:
        return "waiting"
    return "abandoned"


def run_load(
    scenario: LoadScenario,
    rules: Path,
    prompts: Path,
    estimator: str | None = None,
    queue_settings: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    compare: Mapping[str, Estimator] | None = None,
) -> LoadResult:
    """Run a load scenario in-process and pair every estimate heard, and every hold round's
    estimate, with the wait that followed. `estimator` and `queue_settings` (for example
    `{"position_only_down": False}`) are set on every queue of the rules for the run; `compare`
    names other estimators to make from the same line state at every hold round; `progress`
    counts the callers whose call has ended."""
    from ivr.services import services

    rules_path = scenario.rules or rules
    if estimator:
        check_estimator(estimator)  # refused before anything is built
    settings = {**(queue_settings or {}), **({"wait_estimate": estimator} if estimator else {})}
    override = (lambda r: on_every_queue(r, settings)) if settings else None
    talk_rng = random.Random(f"{scenario.seed}:talk")
    behaviour = AgentBehaviour(
        answer_after=scenario.answer_after,
        talk_seconds=scenario.talk.mean,
        talk=scenario.talk.sampler(talk_rng),
    )
    horizon = scenario.horizon
    with in_process(
        scenario.start, rules_path, prompts, agent=behaviour, rules_override=override
    ) as session:
        simulator = session.simulator
        simulator.limit_seconds = horizon
        bundle = services().rules.get()
        loaded = bundle.rules
        locales: dict[str, tuple[str, str]] = {}
        for code, catalog in bundle.prompts.catalogs.items():
            locales[catalog.say_language] = (code, catalog.locale)
            locales[code] = (code, catalog.locale)
        recorder = Recorder(simulator, locales, compare=dict(compare or {}))
        simulator.on_prompt = recorder
        services().switchboard.on_estimate = recorder.on_estimate
        _schedule_shifts(simulator, scenario, loaded)
        _schedule_history_reads(simulator, horizon)
        placed = _place_callers(simulator, scenario, loaded)
        if progress is not None:
            progress.expect(len(placed))
            simulator.on_call_done = lambda call: (
                progress.advance() if call.direction == "inbound" else None
            )
        simulator.run()
        hung_up = [call for _, call in placed if _hung_up_after_assignment(call)]
        unrecorded = _without_abandon([call.sid for call in hung_up])
    result = _result(scenario, estimator, simulator, recorder, placed)
    return replace(
        result,
        hung_up_after_assignment=len(hung_up),
        abandoned_after_assignment_unrecorded=unrecorded,
    )


def _wait_ended(call: SimulatedCall) -> float | None:
    """When the caller's wait ended as the line measures it: an agent picked up (the whisper then
    plays to the agent while the caller is put through); None when they never talked to one."""
    if call.connected_at is None:
        return None
    return call.answered_at if call.answered_at is not None else call.connected_at


def _hung_up_after_assignment(call: SimulatedCall) -> bool:
    """The caller was rung through to an agent (a <Dial> after holding) and never talked to one."""
    return (
        call.connected_at is None
        and bool(call.queues)
        and any(record.kind == "dial" for record in call.records)
    )


def _without_abandon(call_sids: Sequence[str]) -> int:
    """How many of these calls have no ABANDON queue event in the database (the line's history)."""
    if not call_sids:
        return 0
    from sqlalchemy import select

    from ivr.services import services
    from ivr.tickets.changes import QueueEvent
    from ivr.tickets.models import QueueEventRow

    s = services()
    s.writer.drain()
    with s.db.sessions() as session:
        recorded = set(
            session.scalars(
                select(QueueEventRow.call_sid).where(
                    QueueEventRow.event == QueueEvent.ABANDON,
                    QueueEventRow.call_sid.in_(list(call_sids)),
                )
            )
        )
    return sum(1 for sid in call_sids if sid not in recorded)


def _schedule_shifts(simulator: Simulator, scenario: LoadScenario, rules: Rules) -> None:
    for shift in scenario.shifts:
        agent = rules.agents.get(shift.agent)
        if agent is None:
            raise LoadError(
                f"{scenario.path}: no agent {shift.agent!r} in the rules "
                f"(known: {', '.join(rules.agents)})"
            )
        lines = list(rules.lines_of(agent))
        simulator.schedule(shift.login * 60.0, _status_change(shift.agent, lines, True))
        if shift.logout is not None:
            simulator.schedule(shift.logout * 60.0, _status_change(shift.agent, lines, False))


HISTORY_EVERY_SECONDS = 60.0
"""How often, in simulated time, the lines' history is read from the database, as the serving
processes' background thread does every minute (`ivr.background.refresh_histories`)."""


def _schedule_history_reads(simulator: Simulator, horizon: float) -> None:
    from ivr.background import refresh_histories
    from ivr.services import services

    def read() -> None:
        s = services()
        s.writer.drain()  # the ticket writer of production runs all the time; here, before reading
        refresh_histories(s)

    for n in range(int(horizon // HISTORY_EVERY_SECONDS) + 1):
        simulator.schedule(n * HISTORY_EVERY_SECONDS, read)


def _status_change(agent_id: str, lines: list[tuple[str, str]], login: bool) -> Callable[[], None]:
    """An agent logging in or out through the switchboard, as the agent line and API do (it logs
    the event and hands waiting callers to an agent who became free)."""
    from ivr.services import services

    def change() -> None:
        services().switchboard.agent_status(agent_id, lines, login=login)

    return change


def _place_callers(
    simulator: Simulator, scenario: LoadScenario, rules: Rules
) -> list[tuple[str, SimulatedCall]]:
    callback_key = rules.hold_keys.callback
    placed: list[tuple[str, float, str, float | None]] = []
    for stream in scenario.streams:
        rng = random.Random(f"{scenario.seed}:{stream.name}")
        for at in arrival_times(stream.arrivals, rng):
            keys = stream.keys
            if callback_key and stream.callback_share and rng.random() < stream.callback_share:
                keys += f",w{stream.callback_after:g},{callback_key}"
            patience = rng.expovariate(1 / stream.patience) if stream.patience else None
            placed.append((stream.name, at, keys, patience))
    placed.sort(key=lambda item: item[1])
    calls = []
    for index, (name, at, keys, patience) in enumerate(placed):
        call = simulator.place_call(
            f"+1415{index:07d}",
            "+18005550199",
            ScriptedCaller(parse_script(keys)),
            at=at,
            hangup_after=scenario.horizon - at,
            patience=patience,
        )
        calls.append((name, call))
    return calls


def position_rises(positions: Sequence[int]) -> int:
    """How many announcements said a higher position than the caller's previous one."""
    return sum(1 for before, after in itertools.pairwise(positions) if after > before)


def _result(
    scenario: LoadScenario,
    estimator: str | None,
    simulator: Simulator,
    recorder: Recorder,
    placed: list[tuple[str, SimulatedCall]],
) -> LoadResult:
    horizon = scenario.horizon
    done: dict[str, list[float]] = {}
    for _, call in placed:
        if call.agent_done_at is not None and call.queues:
            done.setdefault(call.queues[-1], []).append(call.agent_done_at)
    for times in done.values():
        times.sort()
    pairs: list[Pair] = []
    fates: Counter[str] = Counter()
    by_stream: dict[str, Counter[str]] = {}
    for name, call in placed:
        fate = fate_of(call, recorder.callbacks, horizon)
        fates[fate] += 1
        by_stream.setdefault(name, Counter())[fate] += 1
        for index, heard in enumerate(recorder.heard.get(call.sid, [])):
            actual = None if (end := _wait_ended(call)) is None else end - heard.at
            pairs.append(
                Pair(
                    call=call.sid,
                    queue=heard.queue,
                    language=heard.language,
                    at=round(heard.at, 1),
                    instant=(scenario.start + timedelta(seconds=heard.at)).isoformat(),
                    prompt=heard.prompt,
                    text=heard.text,
                    low=heard.low,
                    high=heard.high,
                    point=heard.point,
                    position=heard.position,
                    first=index == 0,
                    actual=None if actual is None else round(actual, 1),
                    fate=fate,
                    history=bisect.bisect_left(done.get(heard.queue, []), heard.at),
                )
            )
    calls = {call.sid: call for _, call in placed}
    rounds = []
    for at, made, estimates in recorder.estimated:
        held = calls.get(made.call_sid)
        if held is None:
            continue
        rounds.append(
            Round(
                call=held.sid,
                queue=made.place.queue,
                language=made.place.language,
                at=round(at, 1),
                position=made.place.position,
                priority=made.place.priority,
                agents_available=made.load.agents_available,
                agents_busy=made.load.agents_busy,
                estimates=estimates,
                actual=None if (end := _wait_ended(held)) is None else round(end - at, 1),
                fate=fate_of(held, recorder.callbacks, horizon),
                history=bisect.bisect_left(done.get(made.place.queue, []), at),
            )
        )
    connects = [
        c.answered_at - c.assigned_at
        for _, c in placed
        if c.assigned_at is not None and c.answered_at is not None and c.connected_at is not None
    ]
    whispers = [
        c.connected_at - c.answered_at
        for _, c in placed
        if c.answered_at is not None and c.connected_at is not None
    ]
    callbacks = [c for c in simulator.calls.values() if c.direction == "outbound-api"]
    errors = [e for c in simulator.calls.values() for e in c.errors]
    return LoadResult(
        scenario=scenario,
        estimator=estimator,
        pairs=pairs,
        calls=len(placed),
        positions_heard=sum(len(call.positions) for _, call in placed),
        position_rises=sum(position_rises(call.positions) for _, call in placed),
        fates=dict(sorted(fates.items())),
        by_stream={k: dict(sorted(v.items())) for k, v in by_stream.items()},
        callbacks_placed=len(callbacks),
        errors=errors,
        unread=recorder.unread,
        rounds=rounds,
        connect_seconds=statistics.median(connects) if connects else None,
        whisper_seconds=statistics.median(whispers) if whispers else None,
    )


# --- the command -------------------------------------------------------------------------------


def result_lines(result: LoadResult) -> list[str]:
    """What `ivr simulate --load` prints for one scenario."""
    from ivr.simulator.accuracy import summary_lines

    scenario = result.scenario
    fates = ", ".join(f"{k} {v}" for k, v in result.fates.items()) or "-"
    lines = [
        f"load {scenario.name} ({scenario.path}): from {scenario.start:%Y-%m-%d %H:%M} UTC, "
        f"callers arrive for {scenario.duration:g} min, run ends {scenario.drain:g} min later; "
        f"estimator: {result.estimator or 'as in the rules'}",
        f"{result.calls} calls: {fates}; {result.callbacks_placed} callbacks placed",
    ]
    for name, counts in result.by_stream.items():
        lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines += summary_lines(result.summary()["queues"], HISTORY_FOR_TARGETS)
    lines.append(
        f"positions heard: {result.positions_heard}, of which higher than the caller's previous "
        f"one: {result.position_rises}"
    )
    if result.unread:
        lines.append(f"estimates not read back: {len(result.unread)}, e.g. {result.unread[0]}")
    for check in result.target_checks():
        lines.append(f"target {'met' if check.met else 'MISSED'}: {check.target}: {check.measured}")
    lines.append(f"errors: {len(result.errors)}")
    lines += [f"  {error}" for error in result.errors[:20]]
    return lines


def load_command(
    files: list[Path],
    rules: Path,
    prompts: Path,
    estimator: str | None,
    as_json: bool,
    out: Any,
    show_progress: bool = False,
) -> int:
    """`ivr simulate --load FILE...`: run each scenario, print its figures (or JSON lines: one per
    estimate heard, then the summary); exit 1 if a call met an error or a target was missed (each
    missed target is said on stderr too, whatever the format)."""
    import json
    import sys

    if estimator:
        check_estimator(estimator)
    scenarios = [load_scenario(f) for f in files]  # every file is checked before any runs
    failed = False
    for scenario in scenarios:
        with Progress(show_progress, f"load {scenario.name}", "callers") as progress:
            result = run_load(scenario, rules, prompts, estimator, progress=progress)
        missed = [check for check in result.target_checks() if not check.met]
        failed = failed or bool(result.errors) or bool(missed)
        if as_json:
            for pair in result.pairs:
                record = {"kind": "estimate", "scenario": scenario.name, **pair.as_record()}
                print(json.dumps(record, ensure_ascii=False), file=out)
            print(json.dumps({"kind": "summary", **result.summary()}, ensure_ascii=False), file=out)
        else:
            for line in result_lines(result):
                print(line, file=out)
        for check in missed:
            print(
                f"ivr simulate: {scenario.name}: target missed: {check.target}: {check.measured}",
                file=sys.stderr,
            )
    return 1 if failed else 0
