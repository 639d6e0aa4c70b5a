"""Scenario files (`ivr simulate --scenario`): the shipped regression suite, and what a failing or
malformed scenario reports."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.simulator.scenario import run_scenario_files
from tests.support import PROMPTS, ROOT, RULES

SCENARIOS = ROOT / "scenarios"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")

# Saturday: self-service answers do not depend on the hours, and nobody needs to be logged in.
SELF_SERVICE = """\
- name: Self-service, opening hours
  languages: [en-US]
  at: 2026-11-28T12:00:00Z
  keys: "{lang},6,1,h"
  expect:
%s
"""


def run(*files: Path) -> tuple[int, list[str]]:
    """Run scenario files against the shipped rules: the exit code and the printed lines."""
    out = io.StringIO()
    code = run_scenario_files(list(files), (RULES, PROMPTS), out)
    return code, out.getvalue().splitlines()


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_scenarios_cover_every_branch_and_all_pass() -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert files, "no scenario files shipped"

    code, lines = run(*files)

    failures = [line for line in lines if not line.startswith("ok  ")][:-1]
    assert failures == []
    assert code == 0
    runs = len(lines) - 1
    assert lines[-1] == f"{runs} passed, 0 failed"
    # Six main-menu branches, four languages, in and out of hours.
    assert runs >= 48
    for language in ("zh-CN", "en-US", "fr-FR", "de-DE"):
        assert sum(line.endswith(f"[{language}]") for line in lines) >= 12


def test_a_wrong_expectation_fails_naming_the_step_and_what_was_heard(tmp_path: Path) -> None:
    scenario = write(
        tmp_path,
        SELF_SERVICE
        % (
            "    - heard: {prompt: greeting}\n"
            "    - heard: {prompt: answer_email}   # wrong: option 1 is the opening hours\n"
        ),
    )

    code, lines = run(scenario)

    assert code == 1
    assert lines[-1] == "0 passed, 1 failed"
    (line,) = lines[:-1]
    assert line.startswith("FAIL Self-service, opening hours [en-US]: ")
    assert "step 2 (heard prompt answer_email) not found after step 1 (heard prompt greeting)" in (
        line
    )
    # What came instead: the anti-fraud notice right after the greeting, in the caller's words.
    assert 'instead: heard "For your safety: BitP staff' in line
    assert "(anti_fraud)" in line


def test_a_never_heard_prompt_that_was_heard_fails_saying_when(tmp_path: Path) -> None:
    scenario = write(tmp_path, SELF_SERVICE % "    - not_heard: {prompt: answer_hours}\n")

    code, lines = run(scenario)

    assert code == 1
    assert re.search(r"not_heard prompt answer_hours: but at \d+ s: heard \"Our phone", lines[0])


def test_a_wrong_ticket_field_fails_with_the_value_found(tmp_path: Path) -> None:
    scenario = write(
        tmp_path,
        SELF_SERVICE % "    - heard: {prompt: answer_hours}"
        + '  ticket: {outcome: answered, issue: faq_hours, language: "{language}"}\n',
    )

    code, lines = run(scenario)

    assert code == 1
    assert lines[0].endswith(": ticket outcome: expected 'answered', got 'self_served'")


def test_passing_and_failing_runs_are_counted_per_language(tmp_path: Path) -> None:
    scenario = write(
        tmp_path,
        SELF_SERVICE.replace("[en-US]", "[en-US, de-DE]")
        % '    - heard: {text: "Our phone support is open"}\n',
    )

    code, lines = run(scenario)

    assert code == 1
    assert lines[0] == "ok  Self-service, opening hours [en-US]"
    assert lines[1].startswith("FAIL Self-service, opening hours [de-DE]: step 1 (heard text ")
    assert SUMMARY.match(lines[-1])
    assert lines[-1] == "1 passed, 1 failed"


MALFORMED = [
    pytest.param(
        "  expct:\n    - heard: {prompt: greeting}\n",
        ":6: scenario 1 ('Broken'): expct: unknown key (known: name, languages, at, from,",
        id="unknown key",
    ),
    pytest.param(
        '  keys: "{lang},6,x1"\n',
        ":6: scenario 1 ('Broken'): keys: bad caller script: 'x1' is not a key",
        id="bad keys script",
    ),
    pytest.param(
        "  languages: [en-GB]\n",
        ":6: scenario 1 ('Broken'): languages[0]: unknown language 'en-GB' "
        "(the rules have zh-CN, en-US, fr-FR, de-DE)",
        id="unknown language",
    ),
    pytest.param(
        "  expect:\n    - heard: {prompt: greetings}\n",
        ":7: scenario 1 ('Broken'): expect[0].heard.prompt: no prompt 'greetings'",
        id="unknown prompt",
    ),
    pytest.param(
        "  from: +14155550100\n",
        ":6: scenario 1 ('Broken'): from: write the phone number in quotes: \"+14155550100\"",
        id="unquoted number",
    ),
    pytest.param(
        "  agents: [bob]\n",
        ":6: scenario 1 ('Broken'): agents[0]: no agent 'bob' in the rules",
        id="unknown agent",
    ),
    pytest.param(
        "  callback_expect: true\n",
        ":6: scenario 1 ('Broken'): callback_expect: must be a list of expectations, or false",
        id="callback expectations not a list",
    ),
]

# An English caller holds for withdrawals with nobody logged in, asks for a callback at the first
# hold round; emma logs in 200 s into the call, and the line calls the caller back.
CALLBACK = """\
- name: Callback
  languages: [en-US]
  at: 2026-11-23T15:00:00Z
  agents: [emma]
  agents_login_after: 200
  keys: "{lang},2,2,2"
  callback_expect:
