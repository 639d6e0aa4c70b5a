"""The agent line: agents call it, type their extension and PIN, and log in or out.

Pure like `ivr.flow`: it decides, the view (`agents.py`) checks a typed PIN (the PIN store, throttled
per calling number), applies the login or logout in Redis and asks `confirm` for what to say about it.

A caller ID can be spoofed, so a stranger can have the agent's own number throttled with wrong PINs.
When a throttled call comes from the phone the rules give the typed extension's agent, the line
offers no PIN check but calls that phone back (`call_back`): only the real phone gets that call,
whose PIN check is throttled on its own (stages `callback`, then `callback_pin`).
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
    call_back: bool = False
    """Call the agent in the state back on their registered phone, to check the PIN there."""


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
        *,
        call_back_possible: bool = False,
    ) -> LineDecision:
        """Digits typed at a stage; `status` is the current status of the agent in `state`; `pin`,
        at a PIN stage, what the view found for the digits (None: nothing was typed);
        `call_back_possible`: the call comes from the phone the rules give the agent in `state`,
        and the line can place calls."""
        rules = self.flow.rules
        if state.stage == "extension":
            found = rules.agent_by_extension(digits or "")
            # Ask for the PIN whatever was typed, so the line does not reveal which extensions exist.
            ask = replace(state, stage="pin", agent=found[0] if found else None)
            return LineDecision(self._ask("agent_enter_pin", ask))
        if state.stage == "callback" and state.agent in rules.agents:
            # The call we placed to the agent's phone was answered.
            ask = replace(state, stage="callback_pin", tries=0)
            return LineDecision(self._ask("agent_callback_enter_pin", ask))
        if state.stage in ("pin", "callback_pin"):
            return self._on_pin(state, status, pin, call_back_possible)
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

    def _on_pin(
        self,
        state: CallState,
        status: AgentStatus | None,
        pin: PinCheck | None,
        call_back_possible: bool,
    ) -> LineDecision:
        if pin == "right" and state.agent in self.flow.rules.agents:
            options = replace(state, stage="options", tries=0)
            now = self._status_prompt(status)
            gather = Gather((now, self._say("agent_line_options")), options, timeout=10)
            return LineDecision(Decision((gather,)))
        if pin == "throttled":
            if call_back_possible and state.stage == "pin":
                return LineDecision(
                    self._goodbye(self._say("agent_callback_coming")), call_back=True
                )
            return LineDecision(self._goodbye(self._say("agent_pin_throttled")))
        if pin in ("unavailable", "busy"):
            return LineDecision(self.unavailable())
        tries = state.tries + 1
        if tries >= MAX_TRIES:
            return LineDecision(self._goodbye(self._say("agent_login_failed")))
        if state.stage == "callback_pin":  # the agent's own phone: only the PIN is asked again
            retry = replace(state, tries=tries)
            return LineDecision(
                self._ask("agent_enter_pin", retry, (self._say("agent_login_failed"),))
            )
        retry = replace(state, stage="extension", agent=None, tries=tries)
        return LineDecision(
            self._ask("agent_enter_extension", retry, (self._say("agent_login_failed"),))
        )

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
