"""Render flow decisions as TwiML with the `twilio` library.

Webhook URLs in the TwiML are relative (`/voice/input?...`): Twilio resolves them against the URL it
just requested, so they stay right behind any proxy or public host name. Besides the flow's own state,
every URL carries the call's context (`carry`: the ticket reference), so that later webhooks know it
without asking a store, and ends in its seal (`ivr.signing`), so that nobody else can make one up.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

from twilio.twiml.voice_response import Gather as TwiGather
from twilio.twiml.voice_response import VoiceResponse

from ivr.flow import (
    Action,
    CallState,
    Decision,
    Dial,
    GoTo,
    Hangup,
    Music,
    Pause,
    Record,
    Say,
    Speech,
)
from ivr.flow import Gather as FlowGather
from ivr.rules.prompts import Prompts
from ivr.signing import SEAL_PARAM

Seal = Callable[[str, CallState], str]
"""The seal of a webhook URL that continues the call at that state (`Signer.seal_of`)."""
URLs = Callable[[CallState], str]
SPEECH_PAUSE_SECONDS = 2
"""At a menu that listens: the pause after a caller's words at which Twilio stops listening."""

STEP_PATHS = {
    "language": "/voice/input",
    "menu": "/voice/input",
    "closed": "/voice/input",
    "survey": "/voice/input",
    "hold": "/voice/hold",
    "voicemail": "/voice/recording",
    "agent": "/voice/agent",
    "whisper": "/voice/whisper",
    "agent_line": "/agent/voice",
    "greet": "/voice/greet",
    "lock_offer": "/voice/lock/offer",
    "lock_code": "/voice/lock/code",
    "lock": "/voice/lock/account",
    "confirm": "/voice/input",
    "incident": "/voice/incident",
}


def state_url(state: CallState, carry: Mapping[str, str] | None = None) -> str:
    """The webhook that continues the call at `state`, carrying the call's context."""
    return f"{STEP_PATHS[state.step]}?{_query({**state.to_params(), **(carry or {})})}"


def _query(params: Mapping[str, str]) -> str:
    """`urlencode(params)`, the same text, without quoting what quoting leaves as it is."""
    return "&".join([f"{_quoted_name(name)}={_quoted(value)}" for name, value in params.items()])


def _quoted(text: str) -> str:
    return text if _UNQUOTED.fullmatch(text) else quote_plus(text)


@lru_cache(maxsize=256)
def _quoted_name(name: str) -> str:
    return _quoted(name)  # the same few names in every URL


_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")
"""What `quote_plus` gives back unchanged."""


def audio_url(language: str, file_name: str) -> str:
    return f"/voice/audio/{language}/{file_name}"


def _speak(parent: VoiceResponse | TwiGather, item: Speech, prompts: Prompts) -> None:
    if isinstance(item, Say):
        if item.audio:
            parent.play(audio_url(item.language, item.audio))
            return
        catalog = prompts.catalog(item.language)
        parent.say(item.text, voice=catalog.voice, language=catalog.say_language)
    elif isinstance(item, Pause):
        parent.pause(length=item.seconds)
    elif isinstance(item, Music):
        parent.play(item.url)


def _render_action(response: VoiceResponse, action: Action, prompts: Prompts, urls: URLs) -> None:
    if isinstance(action, FlowGather):
        url = urls(action.then)
        if action.several_digits:
            keys: dict[str, object] = {"finish_on_key": "#"}
            if action.num_digits:
                keys["num_digits"] = action.num_digits
        else:
            keys = {"num_digits": 1, "finish_on_key": ""}  # so that # reaches us ("go back")
        if action.listen is not None:
            # Keys and speech together; Twilio stops listening after a pause in the speech. A
            # number of seconds, not "auto": Twilio warns "speechTimeout auto cannot be used with
            # model default" (13335), and we leave the model to Twilio.
            keys["input"] = "dtmf speech"
            keys["language"] = action.listen.language
            keys["speech_timeout"] = SPEECH_PAUSE_SECONDS
            if action.listen.hints:
                keys["hints"] = action.listen.hints
        else:
            keys["input"] = "dtmf"
        gather = response.gather(timeout=action.timeout, action=url, method="POST", **keys)
        for item in action.speech:
            _speak(gather, item, prompts)
        # A Gather that hears nothing falls through to the next verb: tell the flow about the silence.
        response.redirect(url, method="POST")
    elif isinstance(action, GoTo):
        response.redirect(urls(action.state), method="POST")
    elif isinstance(action, Record):
        response.record(
            action=urls(action.then),
            method="POST",
            max_length=action.max_seconds,
            finish_on_key="#",
            play_beep=True,
            timeout=5,
            trim="trim-silence",
        )
    elif isinstance(action, Hangup):
        response.hangup()
    elif isinstance(action, Dial):
        dial = response.dial(
            action=urls(action.then),
            method="POST",
            timeout=action.timeout,
            answer_on_bridge=True,  # the caller hears hold music, not ringing, until the agent answers
        )
        whisper = urls(action.whisper)
        if action.phone:
            dial.number(action.phone, url=whisper, method="POST")
        elif action.client:
            dial.client(action.client, url=whisper, method="POST")
    else:
        _speak(response, action, prompts)


