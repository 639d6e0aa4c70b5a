"""Where a caller is in the flow, as the webhook URLs carry it: `CallState` and its codec.

Every webhook URL the service issues carries the caller's place (`to_params`), sealed by
`ivr.signing`; a webhook reads it back with `from_params`. The seal proves the URL is ours, but the
codec still takes every field as hostile input: a field that does not check out makes the whole
state None, and the view starts the call over rather than guess. `newer_state` tells a state a
newer release wrote (its `sv` version, or a step this code does not know) from a garbled one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

Step = Literal[
    "language",
    "menu",
    "closed",
    "hold",
    "voicemail",
    "agent",
    "whisper",
    "survey",
    "agent_line",
    "greet",
    "lock_offer",
    "lock_code",
    "lock",
    "confirm",
    "incident",
]
STEPS: tuple[Step, ...] = get_args(Step)

MAX_SINCE_MS = 10**13
"""Arrival times in ms since the epoch stay below this (the queue's score needs it; year 2286)."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
"""An id the exchange made (a verification), as the contract allows it."""
_CHOICE = re.compile(r"[1-9]{1,8}")
"""Keys that lead from a menu to an option of it or of its sub-menus (`CallState.choice`). The three
patterns are matched whole (`fullmatch`: a `$` would let a trailing newline through)."""

STATE_VERSION = "sv"
"""The URL parameter of a state's version, written only above 1 (none is, today)."""
STATE_READS_UP_TO = 1
"""The highest URL state version this code reads. Bump it, and have `to_params` write `sv` for the
states that need it, when a state gains what an older release would misread: a new step, a new
parameter whose absence means something else, a new meaning for a value (docs/operators/upgrading.md)."""


def newer_state(params: Mapping[str, str]) -> bool:
    """Whether a URL's state (sealed by this service, so by some release of it) was written by a
    newer release: its version is above ours, or it names a step this code does not know."""
    version = params.get(STATE_VERSION, "")
    if _digits(version) and int(version) > STATE_READS_UP_TO:
        return True
    return "step" in params and params["step"] not in STEPS


@dataclass(frozen=True)
class CallState:
    """Where a caller is in the flow. Carried in webhook URLs (see `to_params` / `from_params`)."""

    step: Step
    language: str | None = None
    menu: str | None = None
    queue: str | None = None
    priority: int | None = None
    tries: int = 0
    """Failed attempts in this menu; in `hold`, how many updates the caller has heard."""
    agent: str | None = None
    """In `agent`, `whisper` and `survey`: the agent the caller was connected to; on the agent line:
    the agent who typed their extension."""
    origin: str | None = None
    """On a callback we placed: the CallSid of the original call, whose ticket and place this is."""
    stage: str | None = None
    """On the agent line: extension, pin or options; callback and callback_pin on the call the line
    placed to an agent's registered phone (`ivr.agent_line`). While a known caller keys a code and
    locks their account: where the code went ("app" or "sms"; at the lock step: verified by it)."""
    since: int | None = None
    """From the queue on: when the caller joined it (ms since the epoch). Carried so that a caller
    whom Redis lost (a restart without persistence) gets back their place in the order."""
    heard: Heard | None = None
    """While holding: the position and wait this caller was last told (`Queue.position_only_down`)."""
    silent_since: int | None = None
    """When the caller last pressed a key (or the call, a hold round or a conversation began), in
    ms since the epoch: how long they have been silent (`Defaults.silence_limit`). What a webhook
    brings; what goes out is the decision's (`Decision.silent_since`), whatever a state says."""
    verification: str | None = None
    """While a known caller keys the code the exchange sent: the exchange's id of that verification."""
    choice: str | None = None
    """In `confirm`: the keys that lead from `menu` to where the caller's words pointed ("22":
    funds, then withdrawal), followed when they press 1."""

    def to_params(self) -> dict[str, str]:
        params = {"step": self.step, "tries": str(self.tries)}
        if self.heard is not None:
            params["heard"] = self.heard.encode()
        for name in _OPTIONAL_PARAMS:
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CallState | None:
        """The state in a webhook's query string, or None when it is missing or not ours."""
        step = params.get("step")
        if step not in STEPS:
            return None
        values: dict[str, str | None] = {}
        for name in ("language", "menu", "queue", "agent", "origin", "stage"):
            value = params.get(name) or None
            if value is not None and not _NAME.fullmatch(value):
                return None
            values[name] = value
        verification = params.get("verification") or None
        if verification is not None and not _ID.fullmatch(verification):
            return None
        values["verification"] = verification
        choice = params.get("choice") or None
        if choice is not None and not _CHOICE.fullmatch(choice):
            return None
        values["choice"] = choice
        try:
            tries = _number(params.get("tries")) or 0
            priority = _number(params.get("priority"))
            since = _instant(params.get("since"))
            silent_since = _instant(params.get("silent_since"))
        except ValueError:
            return None
        if not 0 <= tries <= 10_000 or not (priority is None or 0 <= priority <= 100):
            return None
        heard = None
        if params.get("heard"):
            heard = Heard.decode(params["heard"])
            if heard is None:
                return None
        return cls(
            step=step,
            tries=tries,
            priority=priority,
            since=since,
            heard=heard,
            silent_since=silent_since,
            **values,
        )


_OPTIONAL_PARAMS = (
    "language",
    "menu",
    "queue",
    "priority",
    "agent",
    "origin",
    "stage",
    "since",
    "silent_since",
    "verification",
    "choice",
)
"""`CallState` fields a URL carries only when they are set."""


def _digits(text: str) -> bool:
    """Whether `text` is a number as `str(int)` writes it: ASCII digits only (`isdigit` alone also
    takes "²" and "١", which `int` then refuses or reads)."""
    return text.isascii() and text.isdigit()


def _number(text: str | None) -> int | None:
    """A count a URL carries, None when absent; ValueError when it is not digits only (no sign, no
    spaces, no underscores, no other script's digits, which `int` would all take)."""
    if not text:
        return None
    if not _digits(text):
        raise ValueError(f"not a number: {text!r}")
    return int(text)


def _instant(text: str | None) -> int | None:
    """An instant a URL carries (ms since the epoch), None when absent; ValueError when it is not
    one: digits only (`_number`), below `MAX_SINCE_MS`."""
    value = _number(text)
    if value is None:
        return None
    if value >= MAX_SINCE_MS:
        raise ValueError(f"instant out of range: {text!r}")
    return value


@dataclass(frozen=True)
class Heard:
    """What a holding caller was last told: the position announced, the position they were at
    then (an urgent caller may have gone ahead since), and the wait said, in minutes."""

    announced: int | None = None
    at: int | None = None
    low: int | None = None
    high: int | None = None

    def encode(self) -> str:
        return ":".join(
            "" if v is None else str(v) for v in (self.announced, self.at, self.low, self.high)
        )

    @classmethod
    def decode(cls, text: str) -> Heard | None:
        """The value of `encode`, or None when it is not one (4 fields of at most 5 digits)."""
        parts = text.split(":")
        if len(parts) != 4 or not all(len(p) <= 5 and (p == "" or _digits(p)) for p in parts):
            return None
        announced, at, low, high = (int(p) if p else None for p in parts)
        return cls(announced, at, low, high)
