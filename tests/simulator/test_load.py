"""Load runs (`ivr simulate --load`): what QA reads about the announced waits, and how it is computed."""

from __future__ import annotations

import json
import random
import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from ivr.cli import main
from ivr.rules.check import load_bundle
from ivr.simulator import load as load_module
from ivr.simulator.accuracy import (
    OVERALL,
    Pair,
    bias_words,
    figures,
    heard_interval,
    said_minutes,
    summarize,
)
from ivr.simulator.engine import AgentBehaviour
from ivr.simulator.load import (
    Arrivals,
    LoadError,
    Targets,
    arrival_times,
    check_estimator,
    load_scenario,
    on_every_queue,
    run_load,
)
from ivr.switchboard import EstimateMade
from ivr.waits import WaitEstimate, say_minutes
from tests.support import PROMPTS, RULES

WAITS = Path(__file__).resolve().parents[2] / "scenarios" / "waits"
RULES_COPY = WAITS / "rules" / "routing_rules.yaml"
"""The emergency scenario's rules: the shipped ones with `security` added to the funds agents."""
LOCALES = {"en-US": "en_US", "de-DE": "de_DE", "fr-FR": "fr_FR", "zh-CN": "zh_CN"}


def pair(point: float, actual: float | None, low: float = 0, high: float = 0, **kw: object) -> Pair:
    values: dict[str, object] = {
        "call": "CA1",
        "queue": "funds",
        "language": "en-US",
        "at": 0.0,
        "instant": "",
        "prompt": "queue_wait",
        "text": "",
        "low": low,
        "high": high,
        "point": point,
        "position": 1,
        "first": True,
        "actual": actual,
        "fate": "answered" if actual is not None else "abandoned",
        "history": 0,
    }
    values.update(kw)
    return Pair(**values)  # type: ignore[arg-type]


# --- the figures on hand-made pairs -------------------------------------------------------------


def test_figures_of_hand_made_pairs() -> None:
    pairs = [
        pair(300, 200, low=240, high=360),  # told 5 min, waited 200 s: 100 s early, outside
        pair(300, 400, low=240, high=360),  # 100 s late, outside
        pair(120, 90, low=60, high=180),  # 30 s early, inside
        pair(600, 600, low=540, high=660),  # exact, inside
        pair(300, None),  # abandoned: not measured
    ]
    result = figures(pairs)
    assert result.measured == 4
    assert result.mae_seconds == pytest.approx((100 + 100 + 30 + 0) / 4)
    assert result.mean_actual_seconds == pytest.approx((200 + 400 + 90 + 600) / 4)
    assert result.mae_percent == pytest.approx(100 * 57.5 / 322.5)
    assert result.median_relative_error == pytest.approx(statistics.median([0.5, 0.25, 1 / 3, 0]))
    assert result.bias_seconds == pytest.approx((100 - 100 + 30 + 0) / 4)
    assert result.inside_share == pytest.approx(0.5)


def test_bias_says_early_when_callers_were_answered_before_the_time_told() -> None:
    early = figures([pair(600, 300), pair(600, 500)]).bias_seconds
    late = figures([pair(60, 300)]).bias_seconds
    assert early is not None and early > 0 and bias_words(early) == "+200 s (early)"
    assert late is not None and late < 0 and bias_words(late) == "-240 s (late)"


def test_median_relative_error_leaves_out_callers_answered_at_once() -> None:
    result = figures([pair(60, 0), pair(120, 60)])
    assert result.median_relative_error == pytest.approx(1.0)  # only |120 - 60| / 60
    assert result.mae_seconds == pytest.approx(60)


