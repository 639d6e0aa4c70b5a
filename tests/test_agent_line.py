"""The agent line's decisions (pure): what an agent hears after typing a PIN, whatever the check found."""

from __future__ import annotations

import pytest

from ivr.agent_line import AgentLine, PinCheck
from ivr.flow import CallState, Flow, Gather, Hangup
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from tests.conftest import MONDAY_AFTERNOON, ROOT
from tests.flow.test_engine import heard, listening_at


@pytest.fixture(scope="module")
def line() -> AgentLine:
    bundle: Bundle = load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    return AgentLine(Flow(bundle, MONDAY_AFTERNOON))


def at_pin(agent: str | None, tries: int = 0) -> CallState:
    return CallState("agent_line", "en-US", stage="pin", agent=agent, tries=tries)


@pytest.mark.parametrize(
    ("agent", "tries", "pin", "prompts", "next_stage"),
    [
        ("anna", 0, "right", ["agent_now_offline", "agent_line_options"], "options"),
        ("anna", 0, "wrong", ["agent_login_failed", "agent_enter_extension"], "extension"),
        ("anna", 0, None, ["agent_login_failed", "agent_enter_extension"], "extension"),
        ("anna", 2, "wrong", ["agent_login_failed", "goodbye"], None),
        ("anna", 0, "throttled", ["agent_pin_throttled", "goodbye"], None),
        ("anna", 0, "unavailable", ["agent_login_unavailable", "goodbye"], None),
        # An extension nobody has: a PIN "right" for nobody logs nobody in.
        (None, 0, "right", ["agent_login_failed", "agent_enter_extension"], "extension"),
        (None, 0, "throttled", ["agent_pin_throttled", "goodbye"], None),
    ],
)
def test_what_the_agent_hears_after_the_pin(
    line: AgentLine,
    agent: str | None,
    tries: int,
    pin: PinCheck | None,
    prompts: list[str],
    next_stage: str | None,
) -> None:
    result = line.on_input(at_pin(agent, tries), "517394", "offline", pin)
    assert heard(result.decision) == prompts
    listening = listening_at(result.decision)
    assert (listening.stage if listening else None) == next_stage
    if next_stage is None:
        assert isinstance(result.decision.actions[-1], Hangup)
    assert result.action is None  # a PIN alone never logs anyone in or out


@pytest.mark.parametrize("extension", ["104", "999", ""])
def test_the_pin_is_asked_for_whatever_extension_was_typed(line: AgentLine, extension: str) -> None:
    start = CallState("agent_line", "en-US", stage="extension")
    decision = line.on_input(start, extension, None).decision
    assert heard(decision) == ["agent_enter_pin"]
    [gather] = decision.actions
    assert isinstance(gather, Gather) and gather.several_digits


def test_a_throttled_pin_from_the_agents_own_phone_is_checked_on_a_call_to_that_phone(
    line: AgentLine,
) -> None:
    result = line.on_input(at_pin("anna"), "517394", None, "throttled", call_back_possible=True)
    assert heard(result.decision) == ["agent_callback_coming", "goodbye"]
    assert result.call_back and result.action is None
    # Elsewhere (or without a way to place calls) the line only says so.
    plain = line.on_input(at_pin("anna"), "517394", None, "throttled")
    assert heard(plain.decision) == ["agent_pin_throttled", "goodbye"] and not plain.call_back


def test_the_call_to_the_agents_phone_asks_for_the_pin_alone() -> None:
    bundle: Bundle = load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    line = AgentLine(Flow(bundle, MONDAY_AFTERNOON))
    answered = CallState("agent_line", "en-US", stage="callback", agent="anna", origin="CA1")
    result = line.on_input(answered, None, None)
    assert heard(result.decision) == ["agent_callback_enter_pin"]
    asking = listening_at(result.decision)
    assert asking is not None and (asking.stage, asking.agent) == ("callback_pin", "anna")
    wrong = line.on_input(asking, "111111", "offline", "wrong")
    assert heard(wrong.decision) == ["agent_login_failed", "agent_enter_pin"]
    again = listening_at(wrong.decision)
    assert again is not None and again.stage == "callback_pin"  # no extension asked again
    # Throttled there too: no further call is placed.
    stopped = line.on_input(asking, "111111", None, "throttled", call_back_possible=True)
    assert heard(stopped.decision) == ["agent_pin_throttled", "goodbye"] and not stopped.call_back