def render(
    decision: Decision,
    prompts: Prompts,
    carry: Mapping[str, str] | None = None,
    seal: Seal | None = None,
) -> str:
    """The TwiML document for a decision; `carry` goes into every webhook URL in it, and so does
    the caller's silence clock (`Decision.silent_since`, in place of any a state of the decision
    carries); each URL ends in its `seal` (without one, as in the unit tests of this module, URLs
    are not sealed).

    Callers at the same place hear documents of the same shape: the same verbs and attributes,
    with their own words (position, wait) and their own webhook URLs (arrival time, round, what
    they last heard, ticket reference, seal). So a document is built once per shape and version
    of the prompts (`_TEMPLATES`, least recently used dropped first) and each answer fills in
    its words and URLs, byte for byte what building it afresh gives (`_render_afresh`)."""
    carry = _carried(decision, carry)
    texts: list[str] = []
    states: list[CallState] = []
    shape = tuple(_shape(action, texts, states) for action in decision.actions)
    template = _TEMPLATES.get(prompts, shape, len(texts))
    values = [_escape(text) for text in texts]
    values += [_escape(_sealed(state, carry, seal)) for state in states]
    return template.filled(values)


SILENT_SINCE = "silent_since"
"""The URL parameter of the caller's silence clock (`CallState.silent_since`)."""
NOTICE = "notice"
"""The URL parameter of the incident notice a call heard (`Decision.notice`, `Caller.notice`)."""


def _carried(decision: Decision, carry: Mapping[str, str] | None) -> dict[str, str]:
    """What every webhook URL of `decision`'s document carries: `carry`, the caller's silence
    clock (`Decision.silent_since`) and the incident notice it plays (`Decision.notice`)."""
    carried = dict(carry or {})
    if decision.silent_since is not None:
        carried[SILENT_SINCE] = str(decision.silent_since)
    if decision.notice is not None:
        carried[NOTICE] = str(decision.notice)
    return carried


def _sealed(state: CallState, carry: Mapping[str, str], seal: Seal | None) -> str:
    """The webhook URL of `state` with the call's context and (given `seal`) its seal. The state's
    own silence clock is left out: the decision's, in `carry`, is the one URLs carry."""
    params = state.to_params()
    params.pop(SILENT_SINCE, None)
    url = f"{STEP_PATHS[state.step]}?{_query({**params, **carry})}"
    return url if seal is None else f"{url}&{SEAL_PARAM}={seal(url, state)}"


def _render_afresh(
    decision: Decision,
    prompts: Prompts,
    carry: Mapping[str, str] | None = None,
    seal: Seal | None = None,
) -> str:
    """`render` without templates: the document built verb by verb (what templates must match)."""
    carry = _carried(decision, carry)
    return _build(decision.actions, prompts, lambda state: _sealed(state, carry, seal))


def _build(actions: tuple[Action, ...], prompts: Prompts, urls: URLs) -> str:
    response = VoiceResponse()
    for action in actions:
        _render_action(response, action, prompts, urls)
    return str(response)


# --- templates ------------------------------------------------------------------------------------
#
# A document's shape is its actions with each spoken text and each state replaced by a slot: a
# `Say` whose text is a slot marker, a `_StateSlot` where a state was. Shapes compare and hash as
# the actions do, and rendering a shape gives the document with markers where the words and URLs
# go. Markers are letters and digits only, which XML and urlencode leave as they are, and hold a
# random word drawn at start-up, so that no menu's hints, agent's number or hold-music URL that
# stays in a template as it is can be taken for one.

_NONCE = secrets.token_hex(6)
_MARKER = re.compile(rf"ivr{_NONCE}slot(\d+)x")


