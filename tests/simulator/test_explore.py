"""`ivr simulate --explore`: the walk over the shipped rules, planted problems, and the graph checks."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.flow import CallState, Flow
from ivr.hours import hours_on, status
from ivr.rules.check import load_bundle
from ivr.simulator import explore as explore_module
from ivr.simulator.engine import Record
from ivr.simulator.explore import (
    END,
    EXIT,
    KEYS,
    LET_GO,
    ExploreReport,
    MenuGraph,
    Problem,
    describe,
    explore,
    kept_silent,
    loops_without_exit,
    preset_instant,
    state_of,
    unreached_menus,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "routing_rules.yaml"
PROMPTS = ROOT / "voice_prompts"
DEAD_END_RULES = Path(__file__).parent / "fixtures" / "dead_end_rules.yaml"
AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
"""Monday 16:00 in Berlin: europe, americas, supervisors and the security desk are open, asia not."""
AT_TEXT = "2026-11-23 16:00 Europe/Berlin"
AGENTS = ("li_wei", "emma", "lucas", "anna", "sec_desk")


@pytest.fixture(scope="module")
def shipped() -> ExploreReport:
    return explore(RULES, PROMPTS, AT, AGENTS)


@pytest.fixture(scope="module")
def dead_end() -> ExploreReport:
    return explore(DEAD_END_RULES, PROMPTS, AT, AGENTS)


def kinds(report: ExploreReport, kind: str) -> dict[str, Problem]:
    return {p.keys: p for p in report.problems if p.kind == kind}


def copy_prompts(tmp_path: Path) -> Path:
    prompts = tmp_path / "voice_prompts"
    shutil.copytree(PROMPTS, prompts)
    return prompts


def edit(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    edited = re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert edited != text, f"{pattern!r} not found in {path}"
    path.write_text(edited, encoding="utf-8")


# --- the shipped rules ----------------------------------------------------------------------------


def test_shipped_rules_have_no_problems(shipped: ExploreReport) -> None:
    assert [p.line() for p in shipped.problems] == []
    assert shipped.complete


def test_walk_visits_every_menu_in_every_language(shipped: ExploreReport) -> None:
    menus = load_bundle(RULES, PROMPTS).rules.menus
    assert shipped.graph.menus == set(menus)
    named = {describe(state) for state in shipped.graph.paths}
    for language in ("zh-CN", "en-US", "fr-FR", "de-DE"):
        assert {f"menu {menu} ({language})" for menu in menus} <= named
    assert "the language menu" in named


def test_every_key_is_tried_at_every_state(shipped: ExploreReport) -> None:
    assert set(shipped.graph.edges) == set(shipped.graph.paths)
    for state, edges in shipped.graph.edges.items():
        assert tuple(edges)[: len(KEYS)] == KEYS
        spoken = tuple(edges)[len(KEYS) :]
        # Only the main menu listens: there, every phrase and an off-topic sentence are said too.
        assert bool(spoken) == ("menu=main" in state and "step=menu" in state), state
        assert all(step.startswith('"') and step.endswith('"') for step in spoken)


def test_keys_lead_where_the_rules_say(shipped: ExploreReport) -> None:
    paths = {describe(state): path for state, path in shipped.graph.paths.items()}
    assert paths["menu main (en-US)"] == ("2",)
    assert paths["menu account (fr-FR)"] == ("3", "1")
    # Asia is closed at 23:00 in Shanghai: Chinese callers get the after-hours offer ...
    # (by keys 1, 1, 1, or sooner by words at the main menu, which listens: 1, "登录").
    offer = paths["the after-hours offer of queue account from menu account (zh-CN)"]
    assert offer[0] == "1" and offer in (("1", "1", "1"), ("1", '"登录"'))
    # ... while the others join the queue and reach an agent.
    english = state_of("/voice/input?step=menu&language=en-US&menu=account&tries=0")
    assert shipped.graph.edges[english]["1"] == EXIT
    assert shipped.graph.edges[english]["#"] == state_of(
        "/voice/input?step=menu&language=en-US&menu=main&tries=0"
    )


def test_most_requests_are_answered_from_the_walk_itself(shipped: ExploreReport) -> None:
    # Each call replays the keys before its last; the app answers about one request per call.
    assert shipped.requests < 3 * shipped.calls


# --- planted problems -----------------------------------------------------------------------------


def test_dead_end_fixture_passes_ivr_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DEAD_END_RULES), "--prompts", str(PROMPTS)]) == 0
    assert "ok" in capsys.readouterr().out


def test_planted_dead_end_is_reported_with_its_keys(dead_end: ExploreReport) -> None:
    dead = kinds(dead_end, "dead_end")
    problem = dead["2 > 4 > t > t > t"]  # English, "a complaint", then silence until hung up on
    assert problem.path == ("2", "4", "t", "t", "t")
    assert "queue supervisors from menu main (en-US)" in problem.message
    assert "the service hangs up" in problem.message
    assert problem.line().startswith("dead end at 2 > 4 > t > t > t: ")
    # The same in every language; with after-hours voicemail off, asia's closed queues too.
    assert {"1 > 4 > t > t > t", "3 > 4 > t > t > t", "4 > 4 > t > t > t"} <= set(dead)
    assert {p.kind for p in dead_end.problems} == {"dead_end"}  # "#" always leads back out


def test_wrong_language_is_reported(tmp_path: Path) -> None:
    prompts = copy_prompts(tmp_path)
    edit(prompts / "fr-FR.yaml", r"^say_language: fr-FR", "say_language: en-US")
    edit(prompts / "fr-FR.yaml", r"^voice: Polly\.\w+", "voice: Polly.Joanna")  # an en-US voice
    load_bundle(RULES, prompts)  # still valid: only what Twilio is told to speak changed
    report = explore(RULES, prompts, AT, AGENTS, max_depth=1)
    wrong = kinds(report, "wrong_language")
    assert list(wrong) == ["3"]
    problem = wrong["3"]
    assert problem.details["language"] == "fr-FR"
    assert problem.details["heard"] == "en-US"
    assert "main_intro" in problem.details["prompts"]
    assert "after choosing fr-FR the caller hears en-US" in problem.message


ENGLISH = "Please choose from the following options."


def test_english_text_in_the_german_catalog_is_reported(tmp_path: Path) -> None:
    # Spoken by the German voice, so the <Say language> check alone cannot see it: the text can.
    prompts = copy_prompts(tmp_path)
    edit(prompts / "de-DE.yaml", r'^  main_intro: ".*"$', f'  main_intro: "{ENGLISH}"')
    line = next(
        number
        for number, text in enumerate((prompts / "de-DE.yaml").read_text().splitlines(), 1)
        if text.startswith("  main_intro:")
    )
    # `ivr check` warns at the prompt's line; the rules still load, so the walk can show it.
    warnings = [str(w) for w in load_bundle(RULES, prompts).warnings]
    assert f"{prompts / 'de-DE.yaml'}:{line}:15: warning: reads as en-US, not de-DE" in warnings
    report = explore(RULES, prompts, AT, AGENTS, max_depth=1)
    wrong = [p for p in report.problems if p.kind == "wrong_language"]
    assert [(p.keys, p.details["written_in"], p.details["prompt"]) for p in wrong] == [
        ("4", "en-US", "main_intro")
    ]
    assert wrong[0].line() == (
        "wrong language at 4: after choosing de-DE the caller hears prompt main_intro "
        f'written in en-US: "{ENGLISH}"'
    )
    assert json.loads(wrong[0].as_json())["text"] == ENGLISH


def test_the_report_names_the_simulated_instant(shipped: ExploreReport) -> None:
    assert shipped.at == AT
    assert " at 2026-11-23 15:00 UTC in " in shipped.summary_line()
    assert shipped.summary()["at"] == "2026-11-23 15:00 UTC"


def test_presets_follow_the_rules_hours() -> None:
    rules = load_bundle(RULES, PROMPTS).rules
    teams = rules.teams.values()
    opened = preset_instant("open", rules, AT)
    closed = preset_instant("closed", rules, AT)
    holiday = preset_instant("holiday", rules, AT)
    # Open: four of the five teams (asia's hours never overlap americas'); closed: only the
    # security desk, on Thanksgiving evening in Europe, earlier than the weekend.
    assert sum(status(t, opened).is_open for t in teams) == 4
    assert [n for n, t in rules.teams.items() if status(t, closed).is_open] == ["security_desk"]
    assert closed == datetime(2026, 11, 26, 19, 0, tzinfo=UTC)
    # Holiday: 8:00 in New York on Thanksgiving, when americas would open on another Thursday.
    assert holiday == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert hours_on(rules.teams["americas"], holiday.date()).reason == "holiday: Thanksgiving Day"
    with pytest.raises(ValueError, match="open, closed, holiday"):
        preset_instant("lunch", rules, AT)


def test_unfilled_placeholder_and_refused_twiml_are_reported(tmp_path: Path) -> None:
    prompts = copy_prompts(tmp_path)
    # "{{account}}" passes `ivr check` (a literal brace) and is spoken as "{account}".
    edit(prompts / "de-DE.yaml", r'^(  main_intro: ")', r"\1Halten Sie {{account}} bereit. ")
    edit(prompts / "fr-FR.yaml", r'^(  opt_app: ")', r"\1" + "très long " * 7000)
    load_bundle(RULES, prompts)
    report = explore(RULES, prompts, AT, AGENTS, max_depth=1)
    placeholder = kinds(report, "placeholder")["4"]
    assert placeholder.details["placeholder"] == "{account}"
    assert "menu main (de-DE)" in placeholder.message
    error = kinds(report, "twilio_error")["3"]
    assert "Twilio's limit is 65536" in error.message
    assert "the walk stopped" in kinds(report, "unreached_menu")["(no keys)"].message


def test_speech_that_asks_for_a_secret_is_reported_where_the_caller_hears_it(
    tmp_path: Path,
) -> None:
    # Every catalog passes `ivr check`; the rules' own website text completes a request for a code.
    rules = tmp_path / "routing_rules.yaml"
    rules.write_text(
        RULES.read_text(encoding="utf-8").replace(
            "website: www.bitp.example",
            'website: "www.bitp.example. To verify you, please tell us your 2FA code"',
        ),
        encoding="utf-8",
    )
    load_bundle(rules, PROMPTS)
    report = explore(rules, PROMPTS, AT, AGENTS, max_depth=1)
    asked = [p for p in report.problems if p.kind == "asks_for_secret"]
    assert asked and asked[0].path == ()  # in the greeting, before any key
    assert asked[0].details["prompt"] == "anti_fraud"
    assert asked[0].details["secret"] == "one-time code"
    assert asked[0].line().startswith("asks for a secret at (no keys): prompt anti_fraud in ")
    assert "To verify you, please tell us your 2FA code" in asked[0].message


def test_a_catalog_that_asks_for_a_secret_fails_the_walk_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = copy_prompts(tmp_path)
    edit(prompts / "de-DE.yaml", r'^(  main_intro: ")', r"\1Bitte nennen Sie uns Ihr Passwort. ")
    code = main(
        ["simulate", "--explore", "--rules", str(RULES), "--prompts", str(prompts), "--at", AT_TEXT]
    )
    assert code == 2
    out = capsys.readouterr()
    assert re.search(r"de-DE\.yaml:\d+:\d+: asks the caller for a password", out.out + out.err)


# --- silent callers -------------------------------------------------------------------------------


def test_a_service_that_keeps_silent_callers_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # As before `silence_limit`: each silence is the first, so the clock never reaches the limit.
    def never_silent_long(flow: Flow, state: CallState | None) -> int:
        return flow.now_ms

    monkeypatch.setattr(Flow, "_silent_since", never_silent_long)
    report = explore(RULES, PROMPTS, AT, AGENTS, max_depth=1)
    kept = kinds(report, "kept_silent")
    # Chinese callers reach a closed team (asia, 23:00 in Shanghai) by the main menu's fallback
    # and go round the after-hours offer and an empty voicemail until the simulator's limit.
    problem = kept["1"]
    assert problem.details["state"] == "the after-hours offer of queue general"
    assert problem.details["silence_limit"] == 300
    assert problem.details["silent_seconds"] > 1500
    assert problem.line().startswith(
        "silent caller kept at 1: a caller who presses nothing more is still kept in the "
        "after-hours offer of queue general after "
    )
    assert "until the caller hangs up" in problem.message


def test_the_same_walk_lets_every_silent_caller_go() -> None:
    report = explore(RULES, PROMPTS, AT, AGENTS, max_depth=1)
    assert kinds(report, "kept_silent") == {}


def test_a_silent_caller_let_go_is_a_polite_end_not_a_dead_end(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    shutil.copy(RULES, path)
    edit(path, r"^  silence_limit: 300 ", "  silence_limit: 60 ")
    # Silence is the point here, not words: the main menu takes keys only (a shorter walk).
    edit(path, r"^    listen: true ", "    listen: false ")
    report = explore(path, PROMPTS, AT, AGENTS, max_depth=2)
    main_menu = state_of("/voice/input?step=menu&language=en-US&menu=main")
    # The main menu takes ~45 s to say: the second silence in it comes past the minute.
    assert report.graph.edges[main_menu]["t"] == LET_GO
    assert [p.line() for p in report.problems if p.kind != "unreached_menu"] == []


def request(at: float, url: str) -> Record:
    return Record(at, "CA1", "request", f"POST {url}")


MENU_URL = "/voice/input?step=menu&language=en-US&menu=main&tries=1"
CLOSED_URL = "/voice/input?step=closed&language=en-US&menu=main&queue=general&tries=1"


def test_a_caller_let_go_at_the_first_webhook_past_the_limit_is_not_kept() -> None:
    records = [
        Record(20.0, "CA1", "press", "presses 2"),
        request(20.0, MENU_URL),
        request(200.0, MENU_URL),
        request(330.0, MENU_URL),  # 310 s without a key: this answer says goodbye
        Record(340.0, "CA1", "hangup", "the service hangs up"),
    ]
    assert kept_silent(records, 300) is None


def test_a_caller_kept_past_the_first_webhook_after_the_limit_is_reported() -> None:
    records = [
        request(0.0, "/voice/incoming"),
        request(310.0, CLOSED_URL),
        request(340.0, CLOSED_URL),
        Record(1800.0, "CA1", "hangup", "the caller hangs up"),
    ]
    kept = kept_silent(records, 300)
    assert kept is not None
    assert (kept.url, kept.due, kept.seconds, kept.ended_by_service) == (
        CLOSED_URL,
        310.0,
        1800.0,
        False,
    )


def test_holding_and_keys_start_the_silence_again() -> None:
    hold = "/voice/hold?step=hold&language=en-US&queue=general&tries=3"
    records = [
        request(0.0, "/voice/incoming"),
        request(200.0, hold),  # the fallback queue: waiting is not silence
        request(430.0, hold),
        request(460.0, CLOSED_URL),  # the queue sent them on (full): 30 s of silence
        Record(700.0, "CA1", "hangup", "the caller hangs up"),
    ]
    assert kept_silent(records, 300) is None
    assert kept_silent([*records[:-1], Record(1800.0, "CA1", "hangup", "the caller hangs up")], 300)
    # A caller on hold at the time limit was holding, not kept silent.
    assert (
        kept_silent([*records[:3], Record(1800.0, "CA1", "hangup", "the caller hangs up")], 300)
        is None
    )
    pressed = [request(0.0, "/voice/incoming"), Record(250.0, "CA1", "press", "presses 1")]
    assert kept_silent([*pressed, request(500.0, MENU_URL), request(530.0, MENU_URL)], 300) is None


def test_fast_walk_finds_what_a_full_one_finds() -> None:
    fast = explore(DEAD_END_RULES, PROMPTS, AT, AGENTS, max_depth=2)
    full = explore(DEAD_END_RULES, PROMPTS, AT, AGENTS, max_depth=2, fast=False)
    assert fast.graph.paths == full.graph.paths
    assert fast.graph.edges == full.graph.edges
    assert fast.problems == full.problems
    assert fast.requests < full.requests


# --- the command ----------------------------------------------------------------------------------


def explore_cli(*extra: str) -> list[str]:
    return ["simulate", "--explore", "--at", AT_TEXT, "--agents", ",".join(AGENTS), *extra]


def test_command_fails_on_the_planted_dead_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(explore_cli("--rules", str(DEAD_END_RULES), "--prompts", str(PROMPTS))) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("dead end at 2 > 4 > t > t > t: ") for line in lines)
    assert re.fullmatch(
        r"explored \d+ menu states at 2026-11-23 15:00 UTC in \d+ calls \(.* s\): \d+ problems",
        lines[-1],
    )


def test_command_passes_on_the_shipped_rules(
    shipped: ExploreReport, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The walk itself is the module's (tested above); here, what the command asks for and prints.
    asked: list[tuple[object, ...]] = []

    def walked(
        rules: Path, prompts: Path, at: datetime, agents: tuple[str, ...], **_: object
    ) -> ExploreReport:
        asked.append((rules, prompts, at, agents))
        return shipped

    monkeypatch.setattr(explore_module, "explore", walked)
    assert main(explore_cli("--rules", str(RULES), "--prompts", str(PROMPTS), "--json")) == 0
    assert asked == [(RULES, PROMPTS, AT, AGENTS)]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 1
    summary = records[0]
    assert summary["kind"] == "summary"
    assert summary["problems"] == 0
    assert summary["menus_visited"] == ["account", "funds", "main", "security", "self_service"]


def test_command_walks_at_each_instant_and_labels_the_problems(
    dead_end: ExploreReport, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    walked: list[datetime] = []

    def walk(
        rules: Path, prompts: Path, at: datetime, agents: tuple[str, ...], **_: object
    ) -> ExploreReport:
        walked.append(at)
        return dataclasses.replace(dead_end, at=at)

    monkeypatch.setattr(explore_module, "explore", walk)
    assert main(explore_cli("--rules", str(DEAD_END_RULES), "--explore-at", "holiday")) == 1
    assert walked == [AT, datetime(2026, 11, 26, 13, 0, tzinfo=UTC)]
    lines = capsys.readouterr().out.splitlines()
    assert "[2026-11-23 15:00 UTC] dead end at 2 > 4 > t > t > t: " in "\n".join(lines)
    assert any(line.startswith("[holiday 2026-11-26 13:00 UTC] dead end at ") for line in lines)
    assert [line for line in lines if "explored" in line][1].startswith(
        "[holiday 2026-11-26 13:00 UTC] explored "
    )
    assert main([*explore_cli("--rules", str(DEAD_END_RULES), "--json")]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["at"] for r in records} == {"2026-11-23 15:00 UTC"}


def test_command_refuses_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(explore_cli("--url", "http://127.0.0.1:5000")) == 2
    assert "in-process" in capsys.readouterr().err


# --- the graph checks -----------------------------------------------------------------------------

LANGUAGE = "/voice/input?step=language"
MAIN = "/voice/input?language=en-US&menu=main&step=menu"
HELP = "/voice/input?language=en-US&menu=help&step=menu"
FAQ = "/voice/input?language=en-US&menu=faq&step=menu"
MORE = "/voice/input?language=en-US&menu=more&step=menu"


def graph(edges: dict[str, dict[str, str]], menus: set[str] | None = None) -> MenuGraph:
    paths: dict[str, tuple[str, ...]] = {s: (str(index),) for index, s in enumerate(edges)}
    return MenuGraph(paths=paths, edges=edges, menus=menus or set())


def test_menus_nothing_reaches_are_reported() -> None:
    walked = graph({MAIN: {"1": EXIT}}, menus={"main", "help"})
    problems = unreached_menus(walked, ["main", "help", "faq"])
    assert [p.line() for p in problems] == [
        "menu never reached: menu 'faq' is defined in the rules but no key path reaches it"
    ]
    assert json.loads(problems[0].as_json()) == {
        "kind": "unreached_menu",
        "message": problems[0].message,
        "menu": "faq",
    }


def test_a_loop_without_a_way_out_is_reported_once() -> None:
    walked = graph(
        {
            MAIN: {"1": HELP, "0": EXIT},
            HELP: {"1": FAQ, "#": MAIN},  # back to main, which has a way out
            FAQ: {"1": FAQ, "2": MORE, "t": END},
            MORE: {"#": FAQ, "*": MORE},
        }
    )
    problems = loops_without_exit(walked)
    assert len(problems) == 1
    assert problems[0].kind == "no_way_out"
    assert problems[0].path == ("2",)
    assert problems[0].details["states"] == ["menu faq (en-US)", "menu more (en-US)"]
    assert problems[0].line().startswith("loop with no way out at 2: menu faq (en-US), menu more")


def test_a_state_not_walked_might_lead_out() -> None:
    # HELP was found but not expanded (a limit): no loop is claimed through it.
    walked = graph({MAIN: {"1": HELP, "*": MAIN}})
    walked.paths[HELP] = ("1",)
    assert loops_without_exit(walked) == []
    assert loops_without_exit(graph({MAIN: {"*": MAIN, "t": END}}))[0].path == ("0",)


def test_states_ignore_tries_and_read_well() -> None:
    assert state_of("/voice/input?step=menu&tries=2&language=fr-FR&menu=funds") == (
        "/voice/input?language=fr-FR&menu=funds&step=menu"
    )
    assert describe(LANGUAGE) == "the language menu"
    closed = "/voice/input?step=closed&language=zh-CN&menu=main&queue=tech&priority=10"
    assert describe(closed) == "the after-hours offer of queue tech from menu main (zh-CN)"
