"""What the call flow's engine returns: a `Decision`, the speech and verbs the caller meets (rendered
to TwiML by `ivr.twiml`), the ticket change, and the queue, callback and text effects the views apply
(`ivr.switchboard`). Plain frozen values: no rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.flow.state import CallState
from ivr.tickets.changes import TicketChange


@dataclass(frozen=True)
class Say:
    """One prompt, as text in a language; `audio` names a recording that replaces the text."""

    text: str
    language: str
    prompt: str
    audio: str | None = None


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Music:
    url: str


Speech = Say | Pause | Music


@dataclass(frozen=True)
class Gather:
    """Speak while listening for one key; the key (or silence) is sent to the webhook of `then`."""

    speech: tuple[Speech, ...]
    then: CallState
    timeout: int
    several_digits: bool = False
    """Collect digits until # (extensions, PINs) instead of a single key."""
    num_digits: int | None = None
    """With `several_digits`: stop at this many, without waiting for # (a one-time code)."""
    listen: Listen | None = None
    """Take speech too (a menu that listens): what was said goes to `then` as `SpeechResult`."""


@dataclass(frozen=True)
class Listen:
    """How Twilio listens at a menu that listens: for which language, expecting which phrases."""

    language: str
    """Twilio's speech recognition language (`Catalog.listen_language`)."""
    hints: str
    """Twilio's `hints`: the phrases of the options a caller can reach from the menu."""


@dataclass(frozen=True)
class GoTo:
    """Continue with the webhook of `state` (a TwiML redirect)."""

    state: CallState


@dataclass(frozen=True)
class Record:
    """Record a voicemail; the recording is sent to the webhook of `then`."""

    then: CallState
    max_seconds: int


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Dial:
    """Connect the caller to an agent's phone or Twilio Client; the outcome goes to `then`.

    The agent first hears the `whisper` webhook (who is calling), which is also how we learn that
    the agent answered."""

    phone: str | None
    client: str | None
    then: CallState
    whisper: CallState
    timeout: int = 20


Action = Say | Pause | Music | Gather | GoTo | Record | Hangup | Dial


@dataclass(frozen=True)
class QueueRequest:
    queue: str
    language: str
    priority: int
    since: int
    """Arrival in the queue, ms since the epoch (kept if the caller already has a place)."""


@dataclass(frozen=True)
class TextMessage:
    """A text (SMS) to the caller with their ticket number (`Rules.sms_reference`). Sent on a
    thread of its own (`ivr.texts`): the call never waits for it, and a failed send changes nothing."""

    to: str
    body: str


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    ticket: TicketChange = field(default_factory=TicketChange)
    join: QueueRequest | None = None
    leave: bool = False
    """Take the caller out of their queue (they chose voicemail, or the queue could not take them)."""
    callback_number: str | None = None
    """Keep the caller's place and call this number back when it comes up."""
    text: TextMessage | None = None
    """Text the caller this (once per call; see `Switchboard.apply`)."""
    silent_since: int | None = None
    """The caller's silence clock (`CallState.silent_since`), carried on by every webhook URL of
    this decision (None: by none, and the next silence starts it). Kept apart from the states so
    that callers at the same place still hear the same document (`twiml.render`)."""
    notice: int | None = None
    """The incident notice this decision plays (its id): from here on every webhook URL of the
    call carries it (`Caller.notice`), so that the caller is not asked again in this call."""
