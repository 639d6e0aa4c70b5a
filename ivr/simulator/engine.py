"""The call simulator's engine: a TwiML interpreter that behaves like Twilio, in virtual time.

Each simulated call is a generator that yields how many seconds it waits (a prompt being spoken, a
menu's time-out, hold music, a conversation); a `Simulator` runs any number of calls in one virtual
timeline, in time order, and sets the app's clock to it in in-process mode. A REST request from the
app (move a call, place a callback) reaches the simulator through `ivr.simulator.rest.TwilioRest`,
the `twilio` library's HTTP client interface, and wakes the call it concerns at once, as Twilio would.

What each verb does follows Twilio's documented behaviour; where a response is one Twilio would
refuse (not TwiML, a wrong verb or attribute, too large, too slow, an HTTP error), the call ends with
an error record saying why.
"""

from __future__ import annotations

import hashlib
import heapq
import inspect
import itertools
import json
import re
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from ivr.clock import FrozenClock
from ivr.simulator.caller import (
    Caller,
    HangUp,
    Press,
    ScriptedCaller,
    Speak,
    Step,
    Utter,
    Wait,
)
from ivr.simulator.twiml import GatherInput, TwimlError, Verb, gather_input, parse_twiml

TWILIO_TIMEOUT_SECONDS = 15.0
DEFAULT_PLAY_SECONDS = 30.0
"""How long a `<Play>` of a clip the simulator cannot measure lasts (no declared length)."""
DTMF_TONE_SECONDS = 0.5
"""One tone of `<Play digits>` (and each `w`, which Twilio documents as a half-second pause)."""
TWILIO_QUEUE_SIZE = 1000
"""Twilio's <Enqueue> page: "The default maximum length of the queue is 1000." """
SPEECH_PAUSE_SECONDS = 1.0
"""speechTimeout="auto": the pause after the caller's last word at which Twilio stops listening
(Twilio names no figure; a second is what a caller notices)."""
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
Next = tuple[str, str, dict[str, str]]
"""Where the call goes next: (absolute URL, method, extra form fields)."""
END: Next = ("", "", {})  # the call is over


class SimulationError(Exception):
    """Twilio would have ended the call here; the message says why."""


