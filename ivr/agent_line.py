"""The agent line: agents call it, type their extension and PIN, and log in or out.

Pure like `flow.py`: it decides, the view (`agents.py`) applies the login or logout in Redis and asks
`confirm` for what to say about the result.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Literal

from ivr.flow import CallState, Decision, Flow, Gather, Hangup, Say

AgentAction = Literal["login", "logout"]
AgentStatus = Literal["offline", "available", "busy"]
MAX_TRIES = 3


@dataclass(frozen=True)
class LineDecision:
    decision: Decision
    action: AgentAction | None = None
    """What to do to the agent named in the state, if anything."""
    pin_ok: bool | None = None
    """Whether a PIN was typed for a known agent and was right (None: no PIN checked)."""


class AgentLine:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.language = flow.rules.defaults.language

    def _say(self, prompt: str) -> Say:
        return self.flow.say(prompt, self.language)

    def _ask(self, prompt: str, state: CallState, before: tuple[Say, ...] = ()) -> Decision:
        gather = Gather((*before, self._say(prompt)), state, timeout=10, several_digits=True)
        return Decision((gather,))

    def answer(self) -> Decision:
        """Someone called the agent line."""
        state = CallState("agent_line", self.language, stage="extension")
        return self._ask("agent_enter_extension", state, (self._say("agent_line_welcome"),))

    def on_input(
        self,
        state: CallState,
        digits: str | None,
        status: AgentStatus | None,
        locked: bool = False,
    ) -> LineDecision:
        """Digits typed at a stage; `status` is the current status of the agent in `state`;
        `locked`: too many wrong PINs lately, so no PIN is accepted for that agent for now."""
        rules = self.flow.rules
        if state.stage == "extension":
            found = rules.agent_by_extension(digits or "")
            # Ask for the PIN whatever was typed, so the line does not reveal which extensions exist.
            pin = replace(state, stage="pin", agent=found[0] if found else None)
            return LineDecision(self._ask("agent_enter_pin", pin))
        if state.stage == "pin":
            agent = rules.agents.get(state.agent or "")
            right = bool(
                agent and digits and not locked and secrets.compare_digest(digits, agent.pin)
            )
            checked = None if agent is None else right
            if right:
                options = replace(state, stage="options", tries=0)
                now = self._status_prompt(status)
                gather = Gather((now, self._say("agent_line_options")), options, timeout=10)
                return LineDecision(Decision((gather,)), pin_ok=checked)
            tries = state.tries + 1
            if tries >= MAX_TRIES:
                return LineDecision(self._goodbye(self._say("agent_login_failed")), pin_ok=checked)
            retry = replace(state, stage="extension", agent=None, tries=tries)
            return LineDecision(
                self._ask("agent_enter_extension", retry, (self._say("agent_login_failed"),)),
                pin_ok=checked,
            )
        if state.stage == "options" and state.agent in rules.agents:
            if digits == "1":
                return LineDecision(Decision(()), "login")
            if digits == "2":
                return LineDecision(Decision(()), "logout")
            options = replace(state, tries=state.tries + 1)
            if options.tries >= MAX_TRIES:
                return LineDecision(self._goodbye())
            gather = Gather((self._say("agent_line_options"),), options, timeout=10)
            return LineDecision(Decision((self._say("not_an_option"), gather)))
        return LineDecision(self.answer())

    def confirm(self, action: AgentAction, status: AgentStatus) -> Decision:
        """What the agent hears after a login or logout left them in `status`."""
        if status == "busy":
            return self._goodbye(self._say("agent_busy_until_call_ends"))
        return self._goodbye(self._status_prompt(status))

    def _status_prompt(self, status: AgentStatus | None) -> Say:
        if status == "available":
            return self._say("agent_now_available")
        if status == "busy":
            return self._say("agent_busy_until_call_ends")
        return self._say("agent_now_offline")

    def _goodbye(self, *before: Say) -> Decision:
        return Decision((*before, self._say("goodbye"), Hangup()))