def test_summary_per_queue_counts_callers_by_their_first_estimate() -> None:
    pairs = [
        pair(300, 320, low=240, high=360, call="CA1"),
        pair(240, 260, low=180, high=300, call="CA1", first=False),
        pair(300, None, call="CA2", fate="callback"),
        pair(60, 30, low=0, high=120, call="CA3", queue="security"),
    ]
    summary = summarize(pairs)
    assert list(summary) == [OVERALL, "funds", "security"]
    funds = summary["funds"]
    assert (funds["announcements"], funds["callers"], funds["callers_measured"]) == (3, 2, 1)
    assert funds["fates"] == {"answered": 1, "callback": 1}
    assert funds["every_announcement"]["measured"] == 2
    assert funds["first_announcement"]["mae_seconds"] == pytest.approx(20)
    assert summary[OVERALL]["callers"] == 3


# --- reading the words back ---------------------------------------------------------------------


@pytest.mark.parametrize("language", sorted(LOCALES))
@pytest.mark.parametrize("minutes", [1, 5, 59])
def test_about_n_minutes_reads_back_in_every_language(language: str, minutes: int) -> None:
    locale = LOCALES[language]
    told = heard_interval("queue_wait", {"wait": say_minutes(minutes, locale)}, locale)
    assert told is not None
    assert (told.low, told.high, told.point) == (
        (minutes - 1) * 60,
        (minutes + 1) * 60,
        minutes * 60,
    )


@pytest.mark.parametrize("language", sorted(LOCALES))
def test_hours_read_back_as_the_minutes_babel_says_that_way(language: str) -> None:
    locale = LOCALES[language]
    words = say_minutes(240, locale)  # "4 hours", "4 Stunden", "4 heures" (no-break space), "4小时"
    assert say_minutes(250, locale) == words  # from three hours on, Babel rounds to hours
    assert "100" in say_minutes(100, locale)  # below three hours, minutes
    # The simulator hears whitespace runs as one space (French has a no-break space).
    told = heard_interval("queue_wait", {"wait": " ".join(words.split())}, locale)
    assert told is not None
    assert told.point == 240 * 60
    assert told.low <= 210 * 60 and told.high >= 269 * 60
    assert said_minutes(say_minutes(60, locale), locale) == 60


@pytest.mark.parametrize("language", sorted(LOCALES))
def test_less_than_and_between_read_back(language: str) -> None:
    locale = LOCALES[language]
    under = heard_interval("queue_wait_under", {"wait": say_minutes(10, locale)}, locale)
    between = heard_interval(
        "queue_wait_between",
        {"low": say_minutes(3, locale), "high": say_minutes(9, locale)},
        locale,
    )
    assert under is not None and (under.low, under.high, under.point) == (0, 600, 300)
    assert between is not None and (between.low, between.high, between.point) == (180, 540, 360)


def test_bare_numbers_and_unknown_words() -> None:
    bare = heard_interval("queue_wait_between", {"low": "3", "high": "6"}, "en_US")
    assert bare is not None and (bare.low, bare.high) == (180, 360)
    assert heard_interval("queue_wait", {"wait": "a while"}, "en_US") is None
    assert heard_interval("queue_position", {"position": "3"}, "en_US") is None


# --- the pieces of a run ------------------------------------------------------------------------


def test_conversations_are_drawn_one_by_one_or_constant_as_before() -> None:
    assert AgentBehaviour(talk_seconds=42).conversation_seconds() == 42
    rng = random.Random(3)
    drawn = AgentBehaviour(talk=lambda: rng.uniform(10, 20))
    lengths = {drawn.conversation_seconds() for _ in range(5)}
    assert len(lengths) == 5 and all(10 <= s <= 20 for s in lengths)


def test_lognormal_talk_has_the_mean_and_sd_asked_for() -> None:
    sample = load_module.Talk(240, 120).sampler(random.Random(5))
    values = [sample() for _ in range(20000)]
    assert statistics.fmean(values) == pytest.approx(240, rel=0.03)
    assert statistics.stdev(values) == pytest.approx(120, rel=0.08)


def test_exponential_talk_has_its_mean_as_its_sd_and_fixed_talk_is_the_mean() -> None:
    sample = load_module.Talk(240, distribution="exponential").sampler(random.Random(5))
    values = [sample() for _ in range(20000)]
    assert statistics.fmean(values) == pytest.approx(240, rel=0.03)
    assert statistics.stdev(values) == pytest.approx(240, rel=0.05)
    fixed = load_module.Talk(240, distribution="fixed").sampler(random.Random(5))
    assert {fixed() for _ in range(10)} == {240}