class _Redirected(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class _HungUp(Exception):
    """The caller hung up."""


class _Left(Exception):
    """<Leave> in a queue's wait music."""


class _Bridged(Exception):
    """Another call's <Dial><Queue> took this call out of its Twilio queue."""

    def __init__(self, dialer: str) -> None:
        self.dialer = dialer


@dataclass(frozen=True)
class Record:
    """One thing that happened on a call, for the transcript."""

    at: float
    """Seconds since the call started."""
    call: str
    kind: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(
            {
                "at": round(self.at, 1),
                "call": self.call,
                "kind": self.kind,
                "text": self.text,
                **self.data,
            },
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str | None
    body: bytes
    seconds: float


class Transport(Protocol):
    base_url: str

    def send(self, method: str, url: str, params: dict[str, str]) -> Reply:
        """Make one signed webhook request, as Twilio would."""
        ...


@dataclass(frozen=True)
class AgentBehaviour:
    """How simulated agents behave when a `<Dial>` rings them."""

    answers: bool = True
    answer_after: float = 5.0
    talk_seconds: float = 60.0
    talk: Callable[[], float] | None = field(default=None, compare=False)
    """Draws the length of each conversation (a load scenario's distribution); None: `talk_seconds`."""

    def conversation_seconds(self) -> float:
        """How long the next conversation lasts: drawn when `talk` is given, else `talk_seconds`."""
        return max(0.0, self.talk()) if self.talk is not None else self.talk_seconds


PromptListener = Callable[["SimulatedCall", str, dict[str, str], str], None]
"""(call, prompt id, placeholder values, <Say> language) for each recognised prompt heard."""


class PromptMatcher(Protocol):
    def identify(self, text: str) -> tuple[str, dict[str, str]] | None:
        """Which prompt id (and placeholder values) a spoken text came from."""
        ...


def speaking_seconds(text: str) -> float:
    """About how long a text-to-speech voice takes: 2.5 words a second, 4 CJK characters a second."""
    cjk = len(re.findall(r"[\u3000-\u9fff\uff00-\uffef]", text))
    words = len(re.findall(r"[^\s\u3000-\u9fff\uff00-\uffef]+", text))
    return max(1.0, words / 2.5 + cjk / 4.0)


class SimulatedCall:
    """One call, following the TwiML it gets like Twilio does."""

    def __init__(
        self,
        sim: Simulator,
        sid: str,
        number: str,
        called: str,
        caller: Caller,
        start_url: str,
        status_url: str | None,
        direction: str = "inbound",
        hangup_at_text: str | None = None,
    ) -> None:
        self.sim = sim
        self.sid = sid
        self.number = number
        self.called = called
        self.caller = caller
        self.start_url = start_url
        self.status_url = status_url
        self.direction = direction
        self.hangup_at_text = hangup_at_text
        self.started = sim.t
        self.deadline = sim.t + sim.limit_seconds
        self.redirect_to: str | None = None
        self.records: list[Record] = []
        self.heard: list[str] = []
        self.errors: list[str] = []
        self.queues: list[str] = []
        self.positions: list[int] = []
        self.reached_agent = False
        self.connected_at: float | None = None
        """Simulation seconds when the caller was first put through to an agent."""
        self.agent_done_at: float | None = None
        """Simulation seconds when that first conversation ended."""
        self.assigned_at: float | None = None
        """Simulation seconds when a hold round last put the caller through to an agent (a <Dial>)
        before one picked up: when the line handed them to the agent."""
        self.answered_at: float | None = None
        """Simulation seconds when an agent first picked up (before their whisper): the end of the
        caller's wait, as the line measures it (`Switchboard.answered`)."""
        self.patience: float | None = None
        """Seconds the caller holds on in a queue before hanging up (None: no limit); counted only
        while they hold, not while being put through to an agent."""
        self._patience_left: float | None = None
        """What is left of `patience` (None: they have not held yet)."""
        self._patience_ends: float | None = None
        """While they hold: the instant their patience runs out (None: it is not running)."""
        self.ended = False
        self.status = "in-progress"
        self.in_queue = False
        """In an <Enqueue>: <Leave> and a <Dial><Queue> apply."""
        self.bridged_by: str | None = None
        self._bridge_url: str | None = None
        self._answered = False
        self._ended_at: float | None = None
        self._quiet_until: float | None = None
        """The caller presses nothing before this instant (a `wN` of the script)."""
        self._pending: Step | None = None
        self._menu_silent = False
        """The caller lets the current menu time out (`t`, or the script is over)."""

    # --- bookkeeping ------------------------------------------------------------------------------

    def log(self, kind: str, text: str, **data: Any) -> None:
        record = Record(self.sim.t - self.started, self.sid, kind, text, data)
        self.records.append(record)
        self.sim.emit(record)

    def _params(self, **extra: str) -> dict[str, str]:
        inbound = self.direction == "inbound"
        params = {
            "AccountSid": self.sim.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "CallStatus": "in-progress" if self._answered else "ringing",
            "Direction": self.direction,
            "From": self.number if inbound else self.called,
            "To": self.called if inbound else self.number,
            "Caller": self.number if inbound else self.called,
            "Called": self.called if inbound else self.number,
        }
        params.update(extra)
        return params

    def _sleep(self, seconds: float) -> Generator[float, None, None]:
        """Let `seconds` of call time pass; a hang-up, a REST redirect or a bridge interrupts it."""
        end = self.sim.t + max(0.0, seconds)
        while True:
            if self.redirect_to is not None:
                url, self.redirect_to = self.redirect_to, None
                raise _Redirected(url)
            if self.bridged_by is not None and self.in_queue:
                raise _Bridged(self.bridged_by)
            hangs_up = self.hangs_up_at
            if self.sim.t >= hangs_up:
                raise _HungUp()
            if self.sim.t >= end:
                return
            yield min(end, hangs_up) - self.sim.t

    @property
    def hangs_up_at(self) -> float:
        """When the caller hangs up if nothing else ends the call first: at their `deadline`, or
        when their patience runs out while they hold."""
        if self._patience_ends is None:
            return self.deadline
        return min(self.deadline, self._patience_ends)

    # --- the caller's timeline ------------------------------------------------------------------

    def _take(self, at: str) -> Step | None:
        step, self._pending = self._pending, None
        return step if step is not None else self.caller.next_step(at, self.heard)

    def _act(
        self, until: float, during_prompt: bool
    ) -> Generator[float, None, Press | Utter | None]:
        """What the caller does at a menu before `until`: the keys they press, the words they say,
        or None (nothing).

        A caller listens to a menu's prompts before acting, unless a wait (`wN`) of theirs ends while
        a prompt plays: the item after it happens then, so a key interrupts the prompt. A wait runs in
        call time: menus time out and the call goes on while the caller waits."""
        while True:
            if self._quiet_until is not None:
                if self._quiet_until > until:
                    yield from self._sleep(until - self.sim.t)
                    return None
                yield from self._sleep(self._quiet_until - self.sim.t)
                self._quiet_until = None
            elif during_prompt or self._menu_silent:
                yield from self._sleep(until - self.sim.t)
                return None
            step = self._take("menu")
            if isinstance(step, Wait):
                self.log("wait", f"waits {step.seconds:g} s", seconds=step.seconds)
                self._quiet_until = self.sim.t + step.seconds
            elif isinstance(step, HangUp):
                if step.after <= 0:
                    raise _HungUp()
                self.deadline = min(self.deadline, self.sim.t + step.after)
            elif isinstance(step, Press | Utter):
                return step
            elif not isinstance(step, Speak):  # Silence, or the script is over: nothing here
                self._menu_silent = True

    # --- requests ---------------------------------------------------------------------------------

    def fetch(self, url: str, method: str, extra: dict[str, str]) -> tuple[Verb, ...]:
        """Request a webhook and parse its TwiML; anything Twilio would refuse raises."""
        params = self._params(**extra)
        self._answered = True
        reply = self.sim.request(method, url, params, self)
        self.log("request", f"{method} {_path(url)}", params={k: v for k, v in extra.items()})
        verbs = _accepted(reply, _path(url))
        self._note_queue(url, verbs)
        return verbs

    def _note_queue(self, url: str, verbs: tuple[Verb, ...]) -> None:
        """A hold round of the app's queue (`/hold?queue=...`): the caller holds, and their patience
        runs, unless the answer puts them through to an agent (a <Dial>): then it pauses."""
        query = dict(parse_qsl(urlsplit(url).query))
        queue = query.get("queue")
        if not (urlsplit(url).path.endswith("/hold") and queue):
            return
        if queue not in self.queues:
            self.queues.append(queue)
            self.log("queue", f"joins queue {queue}", queue=queue)
        if any(verb.name == "Dial" for verb in verbs):
            if self.answered_at is None:
                self.assigned_at = self.sim.t
            self._pause_patience()
        else:
            self._run_patience()

    def _run_patience(self) -> None:
        """The caller holds: their patience runs down from what is left of it."""
        if self.patience is None or self._patience_ends is not None:
            return
        if self._patience_left is None:
            self._patience_left = self.patience
        self._patience_ends = self.sim.t + self._patience_left

    def _pause_patience(self) -> None:
        """The caller is being put through to an agent: they wait for the agent, not the queue, and
        keep what is left of their patience in case they are put back on hold."""
        if self._patience_ends is None:
            return
        self._patience_left = max(0.0, self._patience_ends - self.sim.t)
        self._patience_ends = None

    def _reach_agent(self) -> None:
        """The caller talks to an agent now: note when; their patience does not run meanwhile."""
        self.reached_agent = True
        if self.connected_at is None:
            self.connected_at = self.sim.t
        self._pause_patience()

    def post_quietly(self, url: str, method: str, extra: dict[str, str]) -> None:
        """A request whose TwiML Twilio ignores (the caller is gone)."""
        try:
            self.fetch(url, method, extra)
        except SimulationError as exc:
            self.fail(str(exc))

    def fail(self, message: str) -> None:
        self.errors.append(message)
        self.log("error", message)

    # --- the call ---------------------------------------------------------------------------------

    def run(self) -> Generator[float, None, None]:
        """Follow the call from its first webhook to its end, then send the status callback."""
        where: Next = (self.start_url, "POST", {})
        try:
            while where is not END:
                try:
                    verbs = self.fetch(*where)
                    where = yield from self._document(verbs, where[0])
                except _Redirected as redirect:
                    self.log("redirect", f"moved by the REST API to {_path(redirect.url)}")
                    where = (redirect.url, "POST", {})
        except _HungUp:
            self.log("hangup", "the caller hangs up")
        except SimulationError as exc:
            self.fail(str(exc))
            self.status = "failed"
        finally:
            self.ended = True
            self._ended_at = self.sim.t
            self.sim.leave_twilio_queues(self.sid)
        if self.status_url:
            if self.sim.status_delay > 0:
                # Twilio's status callback is not guaranteed to arrive before other webhooks.
                yield self.sim.status_delay
            self._status_callback(self.status_url)

    def _status_callback(self, url: str) -> None:
        """Twilio tells the number's status callback that the call ended; it ignores the body."""
        status = "completed" if self.status == "in-progress" else self.status
        duration = str(round(self.ended_at - self.started))
        late = self.sim.t - self.ended_at
        reply = self.sim.request(
            "POST", url, self._params(CallStatus=status, CallDuration=duration), self
        )
        when = f" ({late:g} s late)" if late > 0 else ""
        self.log("status", f"status callback: {status} after {duration} s{when}", status=status)
        if reply.status >= 400:
            self.fail(f"status callback {_path(url)} answered HTTP {reply.status}")

    @property
    def ended_at(self) -> float:
        return self._ended_at if self._ended_at is not None else self.sim.t

    def _document(self, verbs: tuple[Verb, ...], url: str) -> Generator[float, None, Next]:
        for index, verb in enumerate(verbs):
            if verb.name == "Reject" and index == 0 and self.direction == "inbound":
                reason = verb.attr("reason", "rejected")
                self.status = "busy" if reason == "busy" else "no-answer"
                self.log("hangup", f"call rejected ({reason})")
                return END
            where = yield from self._verb(verb, url)
            if where is not None:
                return where
        self.log("hangup", "end of the TwiML document: Twilio hangs up")
        return END

    def _verb(self, verb: Verb, url: str) -> Generator[float, None, Next | None]:
        name = verb.name
        if name in ("Say", "Play", "Pause"):
            yield from self._speech(verb, url)
            return None
        if name == "Gather":
            return (yield from self._gather(verb, url))
        if name == "Redirect":
            return (urljoin(url, verb.text), verb.attr("method", "POST") or "POST", {})
        if name == "Record":
            return (yield from self._record(verb, url))
        if name == "Dial":
            return (yield from self._dial(verb, url))
        if name == "Enqueue":
            return (yield from self._enqueue(verb, url))
        if name in ("Hangup", "Reject"):
            self.log("hangup", "the service hangs up")
            return END
        if name == "Leave":
            if not self.in_queue:
                # Twilio's <Leave> page: "The <Leave> verb is used in conjunction with <Enqueue>".
                raise SimulationError(
                    "<Leave> outside an <Enqueue> waitUrl: the call is in no queue"
                )
            raise _Left()
        raise SimulationError(f"<{name}> is valid TwiML but not simulated")

    # --- speech -------------------------------------------------------------------------------------

    def _speech(
        self, verb: Verb, url: str, listen: bool = False
    ) -> Generator[float, None, Press | Utter | None]:
        """Speak, play or pause; with `listen` (inside a <Gather>) the caller's first key (or words)
        interrupts it and is returned."""
        loops = verb.int_attr("loop", 1)
        if verb.name == "Pause":
            seconds = float(verb.int_attr("length", 1))
            self.log("pause", f"silence for {seconds:g} s", seconds=seconds)
        elif verb.name == "Play":
            if verb.attr("digits"):
                seconds = DTMF_TONE_SECONDS * len(verb.attr("digits") or "")
                self.log("play", f"digits {verb.attr('digits')}", seconds=seconds)
            else:
                clip = self.sim.clip(urljoin(url, verb.text), self)
                seconds = clip * loops if loops else _FOREVER
                self.log("play", verb.text, url=verb.text, seconds=round(clip, 1))
        else:
            text = " ".join(verb.text.split())
            language = verb.attr("language", "en-US") or "en-US"
            voice = verb.attr("voice", "man") or "man"
            problem = self.sim.voice_problem(voice, language) if "." in voice else None
            if problem:
                raise SimulationError(f"<Say voice={voice!r} language={language!r}>: {problem}")
            data: dict[str, Any] = {"language": language, "voice": voice}
            found = self.sim.matcher.identify(text) if self.sim.matcher else None
            if found:
                data["prompt"], params = found
                self._note_position(found[0], params)
            self.heard.append(text)
            if found:
                self.sim.heard_prompt(self, found[0], found[1], language)
            self.log("say", text, **data)
            if self.hangup_at_text and self.hangup_at_text in text:
                raise _HungUp()
            # Twilio's <Say> page: loop="0" repeats the text until the call ends.
            seconds = speaking_seconds(text) * loops if loops else _FOREVER
        if not listen:
            yield from self._sleep(seconds)
            return None
        started = self.sim.t
        pressed = yield from self._act(self.sim.t + seconds, during_prompt=True)
        if pressed is not None:
            by = "a key" if isinstance(pressed, Press) else "the caller's words"
            self.log(
                "interrupted",
                f"<{verb.name}> cut off after {self.sim.t - started:g} s by {by}",
                seconds=round(self.sim.t - started, 1),
            )
        return pressed

    def _note_position(self, prompt: str, params: dict[str, str]) -> None:
        position = {"queue_next": "1"}.get(prompt) or params.get("position")
        if prompt in ("queue_next", "queue_position") and position and position.isdigit():
            self.positions.append(int(position))
            self.log("position", f"hears position {position}", position=int(position))

    # --- menus ----------------------------------------------------------------------------------------

    def _gather(self, verb: Verb, url: str) -> Generator[float, None, Next | None]:
        action = urljoin(url, verb.attr("action") or url)
        method = verb.attr("method", "POST") or "POST"
        finish = verb.attr("finishOnKey", "#") or ""
        wanted = verb.int_attr("numDigits", 0)
        timeout = verb.int_attr("timeout", 5)
        on_empty = verb.attr("actionOnEmptyResult", "false") == "true"
        takes = gather_input(verb)
        self._menu_silent = False
        wait_first = getattr(self.caller, "wait_first", None)
        if self._quiet_until is None and self._pending is None and wait_first is not None:
            seconds = wait_first()
            if seconds is not None:
                self.log("wait", f"waits {seconds:g} s", seconds=seconds)
                self._quiet_until = self.sim.t + seconds
        done: Press | Utter | None = None
        for child in verb.children:
            done = yield from self._speech(child, url, listen=True)
            if done is not None and not self._heard(done, takes):
                done = None  # the prompt goes on: Twilio did not notice
            if done is not None:
                break
        # The time-out starts when the prompts end: a wait of the caller's counts against it.
        until = self.sim.t + timeout
        while done is None and self.sim.t < until and not self._menu_silent:
            done = yield from self._act(until, during_prompt=False)
            if done is not None and not self._heard(done, takes):
                done = None
        if isinstance(done, Utter):
            return (yield from self._said(done, takes, action, method))
        digits, finished_on = "", ""
        if done is None:
            if self.sim.t < until:
                yield from self._sleep(until - self.sim.t)
            self.log("silence", f"presses nothing; the menu times out after {timeout} s")
        else:
            for key in done.digits:
                self.log("press", f"presses {key}", key=key)
                if key == finish:
                    finished_on = key
                    break
                digits += key
                if wanted and len(digits) >= wanted:
                    break
            else:
                # No finishing key and not enough digits: Twilio waits `timeout` for another key.
                yield from self._sleep(timeout)
        if digits or finished_on or on_empty:
            return (action, method, {"Digits": digits, "FinishedOnKey": finished_on})
        return None  # Twilio goes on with the verb after the <Gather>

    def _heard(self, done: Press | Utter, takes: GatherInput) -> bool:
        """Whether this <Gather> takes what the caller did; if not, it is silence to Twilio and the
        caller does nothing more at this menu (they wait for an answer that does not come)."""
        if isinstance(done, Utter) and not takes.speech:
            self.log(
                "unheard",
                f'says "{done.text}", but this <Gather> takes keys only: Twilio hears silence',
                words=done.text,
            )
        elif isinstance(done, Press) and not takes.keys:
            self.log(
                "unheard",
                f"presses {done.digits}, but this <Gather> takes speech only: Twilio hears nothing",
                key=done.digits,
            )
        else:
            return True
        self._menu_silent = True
        return False

    def _said(
        self, said: Utter, takes: GatherInput, action: str, method: str
    ) -> Generator[float, None, Next]:
        """Words at a <Gather> that takes speech: the caller speaks, Twilio waits for the pause
        after them (speechTimeout), then posts the whole transcription at once, with no Digits."""
        self.log(
            "speech",
            f'says "{said.text}" ({takes.language}, confidence {said.confidence:g})',
            words=said.text,
            language=takes.language,
            confidence=said.confidence,
        )
        yield from self._sleep(speaking_seconds(said.text))
        pause = takes.speech_timeout
        yield from self._sleep(SPEECH_PAUSE_SECONDS if pause == "auto" else float(pause))
        return (action, method, {"SpeechResult": said.text, "Confidence": f"{said.confidence:g}"})

    def _record(self, verb: Verb, url: str) -> Generator[float, None, Next | None]:
        action = urljoin(url, verb.attr("action") or url)
        method = verb.attr("method", "POST") or "POST"
        longest = float(verb.int_attr("maxLength", 3600))
        silence = float(verb.int_attr("timeout", 5))
        finish = verb.attr("finishOnKey", "1234567890*#") or ""
        trim = verb.attr("trim", "trim-silence") == "trim-silence"
        self.log("record", f"recording starts (at most {longest:g} s)")
        started = self.sim.t
        spoken, key, why = 0.0, "", ""

        def result() -> dict[str, str]:
            recording = self.sim.new_recording_sid()
            duration = spoken if trim else self.sim.t - started
            extra = {
                "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.sim.account_sid}"
                f"/Recordings/{recording}",
                "RecordingSid": recording,
                "RecordingDuration": str(round(duration)),
            }
            if key:
                extra["Digits"] = key
            return extra

        try:
            while not why:
                left = started + longest - self.sim.t
                if left <= 0:
                    why = f"reaches maxLength ({longest:g} s)"
                    break
                if self._quiet_until is not None and self._quiet_until > self.sim.t:
                    quiet = min(self._quiet_until - self.sim.t, left)
                    if silence and quiet >= silence:
                        yield from self._sleep(silence)
                        why = f"{silence:g} s of silence"
                    else:
                        yield from self._sleep(quiet)
                    continue
                self._quiet_until = None
                step = self._take("record")
                if isinstance(step, Utter):  # words into a recording: speech of their length
                    step = Speak(round(speaking_seconds(step.text)))
                if isinstance(step, Speak):
                    seconds = min(float(step.seconds), left)
                    yield from self._sleep(seconds)
                    spoken += seconds
                    self.log("record", f"speaks for {seconds:g} s", seconds=seconds)
                elif isinstance(step, Wait):
                    self._quiet_until = self.sim.t + step.seconds
                elif isinstance(step, Press):
                    key = next((k for k in step.digits if k in finish), "")
                    self.log("press", f"presses {step.digits}", key=step.digits)
                    if key:
                        why = f"presses {key}"
                elif isinstance(step, HangUp):
                    if step.after <= 0:
                        raise _HungUp()
                    self.deadline = min(self.deadline, self.sim.t + step.after)
                else:  # silent from now on
                    yield from self._sleep(min(silence, left) if silence else left)
                    why = (
                        f"{silence:g} s of silence"
                        if silence
                        else f"reaches maxLength ({longest:g} s)"
                    )
        except _HungUp:
            if spoken > 0:
                # Twilio's <Record> page: Digits is "hangup" when the caller hung up, and the action
                # is still requested with the recording.
                key = "hangup"
                self.log("record", "the caller hangs up: the recording ends", seconds=spoken)
                self.post_quietly(action, method, result())
            raise
        if spoken <= 0:
            # Twilio's <Record> page: with no audio recorded, the action URL is not requested and
            # Twilio goes on with the next verb.
            self.log("record", "nothing was said: no recording, Twilio goes on to the next verb")
            return None
        self.log("record", f"the recording ends: the caller {why}", seconds=spoken, ended=why)
        return (action, method, result())

    # --- agents ---------------------------------------------------------------------------------------

    def _dial(self, verb: Verb, url: str) -> Generator[float, None, Next | None]:
        action = verb.attr("action")
        method = verb.attr("method", "POST") or "POST"
        timeout = verb.int_attr("timeout", 30)
        noun = verb.children[0] if verb.children else Verb("Number", {}, verb.text, ())
        if noun.name == "Queue":
            return (yield from self._dial_queue(verb, noun, url))
        identity = next((c.text for c in noun.children if c.name == "Identity"), "")
        target = noun.text or identity or "(no one)"
        agent = self.sim.agent
        self.log("dial", f"rings {noun.name.lower()} {target}", target=target, noun=noun.name)
        answers = agent.answers and agent.answer_after < timeout
        status, talked, dial_sid = "no-answer", 0, self.sim.new_sid()
        try:
            yield from self._sleep(agent.answer_after if answers else timeout)
            # Our model: the dialed call (the agent's leg) lasts from the agent's answer to its
            # hang-up, its whisper included; DialCallDuration is that call's duration.
            picked_up = self.sim.t
            if answers and self.answered_at is None:
                self.answered_at = picked_up
            if answers and noun.attr("url"):
                answers = yield from self._whisper(
                    urljoin(url, noun.attr("url") or ""), noun, dial_sid
                )
            if answers:
                status = "completed"
                self._reach_agent()
                self.log("agent", f"{target} answers; caller and agent talk", target=target)
                try:
                    yield from self._sleep(agent.conversation_seconds())
                finally:
                    talked = round(self.sim.t - picked_up)
                    if self.agent_done_at is None:
                        self.agent_done_at = self.sim.t
                self.log("agent", f"{target} hangs up after {talked} s", seconds=talked)
            else:
                self.log("agent", f"{target} does not answer within {timeout} s")
        except _HungUp:
            if action:
                extra = _dial_result(status, dial_sid, talked, caller_gone=True)
                self.post_quietly(urljoin(url, action), method, extra)
            raise
        if not action:
            return None
        return (urljoin(url, action), method, _dial_result(status, dial_sid, talked, False))

    def _whisper(self, url: str, noun: Verb, dial_sid: str) -> Generator[float, None, bool]:
        """The agent's leg runs the noun's `url` TwiML before being connected; False if it hangs up.

        The whisper is a webhook like any other (15 s, no 3xx, valid TwiML), and it takes the time
        its prompts take: the caller is connected when the agent has heard it."""
        params = self._params(
            CallSid=dial_sid, ParentCallSid=self.sid, Direction="outbound-dial", To=noun.text
        )
        reply = self.sim.request(noun.attr("method", "POST") or "POST", url, params, self)
        verbs = _accepted(reply, f"{_path(url)} (agent's whisper)")
        for verb in verbs:
            if verb.name in ("Hangup", "Reject"):
                self.log("whisper", "the agent's leg is hung up before connecting")
                return False
            if verb.name == "Say":
                self.log("whisper", f"agent hears: {verb.text}", language=verb.attr("language"))
                yield from self._sleep(
                    speaking_seconds(verb.text) * max(1, verb.int_attr("loop", 1))
                )
            elif verb.name == "Pause":
                yield from self._sleep(verb.int_attr("length", 1))
            elif verb.name == "Play":
                self.log("whisper", f"agent hears {verb.text}")
                yield from self._sleep(self.sim.clip(urljoin(url, verb.text), self))
        return True

    def _dial_queue(self, verb: Verb, noun: Verb, url: str) -> Generator[float, None, Next | None]:
        """<Dial><Queue>: connect with the first caller waiting in a Twilio queue (not a phone).

        Twilio's <Queue> page: "When dialing a queue, the caller will be connected with the first
        enqueued call in the specified queue. If the queue is empty, Dial will wait until the next
        person joins the queue or until the <Dial> timeout duration is reached. If the queue does
        not exist, Dial will post an error status to its action URL." """
        action = verb.attr("action")
        method = verb.attr("method", "POST") or "POST"
        timeout = verb.int_attr("timeout", 30)
        name = noun.text
        self.log("dial", f"dequeues the first caller of Twilio queue {name}", noun="Queue")
        status, talked, other = "no-answer", 0, None
        if name not in self.sim.twilio_queues_seen:
            status = "failed"
            self.log("agent", f"Twilio queue {name} does not exist")
        else:
            until = self.sim.t + timeout
            while self.sim.t < until:
                line = self.sim.twilio_queue(name)
                if line:
                    other = self.sim.calls[line[0]]
                    break
                yield from self._sleep(min(1.0, until - self.sim.t))
        if other is not None:
            other.bridge(self.sid, noun.attr("url") and urljoin(url, noun.attr("url") or ""))
            if other.answered_at is None:
                other.answered_at = self.sim.t
            status = "completed"
            self._reach_agent()
            self.log("agent", f"connected with {other.number} from queue {name}")
            started = self.sim.t
            try:
                yield from self._sleep(self.sim.agent.conversation_seconds())
            finally:
                talked = round(self.sim.t - started)
        if not action:
            return None
        return (urljoin(url, action), method, _dial_result(status, "", talked, False))

    def bridge(self, dialer: str, url: str | None) -> None:
        """Another call's <Dial><Queue> takes this call out of its Twilio queue."""
        self.bridged_by = dialer
        self._bridge_url = url
        self.sim.leave_twilio_queues(self.sid)
        self.sim.wake(self.sid)

    def _enqueue(self, verb: Verb, url: str) -> Generator[float, None, Next | None]:
        name = verb.text or "default"
        action = verb.attr("action")
        method = verb.attr("method", "POST") or "POST"
        wait_url = verb.attr("waitUrl")
        line = self.sim.twilio_queue(name)
        queue_sid = (
            "QU" + hashlib.sha256(f"{self.sim.account_sid}:{name}".encode()).hexdigest()[:32]
        )
        entered = self.sim.t

        def result(outcome: str) -> dict[str, str]:
            return {
                "QueueResult": outcome,
                "QueueSid": queue_sid,
                "QueueTime": str(round(self.sim.t - entered)),
            }

        if len(line) >= self.sim.queue_size:
            self.log("queue", f"Twilio queue {name} is full ({len(line)} callers)", queue=name)
            return (urljoin(url, action), method, result("queue-full")) if action else None
        line.append(self.sid)
        self.in_queue = True
        self.log("queue", f"joins Twilio queue {name} at position {len(line)}", queue=name)
        outcome = "hangup"
        try:
            while True:
                if (
                    self.sim.dequeue_after is not None
                    and self.sim.t - entered >= self.sim.dequeue_after
                ):
                    outcome = "bridged"
                    self.log("agent", f"an agent takes the call from queue {name}")
                    self.in_queue = False
                    yield from self._sleep(self.sim.agent.conversation_seconds())
                    break
                if not wait_url:
                    yield from self._sleep(self.sim.play_seconds)
                    continue
                waited = round(self.sim.t - entered)
                position = line.index(self.sid) + 1
                self.log("position", f"hears position {position}", position=position)
                self.positions.append(position)
                wait = urljoin(url, wait_url)
                try:
                    verbs = self.fetch(
                        wait,
                        verb.attr("waitUrlMethod", "POST") or "POST",
                        {
                            "QueueSid": queue_sid,
                            "QueuePosition": str(position),
                            "QueueTime": str(waited),
                            "AvgQueueTime": str(waited),
                            "CurrentQueueSize": str(len(line)),
                        },
                    )
                except SimulationError as exc:
                    # Twilio reports a waitUrl it cannot run as QueueResult=error.
                    self.fail(str(exc))
                    outcome = "error"
                    break
                where = yield from self._document_in_queue(verbs, wait)
                if where is not None:
                    if action:
                        self.post_quietly(
                            urljoin(url, action), method, result("redirected-from-waitUrl")
                        )
                    return where
        except _Left:
            outcome = "leave"
            self.log("queue", f"leaves Twilio queue {name}")
        except _Bridged:
            outcome = "bridged"
            self.in_queue = False
            yield from self._bridged(name)
        except _Redirected:
            if action:  # the REST API took the call out of the queue: Twilio still reports it
                self.post_quietly(urljoin(url, action), method, result("redirected"))
            raise
        except _HungUp:
            if action:
                self.post_quietly(urljoin(url, action), method, result("hangup"))
            raise
        finally:
            self.in_queue = False
            if self.sid in line:
                line.remove(self.sid)
        if not action:
            return None
        return (urljoin(url, action), method, result(outcome))

    def _bridged(self, name: str) -> Generator[float, None, None]:
        """Dequeued by a <Dial><Queue>: the <Queue url> runs on this caller's end, then they talk."""
        self._reach_agent()
        self.log("agent", f"an agent takes the call from queue {name}; caller and agent talk")
        if self._bridge_url:
            reply = self.sim.request("POST", self._bridge_url, self._params(), self)
            for verb in _accepted(reply, f"{_path(self._bridge_url)} (<Queue url>)"):
                if verb.name not in ("Say", "Play", "Pause", "Redirect"):
                    raise SimulationError(f"<{verb.name}> is not allowed in a <Queue url> document")
                if verb.name != "Redirect":
                    yield from self._speech(verb, self._bridge_url)
        yield from self._sleep(self.sim.agent.conversation_seconds())

    def _document_in_queue(
        self, verbs: tuple[Verb, ...], url: str
    ) -> Generator[float, None, Next | None]:
        allowed = {"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"}
        for verb in verbs:
            if verb.name not in allowed:
                raise SimulationError(f"<{verb.name}> is not allowed in an <Enqueue> waitUrl")
            where = yield from self._verb(verb, url)
            if where is END:
                raise _HungUp()
            if where is not None:
                return where
        return None


_FOREVER = 10.0 * 365 * 24 * 3600
"""loop="0": until something ends it (the caller, a key, the time limit of a call)."""


def _accepted(reply: Reply, what: str) -> tuple[Verb, ...]:
    """The TwiML of a webhook's reply, or SimulationError saying why Twilio would refuse it."""
    if reply.seconds > TWILIO_TIMEOUT_SECONDS:
        raise SimulationError(f"{what} took {reply.seconds:.1f} s; Twilio gives up after 15 s")
    if reply.status >= 400:
        first = reply.body.decode("utf-8", "replace").strip().splitlines()[:1]
        raise SimulationError(f"{what} answered HTTP {reply.status}: {' '.join(first)}")
    if reply.status >= 300:
        raise SimulationError(f"{what} answered HTTP {reply.status}; Twilio drops Digits on a 3xx")
    try:
        return parse_twiml(reply.body, reply.content_type)
    except TwimlError as exc:
        raise SimulationError(f"{what}: {exc}") from exc


def _dial_result(status: str, sid: str, talked: int, caller_gone: bool) -> dict[str, str]:
    return {
        "DialCallStatus": status,
        "DialCallSid": sid,
        "DialCallDuration": str(talked),
        "CallStatus": "completed" if caller_gone else "in-progress",
    }


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Simulator:
    """Runs simulated calls in one virtual timeline (in time order), like a tiny Twilio."""

    def __init__(
        self,
        transport: Transport,
        start: datetime,
        *,
        clock: FrozenClock | None = None,
        matcher: PromptMatcher | None = None,
        agent: AgentBehaviour | None = None,
        play_seconds: float = DEFAULT_PLAY_SECONDS,
        limit_seconds: float = 1800.0,
        dequeue_after: float | None = None,
        on_record: Callable[[Record], None] | None = None,
        clips: Mapping[str, float] | None = None,
        measure: Callable[[bytes, str], float | None] | None = None,
        voice_problem: Callable[[str, str], str | None] | None = None,
        retries: int = 0,
        status_delay: float = 0.0,
        queue_size: int = TWILIO_QUEUE_SIZE,
        on_prompt: PromptListener | None = None,
    ) -> None:
        self.transport = transport
        self.on_prompt = on_prompt
        """Told of every prompt a caller hears that the matcher recognises (a load run's recorder)."""
        self.on_call_done: Callable[[SimulatedCall], None] | None = None
        """Told of every call (inbound or a callback) once it has ended (the progress shown)."""
        self.start = start
        self.clock = clock
        self.matcher = matcher
        self.agent = agent or AgentBehaviour()
        self.play_seconds = play_seconds
        self.limit_seconds = limit_seconds
        self.dequeue_after = dequeue_after
        self.account_sid = "AC" + "5" * 32
        self.t = 0.0
        self.calls: dict[str, SimulatedCall] = {}
        self._on_record = on_record
        self._heap: list[tuple[float, int, str]] = []
        self._runners: dict[str, Generator[float, None, None]] = {}
        self._due: dict[str, int] = {}
        """The heap entry each call resumes at; any other entry for it is stale."""
        self._seq = itertools.count()
        self._sids = itertools.count(1)
        self._twilio_queues: dict[str, list[str]] = {}
        self.twilio_queues_seen: set[str] = set()
        self.clips = dict(clips or {})
        """Declared lengths of clips by absolute URL (remote hold music: `hold_music_seconds`)."""
        self._measure = measure
        self._measured: dict[str, float] = {}
        self._voice_problem = voice_problem
        self.retries = retries
        """Each webhook is sent this many more times, as Twilio retries one whose answer it lost."""
        self.status_delay = status_delay
        """Seconds between a call's end and its status callback (other calls go on meanwhile)."""
        self.queue_size = queue_size
        self._tokens = itertools.count(1)
        if retries and "headers" not in inspect.signature(transport.send).parameters:
            raise ValueError("retries need a transport that sends headers")

    def rewind(self) -> None:
        """Start the next call at the simulation's first instant again (between finished calls)."""
        if self._heap:
            raise RuntimeError("cannot rewind while calls are still running")
        self.t = 0.0

    def new_sid(self) -> str:
        return f"CA{secrets.token_hex(12)}{next(self._sids):08x}"

    def emit(self, record: Record) -> None:
        if self._on_record:
            self._on_record(record)

    def heard_prompt(
        self, call: SimulatedCall, prompt: str, params: dict[str, str], language: str
    ) -> None:
        if self.on_prompt is not None:
            self.on_prompt(call, prompt, params, language)

    def schedule(self, at: float, action: Callable[[], None]) -> None:
        """Run `action` `at` seconds into the simulation, in time order with the calls, with the
        app's clock set to that instant (an agent logging in or out during a load run)."""

        def timer() -> Generator[float, None, None]:
            if self.clock is not None:
                self.clock.set(self.now())
            action()
            yield from ()

        key = f"timer-{next(self._seq)}"
        self._runners[key] = timer()
        self._push(key, at)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def request(
        self, method: str, url: str, params: dict[str, str], call: SimulatedCall | None = None
    ) -> Reply:
        """One webhook, as Twilio makes it; with `retries`, sent again with the same URL, form and
        I-Twilio-Idempotency-Token, as when Twilio did not get the first answer (the last counts)."""
        if self.clock is not None:
            self.clock.set(self.now())
        if method == "GET":
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            params = {}
        if not self.retries:
            return self.transport.send(method, url, params)
        token = f"{self.account_sid[2:10]}-{next(self._tokens):08d}"
        headers = {IDEMPOTENCY_HEADER: token}
        reply = self.transport.send(method, url, params, headers=headers)  # type: ignore[call-arg]
        for attempt in range(self.retries):
            again = self.transport.send(method, url, params, headers=headers)  # type: ignore[call-arg]
            if call is not None:
                call.log(
                    "retry",
                    f"Twilio retries {method} {_path(url)} (attempt {attempt + 2})",
                    token=token,
                    same=again.body == reply.body,
                )
            reply = again
        return reply

    def clip(self, url: str, call: SimulatedCall | None = None) -> float:
        """How long a `<Play>` of `url` lasts: its declared length, else its measured length when
        the app serves it (a missing recording is an error), else `play_seconds`."""
        if url in self.clips:
            return self.clips[url]
        if url in self._measured:
            return self._measured[url]
        own = urlsplit(self.transport.base_url).netloc == urlsplit(url).netloc
        if not own or self._measure is None:
            return self.play_seconds
        reply = self.transport.send("GET", url, {})
        if reply.status != 200:
            raise SimulationError(f"<Play> {_path(url)} answered HTTP {reply.status}: no audio")
        seconds = self._measure(reply.body, url)
        if seconds is None:
            raise SimulationError(f"<Play> {_path(url)} is not audio Twilio can play")
        self._measured[url] = seconds
        return seconds

    def voice_problem(self, voice: str, language: str) -> str | None:
        """Why Twilio's <Say> cannot speak `language` with `voice` (None: it can, or not checked)."""
        return self._voice_problem(voice, language) if self._voice_problem else None

    def new_recording_sid(self) -> str:
        return f"RE{secrets.token_hex(16)}"

    def wake(self, sid: str) -> None:
        """Resume a call now (it was interrupted: bridged, redirected)."""
        if sid in self._runners:
            self._push(sid, self.t)

    def absolute(self, path: str) -> str:
        return urljoin(self.transport.base_url + "/", path.lstrip("/"))

    def place_call(
        self,
        number: str,
        called: str,
        caller: Caller,
        *,
        at: float = 0.0,
        start_path: str = "/voice/incoming",
        status_path: str | None = "/voice/status",
        hangup_at_text: str | None = None,
        hangup_after: float | None = None,
        patience: float | None = None,
    ) -> SimulatedCall:
        """An inbound call from `number` to `called`, arriving `at` seconds into the simulation;
        the caller hangs up `hangup_after` seconds after dialling, if the call lasts that long,
        or once they have held `patience` seconds in a queue: the time between an agent being
        assigned (the hold round answers with a <Dial>) and the caller being put back on hold
        (the agent did not answer), or talking, does not count."""
        call = SimulatedCall(
            self,
            self.new_sid(),
            number,
            called,
            caller,
            self.absolute(start_path),
            self.absolute(status_path) if status_path else None,
            hangup_at_text=hangup_at_text,
        )
        call.started = at
        call.deadline = at + (self.limit_seconds if hangup_after is None else hangup_after)
        call.patience = patience
        self._schedule(call, at)
        return call

    def place_outbound(self, to: str, from_: str, url: str, status_url: str | None) -> str:
        """A call the app asked Twilio to place (a callback); the simulated callee answers."""
        call = SimulatedCall(
            self, self.new_sid(), to, from_, ScriptedCaller([]), url, status_url, "outbound-api"
        )
        call.log("outbound", f"the service calls {to} back", to=to)
        self._schedule(call, self.t)
        return call.sid

    def _schedule(self, call: SimulatedCall, at: float) -> None:
        self.calls[call.sid] = call
        self._runners[call.sid] = call.run()
        self._push(call.sid, at)

    def redirect(self, sid: str, url: str) -> bool:
        """The REST API moved a live call: it leaves what it is doing and fetches `url` now."""
        call = self.calls.get(sid)
        if call is None or call.ended:
            return False
        call.redirect_to = url
        self._push(sid, self.t)
        return True

    def twilio_queue(self, name: str) -> list[str]:
        self.twilio_queues_seen.add(name)
        return self._twilio_queues.setdefault(name, [])

    def leave_twilio_queues(self, sid: str) -> None:
        for line in self._twilio_queues.values():
            if sid in line:
                line.remove(sid)

    def run(self) -> None:
        """Run every call to its end, in time order."""
        while self._heap:
            when, seq, sid = heapq.heappop(self._heap)
            runner = self._runners.get(sid)
            if runner is None or seq != self._due[sid]:
                continue  # finished, or superseded because a REST redirect woke the call earlier
            self.t = max(self.t, when)
            try:
                delay = next(
                    runner
                )  # the call reads the time itself; it only says how long it waits
            except StopIteration:
                del self._runners[sid]
                if self.on_call_done is not None and sid in self.calls:
                    self.on_call_done(self.calls[sid])
                continue
            self._push(sid, self.t + delay)

    def _push(self, sid: str, when: float) -> None:
        seq = next(self._seq)
        self._due[sid] = seq
        heapq.heappush(self._heap, (when, seq, sid))