%s
"""


def test_a_callback_that_does_not_open_as_expected_fails_naming_the_callback(
    tmp_path: Path,
) -> None:
    scenario = write(
        tmp_path,
        CALLBACK % "    - heard: {prompt: connecting}\n    - heard: {prompt: callback_opening}",
    )

    code, lines = run(scenario)

    assert code == 1
    assert lines[0].startswith("FAIL Callback [en-US]: callback: step 2 (heard prompt ")
    assert "callback_opening) not found after step 1 (heard prompt connecting)" in lines[0]


def test_a_callback_nobody_asked_for_fails_the_run(tmp_path: Path) -> None:
    scenario = write(tmp_path, CALLBACK.replace("callback_expect:\n%s", "callback_expect: false"))

    code, lines = run(scenario)

    assert code == 1
    assert (
        lines[0]
        == "FAIL Callback [en-US]: callback: none expected, but +14155550100 was called back"
    )


@pytest.mark.parametrize(("extra", "message"), MALFORMED)
def test_a_malformed_file_runs_nothing_and_says_where(
    tmp_path: Path, extra: str, message: str
) -> None:
    good = write(tmp_path, SELF_SERVICE % "    - heard: {prompt: answer_hours}", "good.yaml")
    broken = write(
        tmp_path,
        "- name: Broken\n"
        "  languages: [en-US]\n"
        "  at: 2026-11-23T15:00:00Z\n"
        '  keys: "{lang},6,1"\n'
        "  # the mistake:\n" + extra,
        "broken.yaml",
    )

    code, lines = run(good, broken)

    assert code == 2
    assert len(lines) == 1, lines  # the good file did not run: no ok line, no summary
    assert lines[0].startswith(f"{broken}:"), lines[0]
    assert message in lines[0]


def test_a_scenario_without_an_instant_is_malformed(tmp_path: Path) -> None:
    scenario = write(tmp_path, '- name: Whenever\n  keys: "2,6,1"\n')

    code, lines = run(scenario)

    assert code == 2
    assert lines == [
        f"{scenario}:1: scenario 1 ('Whenever'): at: required: when the call is placed, "
        "e.g. 2026-11-23T15:00:00Z"
    ]


def test_a_file_that_is_not_a_list_of_scenarios_is_malformed(tmp_path: Path) -> None:
    scenario = write(tmp_path, "name: one scenario, not a list\n")

    code, lines = run(scenario, tmp_path / "missing.yaml")

    assert code == 2
    assert lines[0] == f"{scenario}: must be a non-empty list of scenarios (- name: ...)"
    assert lines[1].startswith(f"{tmp_path / 'missing.yaml'}: cannot read")


def test_ivr_simulate_scenario_exits_non_zero_on_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, SELF_SERVICE % "    - heard: {prompt: answer_hours}", "good.yaml")
    wrong = write(tmp_path, SELF_SERVICE % "    - heard: {prompt: answer_email}", "wrong.yaml")
    command = ["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--scenario"]

    assert main([*command, str(good)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 0 failed"

    assert main([*command, str(good), str(wrong)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 passed, 1 failed"
    assert out[1].startswith("FAIL Self-service, opening hours [en-US]: step 1 (heard prompt ")