def test_talk_and_patience_distributions_are_read_from_the_scenario(tmp_path: Path) -> None:
    good = yaml.safe_load((WAITS / "steady.yaml").read_text())
    stream = {"keys": "2,2,2", "arrivals": [{"per_hour": 9}]}
    path = tmp_path / "options.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                **good,
                "talk": {"distribution": "exponential", "mean": 240},
                "callers": [
                    {**stream, "patience": {"distribution": "exponential", "mean": 300}},
                    {**stream, "patience": {"mean": 300}},
                    {**stream, "patience": 300},
                ],
            }
        )
    )
    scenario = load_scenario(path)
    assert (scenario.talk.distribution, scenario.talk.mean) == ("exponential", 240)
    assert [s.patience for s in scenario.streams] == [300, 300, 300]
    steady = load_scenario(WAITS / "steady.yaml").talk
    assert (steady.distribution, steady.mean, steady.sd) == ("lognormal", 240, 120)


def test_arrivals_are_poisson_per_period_and_seeded() -> None:
    periods = (Arrivals(0, 60, 60), Arrivals(60, 120, 0), Arrivals(120, 180, 600))
    times = arrival_times(periods, random.Random(9))
    assert times == arrival_times(periods, random.Random(9))
    assert times == sorted(times)
    assert not [t for t in times if 3600 <= t < 7200]  # nobody in the empty hour
    assert 40 <= sum(1 for t in times if t < 3600) <= 85
    assert 520 <= sum(1 for t in times if t >= 7200) <= 680


def test_a_scenario_with_a_mistake_is_refused_naming_the_key(tmp_path: Path) -> None:
    good = yaml.safe_load((WAITS / "steady.yaml").read_text())
    for change, words in [
        ({"arrivals_per_hour": 3}, "unknown keys arrivals_per_hour"),
        ({"start": "2026-11-23 10:00"}, "start: "),
        (
            {"callers": [{"keys": "2,2,2", "arrivals": [{"from": 0, "to": 500, "per_hour": 9}]}]},
            "callers[0]: arrivals[0]: needs from < to",
        ),
        ({"callers": [{"keys": "2,x", "arrivals": [{"per_hour": 9}]}]}, "callers[0]: keys: 'x'"),
        ({"agents": []}, "agents: must be a non-empty list"),
        ({"targets": {"mae": 25}}, "targets: unknown keys mae (known: mae_percent,"),
        ({"targets": {"inside_percent": 80}}, "targets: inside_percent must be [low, high]"),
        ({"targets": {"inside_percent": [85, 75]}}, "inside_percent needs low <= high <= 100"),
        ({"targets": {"position_rises": -1}}, "targets: position_rises must be a number >= 0"),
        (
            {"talk": {"distribution": "exponential", "mean": 240, "sd": 120}},
            "bad.yaml: talk: sd is for the lognormal distribution only; exponential takes the "
            "mean alone",
        ),
        ({"talk": {"distribution": "fixed", "mean": 240, "sd": 1}}, "talk: sd is for the"),
        (
            {"talk": {"distribution": "gamma", "mean": 240}},
            "talk: distribution must be one of lognormal, exponential, fixed (got 'gamma')",
        ),
        ({"talk": {"mean": 240, "cv": 1}}, "talk: unknown keys cv"),
        (
            {"callers": [{"keys": "2", "arrivals": [{"per_hour": 9}], "patience": {"mean": -1}}]},
            "callers[0]: patience: mean must be a number >= 0",
        ),
        (
            {
                "callers": [
                    {
                        "keys": "2",
                        "arrivals": [{"per_hour": 9}],
                        "patience": {"distribution": "lognormal", "mean": 300},
                    }
                ]
            },
            "callers[0]: patience: distribution must be exponential (got 'lognormal')",
        ),
    ]:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**good, **change}))
        with pytest.raises(LoadError, match=re.escape(words)):
            load_scenario(path)


