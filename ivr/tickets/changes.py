"""What the call flow records on a call's ticket: plain values, no database.

The call-flow engine imports this module, so it must stay free of SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended up, from the support line's point of view."""

    SELF_SERVED = "self_served"
    QUEUED = "queued"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    CLOSED_HOURS = "closed_hours"
    NO_INPUT = "no_input"
    """The caller pressed nothing and recorded nothing for `silence_limit`: the service ended the
    call (an answering machine, a pocket dial)."""


FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""Twilio `CallStatus` values that end a call."""

SATISFACTION_RANGE = range(1, 6)
"""Scores a caller can give in the satisfaction survey (the tickets table checks the same range)."""


class QueueEvent(StrEnum):
    """What happened in a hold queue, named like the events of Asterisk's queue_log."""

    ENTERQUEUE = "ENTERQUEUE"  # caller joined a queue
    CONNECT = "CONNECT"  # caller connected to an agent (wait_seconds = time in queue)
    RINGNOANSWER = "RINGNOANSWER"  # an agent was rung, did not answer; the caller waits on
    COMPLETECALLER = "COMPLETECALLER"  # conversation ended by the caller (talk_seconds)
    COMPLETEAGENT = "COMPLETEAGENT"  # conversation ended by the agent (talk_seconds)
    # Caller hung up while waiting (position, wait_seconds), or after an agent was assigned and
    # before the agent answered (no position; agent, wait_seconds, data: stage = connecting).
    ABANDON = "ABANDON"
    EXITWITHKEY = "EXITWITHKEY"  # caller left by pressing a key (data: key, to: callback|voicemail)
    EXITWITHTIMEOUT = "EXITWITHTIMEOUT"  # waited past max wait; offered callback/voicemail
    EXITFULL = "EXITFULL"  # queue was full when the caller arrived (never entered)
    EXITEMPTY = "EXITEMPTY"  # no agent logged in for the queue when the caller arrived
    CALLBACK = "CALLBACK"  # caller asked to be called back, keeping their place
    CALLBACKDIAL = "CALLBACKDIAL"  # the service called the caller back (their place came up)
    # An after-hours callback request was put in its line for a try (data: try, of); see
    # `ivr.callbacks`. Its CALLBACKDIAL follows when an agent is free for it.
    CALLBACKQUEUED = "CALLBACKQUEUED"
    # An after-hours callback request is not tried again (data: reason = tries | expired, tries).
    CALLBACKGIVEUP = "CALLBACKGIVEUP"
    AGENTLOGIN = "AGENTLOGIN"
    AGENTLOGOFF = "AGENTLOGOFF"


class _FrozenData(Mapping[str, str]):
    """A private, read-only copy of an event's data that hashes, so an `EventRecord` stays frozen."""

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)


@dataclass(frozen=True)
class EventRecord:
    """One queue event to log (the flow and the views create these)."""

    event: QueueEvent
    queue: str | None = None  # None: the queue on the call's ticket, if any
    language: str | None = None  # None: the language on the call's ticket, if any
    agent: str | None = None
    position: int | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A plain string becomes the enum, so an unknown event fails here and not in the database.
        object.__setattr__(self, "event", QueueEvent(self.event))
        # Frozen only goes one level deep: copy the data so the caller's dict can change later
        # without changing (or unhashing) a record that is already part of a decision.
        if not isinstance(self.data, _FrozenData):
            object.__setattr__(self, "data", _FrozenData(self.data))


@dataclass(frozen=True)
class TicketChange:
    """Facts the call flow learned on one webhook, to record on the call's ticket."""

    language: str | None = None
    menu_step: str | None = None  # appended to the ticket's menu path, e.g. "lang:2", "main:1"
    issue: str | None = None
    queue: str | None = None
    team: str | None = None
    priority: int | None = None
    outcome: Outcome | None = None  # ANSWERED also sets answered_at = now (only the first time)
    queued: bool = False  # sets queued_at = now (only the first time)
    callback_number: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    agent: str | None = None
    # 1..5; anything else raises ValueError on construction rather than failing in the database.
    satisfaction: int | None = None
    account: str | None = (
        None  # the caller's account at the exchange (its opaque id, `ivr.exchange`)
    )
    # How the caller proved who they are: "app" or "sms", where the exchange sent the code they
    # keyed. Sets verified_at = now (only the first time).
    verified: str | None = None
    locked: bool = False  # the exchange locked the account; sets locked_at = now (the first time)
    callback_code: str | None = None  # what a callback we place opens with, to prove it is ours
    # At a menu that listens (`ivr.speech`): what the caller said (runs of 4 digits or more
    # masked, at most SAID_CHARACTERS), where it led (an issue, a menu id, "operator", or "menu":
    # not understood, the keypad menu), and whether the line asked once before following it.
    said: str | None = None
    said_to: str | None = None
    said_checked: bool | None = None
    # The incident notice the caller heard before their queue (its id, `ivr.incidents`): the
    # Today page counts the callers who heard one and those who hung up after it.
    incident: int | None = None
    events: tuple[EventRecord, ...] = ()  # logged with the change, under the same token

    def __post_init__(self) -> None:
        if self.satisfaction is not None and (
            isinstance(self.satisfaction, bool) or self.satisfaction not in SATISFACTION_RANGE
        ):
            raise ValueError(f"satisfaction must be 1 to 5, not {self.satisfaction!r}")
        # A list would make the change unhashable and mutable behind the frozen dataclass' back.
        object.__setattr__(self, "events", tuple(self.events))

    def is_empty(self) -> bool:
        """True when the change would record nothing."""
        return (
            not self.queued
            and not self.locked
            and not self.events
            and all(
                getattr(self, f.name) is None
                for f in fields(self)
                if f.name not in {"queued", "locked", "events"}
            )
        )


LATEST_WINS = (
    "issue",
    "queue",
    "team",
    "priority",
    "callback_number",
    "recording_url",
    "recording_duration",
    "agent",
    "satisfaction",
    "account",
    "callback_code",
    "said",
    "said_to",
    "said_checked",
    "incident",
)
"""`TicketChange` fields a later change simply replaces (language and the menu path have rules of their
own: the path grows; the outcome also stamps when a call was answered)."""


SAID_CHARACTERS = 200
SAID_UNDERSTOOD_NOT = "menu"
"""`said_to` of an utterance that led nowhere: the caller heard the keypad menu."""
SAID_OPERATOR = "operator"


def said_for_ticket(text: str) -> str:
    """What a caller said as a ticket keeps it: one line, at most `SAID_CHARACTERS`, and every
    run of 4 digits or more masked: a caller who reads out a code or a card number to the menu
    leaves no secret behind."""
    line = " ".join(text.split())
    line = _DIGIT_RUN.sub(lambda m: "#" * len(m.group(0)), line)
    return line[:SAID_CHARACTERS]


_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){3,}")


def format_reference(reference: str) -> str:
    """A ticket reference spelled digit by digit for text-to-speech, e.g. "4 8 2 1 0 9 3"."""
    return " ".join(reference.replace(" ", ""))