def _marker(index: int) -> str:
    return f"ivr{_NONCE}slot{index}x"


@dataclass(frozen=True)
class _StateSlot:
    """Where a state was in an action: its webhook URL goes into slot `index`."""

    index: int


def _shape(value: object, texts: list[str], states: list[CallState]) -> object:
    """`value` (an action, or a part of one) with its texts and states replaced by slots, numbered
    in the order met; the texts and states are appended to `texts` and `states`. Slots of texts
    come first: text `i` is slot `i`, state `j` is slot `len(texts) + j` once the walk is over,
    so states are numbered apart (`_StateSlot`) and placed after the texts when filled."""
    kind: type[Any] = type(value)  # exact types: a dispatch that costs one look-up, not a chain
    if kind is Say:
        assert isinstance(value, Say)
        if value.audio:  # a recording: the text is not in the document
            return Say("", value.language, "", value.audio)
        if not value.text:
            return Say("", value.language, "")
        texts.append(value.text)
        return Say(_marker(len(texts) - 1), value.language, "")
    if kind is CallState:
        assert isinstance(value, CallState)
        states.append(value)
        return _StateSlot(len(states) - 1)
    if kind is tuple:
        assert isinstance(value, tuple)
        return tuple(_shape(item, texts, states) for item in value)
    names = _fields(kind)
    if not names:
        return value  # plain values (numbers, names) and verbs of constants: as they are
    parts = {}
    for name in names:
        part = getattr(value, name)
        parts[name] = part if type(part) in _PLAIN else _shape(part, texts, states)
    return kind(**parts)


_PLAIN = frozenset({str, int, bool, type(None)})
"""Values that are part of a shape as they are (looked up to save a call for each)."""


def _fields(kind: type[Any]) -> tuple[str, ...]:
    """The fields of a dataclass that may hold texts or states; none for anything else."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        holds = is_dataclass(kind) and kind not in (Pause, Music, Hangup)
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind)) if holds else ()
    return names


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


@dataclass(frozen=True)
class _Template:
    prompts: Prompts
    texts: int
    """How many slots hold words; the rest hold webhook URLs."""
    pieces: tuple[str, ...]
    """The document's text between slots: one more piece than `slots`."""
    slots: tuple[int, ...]
    """Which slot goes between each two pieces (text slots first, then state slots)."""

    def filled(self, values: list[str]) -> str:
        """The document with `values` (texts then URLs, escaped for XML) in their slots."""
        parts = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            parts.append(values[slot])
            parts.append(piece)
        return "".join(parts)


def _template(shape: tuple[object, ...], prompts: Prompts, texts: int) -> _Template:
    """The template of a document of `shape` whose first `texts` slots hold words."""

    def place(slot: object) -> str:
        assert isinstance(slot, _StateSlot)
        return _marker(texts + slot.index)

    actions: tuple[Action, ...] = shape  # type: ignore[assignment]  # with slots for states
    document = _build(actions, prompts, place)
    split = _MARKER.split(document)
    return _Template(prompts, texts, tuple(split[0::2]), tuple(int(n) for n in split[1::2]))


class _Templates:
    """Documents by shape and prompts, at most `size`, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._templates: OrderedDict[tuple[int, tuple[object, ...]], _Template] = OrderedDict()

    def get(self, prompts: Prompts, shape: tuple[object, ...], texts: int) -> _Template:
        """The template of `shape` (whose first `texts` slots hold words) with these prompts."""
        key = (id(prompts), shape)
        with self._lock:
            template = self._templates.get(key)
            if template is not None and template.prompts is prompts:
                self._templates.move_to_end(key)
                return template
        # Built outside the lock: two threads may both build it, and either's will do.
        template = _template(shape, prompts, texts)
        with self._lock:
            self._templates[key] = template
            self._templates.move_to_end(key)
            while len(self._templates) > self._size:
                self._templates.popitem(last=False)
        return template

    def __len__(self) -> int:
        return len(self._templates)


TEMPLATES_KEPT = 2_000
"""Document shapes kept per process: a line's menus, hold rounds and answers are a few hundred."""
_TEMPLATES = _Templates(TEMPLATES_KEPT)


def _escape(text: str) -> str:
    """As ElementTree escapes an element's text. In an attribute it also escapes quotes, tabs and
    line ends, which no URL of ours holds (urlencode leaves none), so URLs are escaped this way
    wherever they stand (an action attribute, a Redirect's text)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text