def test_every_shipped_scenario_loads_and_names_agents_of_its_rules() -> None:
    files = sorted(WAITS.glob("*.yaml"))  # what --load scenarios/waits/*.yaml takes
    names = {f.stem for f in files}
    assert names == {
        "steady",
        "peak",
        "agents_logout",
        "callbacks_abandon",
        "emergency",
        *ERLANG,
        "steady_cv1",
        "steady_20",
    }
    for name in names:
        scenario = load_scenario(WAITS / f"{name}.yaml")
        rules = load_bundle(scenario.rules or RULES, PROMPTS).rules
        assert {s.agent for s in scenario.shifts} <= set(rules.agents), name
        assert scenario.start.weekday() == 0 and scenario.start.hour == 15  # 10:00 New York


ERLANG = {
    "erlang_c_s4_072",
    "erlang_c_s4_084",
    "erlang_c_s4_095",
    "erlang_c_s20_090",
    "erlang_a_s4_084",
    "erlang_a_s4_119",
    "erlang_a_s20_109",
}
CONNECT_SECONDS = 11.2
"""On the single-line rules with answer_after 0: "connecting" (4.8 s) and the whisper (6.4 s)."""


@pytest.mark.parametrize("name", sorted(ERLANG))
def test_each_erlang_scenario_is_the_model_its_name_says(name: str) -> None:
    scenario = load_scenario(WAITS / f"{name}.yaml")
    _, model, agents, load = name.split("_")
    (stream,) = scenario.streams
    (arrivals,) = stream.arrivals
    # One line, every agent there from minute 0 to the end, Poisson arrivals all along.
    assert scenario.rules == WAITS / "rules" / "single_line.yaml"
    assert scenario.answer_after == 0 and stream.keys == "0"
    assert [(s.login, s.logout) for s in scenario.shifts] == [(0, None)] * int(agents[1:])
    assert (arrivals.start, arrivals.end) == (0, scenario.duration)
    assert (scenario.talk.distribution, scenario.talk.mean) == ("exponential", 240)
    assert stream.patience == (300 if model == "a" else None)
    assert stream.callback_share == 0
    # The load the name says: per_hour / 3600 x (talk mean + connect time) / agents.
    offered = arrivals.per_hour / 3600 * (240 + CONNECT_SECONDS) / int(agents[1:])
    assert offered == pytest.approx(int(load) / 100, abs=0.005)
    # Enough callers: ~700 at 4 agents, ~1,500 at 20.
    callers = arrivals.per_hour * scenario.duration / 60
    assert callers >= (690 if agents == "s4" else 1500)
    # The seed draws (as run_load does: one generator per stream, one for talk) the callers, talk
    # mean and patience the file says, give or take 1% (2% for patience): the run is its model.
    rng = random.Random(f"{scenario.seed}:{stream.name}")
    drawn = arrival_times(stream.arrivals, rng)
    assert len(drawn) == pytest.approx(callers, rel=0.01)
    talk = scenario.talk.sampler(random.Random(f"{scenario.seed}:talk"))
    assert statistics.fmean(talk() for _ in drawn) == pytest.approx(240, rel=0.01)
    if stream.patience:
        patience = [rng.expovariate(1 / stream.patience) for _ in drawn]
        assert statistics.fmean(patience) == pytest.approx(300, rel=0.02)


def test_the_single_line_rules_pass_ivr_check_and_have_one_queue_open_around_the_clock() -> None:
    single = WAITS / "rules" / "single_line.yaml"
    assert main(["check", str(single), "--prompts", str(PROMPTS)]) == 0
    rules = load_bundle(single, PROMPTS).rules
    assert list(rules.queues) == ["funds"] and rules.operator_queue == "funds"
    (team,) = rules.teams.values()
    assert all(day == (team.weekly[0][0],) for day in team.weekly.values())
    assert (team.weekly[0][0].start, team.weekly[0][0].end, len(team.weekly)) == (0, 1440, 7)
    assert len(rules.agents) == 20
    assert all(agent.queues == ("funds",) for agent in rules.agents.values())


