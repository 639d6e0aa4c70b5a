"""The agent line: agents call it, type their extension and PIN, and log in or out.

Pure like `flow.py`: it decides, the view (`agents.py`) checks a typed PIN (the PIN store, throttled
per calling number), applies the login or logout in Redis and asks `confirm` for what to say about it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ivr.flow import CallState, Decision, Flow, Gather, Hangup, Say

AgentAction = Literal["login", "logout"]
AgentStatus = Literal["offline", "available", "busy"]
PinCheck = Literal["right", "wrong", "throttled", "unavailable", "busy"]
"""What the view found for a typed PIN (`ivr.throttle`): right or wrong (also for an extension nobody
has), not checked because too many wrong PINs came from that number lately, not checked because the
throttle could not be asked (Redis away: a PIN is never checked unthrottled), or not checked because
too many checks were under way at that moment."""
MAX_TRIES = 3


@dataclass(frozen=True)
class LineDecision:
    decision: Decision
    action: AgentAction | None = None
    """What to do to the agent named in the state, if anything."""


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
        pin: PinCheck | None = None,
    ) -> LineDecision:
        """Digits typed at a stage; `status` is the current status of the agent in `state`; `pin`,
        at the PIN stage, what the view found for the digits (None: nothing was typed)."""
        rules = self.flow.rules
        if state.stage == "extension":
            found = rules.agent_by_extension(digits or "")
            # Ask for the PIN whatever was typed, so the line does not reveal which extensions exist.
            ask = replace(state, stage="pin", agent=found[0] if found else None)
            return LineDecision(self._ask("agent_enter_pin", ask))
        if state.stage == "pin":
            if pin == "right" and state.agent in rules.agents:
                options = replace(state, stage="options", tries=0)
                now = self._status_prompt(status)
                gather = Gather((now, self._say("agent_line_options")), options, timeout=10)
                return LineDecision(Decision((gather,)))
            if pin == "throttled":
                return LineDecision(self._goodbye(self._say("agent_pin_throttled")))
            if pin in ("unavailable", "busy"):
                return LineDecision(self.unavailable())
            tries = state.tries + 1
            if tries >= MAX_TRIES:
                return LineDecision(self._goodbye(self._say("agent_login_failed")))
            retry = replace(state, stage="extension", agent=None, tries=tries)
            return LineDecision(
                self._ask("agent_enter_extension", retry, (self._say("agent_login_failed"),))
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

    def unavailable(self) -> Decision:
        """Logging in or out cannot be done now (the queue store is away)."""
        return self._goodbye(self._say("agent_login_unavailable"))

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
