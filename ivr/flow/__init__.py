"""The call flow: given the rules, where the caller is, what they pressed and the time, decide what next.

Pure: no Flask, Redis or SQL here. Every function returns a `Decision`: what the caller hears and may
press (rendered to TwiML by `twiml.py`), what to record on the ticket, and whether to join or leave a
hold queue (done by the views through the services). Where the caller is travels in the webhook URLs as
a `CallState`, so any app instance can take the next step of any call, and a restart loses nothing.

The package in three: `state` (where the caller is, as the webhook URLs carry it: security input,
checked field by field), `decisions` (what the engine returns) and `engine` (`Flow`, which decides).
"""

from ivr.flow.decisions import (
    Action,
    Decision,
    Dial,
    Gather,
    GoTo,
    Hangup,
    Listen,
    Music,
    Pause,
    QueueRequest,
    Record,
    Say,
    Speech,
    TextMessage,
)
from ivr.flow.engine import (
    ASKED_CALLBACK,
    CODE_DIGITS,
    CODE_TRIES,
    LOCK_NOW,
    Caller,
    Flow,
    HoldInfo,
)
from ivr.flow.state import (
    STATE_READS_UP_TO,
    STEPS,
    CallState,
    Heard,
    Step,
    newer_state,
)

__all__ = [
    "ASKED_CALLBACK",
    "CODE_DIGITS",
    "CODE_TRIES",
    "LOCK_NOW",
    "STATE_READS_UP_TO",
    "STEPS",
    "Action",
    "CallState",
    "Caller",
    "Decision",
    "Dial",
    "Flow",
    "Gather",
    "GoTo",
    "Hangup",
    "Heard",
    "HoldInfo",
    "Listen",
    "Music",
    "Pause",
    "QueueRequest",
    "Record",
    "Say",
    "Speech",
    "Step",
    "TextMessage",
    "newer_state",
]