def test_the_emergency_rules_copy_differs_only_in_its_agents() -> None:
    shipped = load_bundle(RULES, PROMPTS).rules
    copy = load_bundle(RULES_COPY, PROMPTS).rules
    assert copy.model_dump(exclude={"agents"}) == shipped.model_dump(exclude={"agents"}), (
        "routing_rules.yaml changed: copy it to scenarios/waits/rules/ again (see the copy's header)"
    )
    assert "security" in copy.agents["emma"].queues
    assert "security" not in shipped.agents["emma"].queues


def test_estimator_is_set_on_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = load_bundle(RULES, PROMPTS).rules
    changed = on_every_queue(rules, {"wait_estimate": "formula", "position_only_down": False})
    assert {q.wait_estimate for q in changed.queues.values()} == {"formula"}
    assert {q.position_only_down for q in changed.queues.values()} == {False}
    assert set(changed.queues) == set(rules.queues)

    class Old:
        model_fields: ClassVar[dict[str, object]] = {}

    monkeypatch.setattr(load_module, "Queue", Old)
    with pytest.raises(LoadError, match="wait_estimate, which this version"):
        check_estimator("live")


# --- a small run, end to end --------------------------------------------------------------------

SMALL = {
    "name": "small",
    "start": "2026-11-23T15:00:00Z",
    "duration_minutes": 12,
    "drain_minutes": 10,
    "seed": 4,
    "agents": [{"id": "emma", "login": 0}, {"id": "li_wei", "login": 0, "logout": 6}],
    "talk": {"mean": 200, "sd": 60},
    "callers": [
        {
            "name": "withdrawal",
            "keys": "2,2,2",
            "arrivals": [{"from": 0, "to": 12, "per_hour": 110}],
            "patience": 240,
        }
    ],
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> load_module.LoadResult:
    path = tmp_path_factory.mktemp("load") / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return run_load(load_scenario(path), RULES, PROMPTS, compare={"twice": twice_the_line})


def twice_the_line(made: EstimateMade) -> WaitEstimate | None:
    """A compared estimator for the tests: twice what the line said, from the same state."""
    said = made.estimate
    return None if said is None else WaitEstimate(2 * said.median, 2 * said.low, 2 * said.high)


def test_every_hold_round_is_paired_with_the_wait_that_followed(
    small_run: load_module.LoadResult,
) -> None:
    rounds = small_run.rounds
    assert len(rounds) > len(small_run.pairs)  # the position rule says a wait only when it is news
    assert all(r.queue == "funds" and r.language == "en-US" and r.position >= 1 for r in rounds)
    assert all(set(r.estimates) == {"live", "twice"} for r in rounds)
    assert all(r.estimates["twice"].median == 2 * r.estimates["live"].median for r in rounds)
    answered = [r for r in rounds if r.actual is not None]
    assert answered and all(r.fate == "answered" and r.actual >= 0 for r in answered)
    assert all(r.actual is None for r in rounds if r.fate != "answered")
    # A caller's rounds come in time order, each later one with less of the wait left.
    by_call: dict[str, list[float]] = {}
    for r in answered:
        by_call.setdefault(r.call, []).append(r.actual or 0.0)
    assert all(waits == sorted(waits, reverse=True) for waits in by_call.values())
    assert any(r.all_busy for r in rounds)


def test_callers_who_hang_up_after_an_agent_was_assigned_are_counted_and_in_the_history(
    small_run: load_module.LoadResult,
) -> None:
    # Patience no longer runs while a caller is put through, so nobody here hangs up then; the
    # switchboard's ABANDON for those who do is tested with the webhooks (test_agent_calls).
    assert small_run.hung_up_after_assignment == 0
    assert small_run.abandoned_after_assignment_unrecorded == 0
    summary = small_run.summary()
    assert summary["hold_rounds_estimated"] == len(small_run.rounds)


def test_a_small_run_pairs_estimates_with_the_waits_that_followed(
    small_run: load_module.LoadResult,
) -> None:
    result = small_run
    assert result.errors == [] and result.unread == []
    assert result.calls == sum(result.fates.values()) >= 12
    assert result.fates.get("abandoned", 0) >= 1  # short patience, two agents then one
    assert result.fates.get("answered", 0) >= 1
    measured = [p for p in result.pairs if p.actual is not None]
    assert measured, "some caller heard an estimate and then reached an agent"
    assert all(p.actual is not None and p.actual >= 0 for p in measured)
    assert all(p.low <= p.point <= p.high for p in result.pairs)
    assert all(p.queue == "funds" and p.language == "en-US" for p in result.pairs)
    assert all(p.prompt.startswith("queue_wait") and p.text for p in result.pairs)
    # Each caller's estimates come in time order, the first one marked; waits shrink along.
    by_call: dict[str, list[Pair]] = {}
    for p in result.pairs:
        by_call.setdefault(p.call, []).append(p)
    for heard in by_call.values():
        assert [p.first for p in heard] == [True] + [False] * (len(heard) - 1)
        assert [p.at for p in heard] == sorted(p.at for p in heard)
        assert len({p.fate for p in heard}) == 1
    abandoned_heard = [p for p in result.pairs if p.fate == "abandoned"]
    assert all(p.actual is None for p in abandoned_heard)


def test_a_small_run_summary_agrees_with_its_pairs(small_run: load_module.LoadResult) -> None:
    summary = small_run.summary()
    funds = summary["queues"]["funds"]
    pairs = small_run.pairs
    measured = [p for p in pairs if p.actual is not None]
    firsts = [p for p in pairs if p.first]
    assert funds["announcements"] == len(pairs)
    assert funds["callers"] == len({p.call for p in pairs}) == len(firsts)
    assert funds["callers_measured"] == sum(1 for p in firsts if p.actual is not None)
    assert sum(funds["fates"].values()) == funds["callers"]
    every = funds["every_announcement"]
    assert every["measured"] == len(measured)
    assert every["mae_seconds"] == pytest.approx(
        statistics.fmean(abs(p.point - (p.actual or 0)) for p in measured)
    )
    assert every["inside_share"] == pytest.approx(
        sum(1 for p in measured if p.low <= (p.actual or 0) <= p.high) / len(measured)
    )
    assert summary["fates"]["abandoned"] >= funds["fates"].get("abandoned", 0)


def test_load_command_prints_figures_and_json_lines(
    small_run: load_module.LoadResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    args = ["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--load", str(path)]
    assert main([*args, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in records[:-1]] == ["estimate"] * len(small_run.pairs)
    assert records[-1]["kind"] == "summary"
    assert records[-1]["queues"] == json.loads(json.dumps(small_run.summary()["queues"]))
    assert main([*args, "--estimator", "formula"]) == 0
    text = capsys.readouterr().out
    assert "estimator: formula" in text
    assert "funds: " in text and "MAE " in text and "inside " in text


def test_estimator_without_load_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--estimator", "live", "--keys", "2"]) == 2
    assert "--estimator applies to --load" in capsys.readouterr().err


URGENT = {
    "name": "urgent",
    "start": "2026-11-23T15:00:00Z",
    "duration_minutes": 20,
    "drain_minutes": 5,
    "seed": 3,
    "rules": str(RULES_COPY),
    "agents": [{"id": "sec_desk", "login": 0}],
    "talk": {"mean": 240, "sd": 60},
    "callers": [
        {"name": "other", "keys": "2,3,3", "arrivals": [{"from": 0, "to": 6, "per_hour": 60}]},
        {
            "name": "compromised",
            "keys": "2,3,1",
            "arrivals": [{"from": 6, "to": 20, "per_hour": 30}],
        },
    ],
}


def test_urgent_callers_going_ahead_never_make_anyone_hear_a_higher_position(
    tmp_path: Path,
) -> None:
    path = tmp_path / "urgent.yaml"
    path.write_text(yaml.safe_dump(URGENT))
    scenario = load_scenario(path)
    # Without the rule, callers pushed back by emergencies hear their new, higher place ...
    plain = run_load(scenario, RULES, PROMPTS, queue_settings={"position_only_down": False})
    assert plain.errors == [] and plain.position_rises > 0
    # ... with it (the shipped default), never.
    kept = run_load(scenario, RULES, PROMPTS)
    assert kept.errors == [] and kept.positions_heard > 0 and kept.position_rises == 0


def test_position_rises_count_only_announcements_above_the_previous_one() -> None:
    assert load_module.position_rises([5, 4, 4, 6, 3, 7]) == 2
    assert load_module.position_rises([]) == 0


# --- targets: a scenario's own, and the exit status ------------------------------------------


def test_targets_are_judged_on_the_estimates_heard_after_30_conversations(
    small_run: load_module.LoadResult,
) -> None:
    late = {"history": load_module.HISTORY_FOR_TARGETS}
    pairs = [
        pair(100, 200, low=50, high=150, **late),  # 100 s off, outside what was said
        pair(100, 120, low=50, high=150, **late),  # 20 s off, inside
        pair(600, 100, low=0, high=900, history=2),  # heard too early to count
    ]
    asked = Targets(mae_percent=40, inside_percent=(40, 60), position_rises=0)
    result = replace(
        small_run,
        scenario=replace(small_run.scenario, targets=asked),
        pairs=pairs,
        position_rises=1,
    )
    checks = [(c.measured, c.met) for c in result.target_checks()]
    # MAE 60 s of a mean wait of 160 s: 37.5%; one of two inside; one position heard higher.
    assert checks == [("37.5%", True), ("50.0%", True), ("1", False)]
    assert result.target_checks()[2].target == (
        "at most 0 positions heard higher than the caller's previous one"
    )
    stricter = replace(result.scenario, targets=Targets(mae_percent=30, inside_percent=(75, 85)))
    assert [c.met for c in replace(result, scenario=stricter).target_checks()] == [False, False]
    nothing = replace(result, pairs=pairs[2:])  # no estimate late enough: a target is not met
    assert [(c.measured, c.met) for c in nothing.target_checks()][:2] == [
        ("nothing measured", False),
        ("nothing measured", False),
    ]


def test_a_missed_target_makes_the_load_run_exit_1_and_say_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "targets": {"mae_percent": 25, "position_rises": 0}}))
    args = ["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--load", str(path)]
    # The run is too short for 30 conversations: the MAE target cannot be met.
    missed = (
        "small: target missed: MAE at most 25% of the mean wait, after 30+ conversations: "
        "nothing measured"
    )
    assert main([*args, "--json"]) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert [(t["met"], t["measured"]) for t in summary["targets"]] == [
        (False, "nothing measured"),
        (True, "0"),
    ]
    assert err == f"ivr simulate: {missed}\n"
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert (
        "target MISSED: MAE at most 25% of the mean wait, after 30+ conversations: nothing measured"
        in out.splitlines()
    )
    assert "target met: at most 0 positions heard higher than the caller's previous one: 0" in out
    assert err == f"ivr simulate: {missed}\n"


def test_a_load_run_that_meets_its_targets_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "targets": {"position_rises": 0}}))
    args = ["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--load", str(path)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "target met: at most 0 positions heard higher than the caller's previous one: 0" in out
    assert "MISSED" not in out and err == ""


def test_the_shipped_scenarios_state_the_targets_of_docs_waits_md() -> None:
    for path in sorted(WAITS.glob("*.yaml")):
        assert load_scenario(path).targets.position_rises == 0, path.name
    steady = load_scenario(WAITS / "steady.yaml").targets
    assert (steady.mae_percent, steady.inside_percent) == (None, (75, 85))
