"""Render flow decisions as TwiML with the `twilio` library.

Webhook URLs in the TwiML are relative (`/voice/input?...`): Twilio resolves them against the URL it
just requested, so they stay right behind any proxy or public host name. Besides the flow's own state,
every URL carries the call's context (`carry`: the ticket reference), so that later webhooks know it
without asking a store, and ends in its seal (`ivr.signing`), so that nobody else can make one up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

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
from ivr.prompts import Prompts
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
}


def state_url(state: CallState, carry: Mapping[str, str] | None = None) -> str:
    """The webhook that continues the call at `state`, carrying the call's context."""
    return f"{STEP_PATHS[state.step]}?{urlencode({**state.to_params(), **(carry or {})})}"


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

    Callers at the same place hear the same document but for their ticket reference, silence
    clock and seals, so documents are built once per version of the prompts and those are filled
    in afterwards."""
    carry = dict(carry or {})
    if decision.silent_since is not None:
        carry[SILENT_SINCE] = str(decision.silent_since)
    actions = _unclocked(decision.actions)
    if not all(value.isdigit() for value in carry.values()):  # not cacheable: build it as it is
        return _build(actions, prompts, lambda state: _sealed(state, carry, seal))
    names = tuple(sorted(carry))
    key = (id(prompts), actions, names, seal is not None)
    template = _documents.get(key)
    if template is None or template.prompts is not prompts:
        template = _template(actions, prompts, names, seal is not None)
        if len(_documents) >= _CACHED_DOCUMENTS:
            _documents.clear()  # a new version of the rules: start afresh
        _documents[key] = template
    document = _filled(template.document, carry, names)
    if seal is not None:
        for index, (url, state) in enumerate(template.urls):
            document = document.replace(_seal_slot(index), seal(_filled(url, carry, names), state))
    return document


SILENT_SINCE = "silent_since"
"""The URL parameter of the caller's silence clock (`CallState.silent_since`)."""


def _unclocked(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """The actions with no silence clock in their states: the decision's is the one URLs carry."""
    if not any(state.silent_since is not None for state in _states(actions)):
        return actions
    return tuple(_without_clock(action) for action in actions)


def _states(actions: tuple[Action, ...]) -> Iterator[CallState]:
    for action in actions:
        if isinstance(action, FlowGather | Record):
            yield action.then
        elif isinstance(action, GoTo):
            yield action.state
        elif isinstance(action, Dial):
            yield from (action.then, action.whisper)


def _without_clock(action: Action) -> Action:
    if isinstance(action, FlowGather | Record):
        return replace(action, then=replace(action.then, silent_since=None))
    if isinstance(action, GoTo):
        return replace(action, state=replace(action.state, silent_since=None))
    if isinstance(action, Dial):
        then, whisper = action.then, action.whisper
        return replace(
            action,
            then=replace(then, silent_since=None),
            whisper=replace(whisper, silent_since=None),
        )
    return action


def _sealed(state: CallState, carry: Mapping[str, str], seal: Seal | None) -> str:
    url = state_url(state, carry)
    return url if seal is None else f"{url}&{SEAL_PARAM}={seal(url, state)}"


def _filled(text: str, carry: Mapping[str, str], names: tuple[str, ...]) -> str:
    """A template's text with the call's own values in place of their slots."""
    for index, name in enumerate(names):
        text = text.replace(_carry_slot(index), carry[name])
    return text


@dataclass(frozen=True)
class _Template:
    prompts: Prompts
    document: str
    """The document with slots for the call's own values (`carry`) and for the seal of each URL
    in `urls`."""
    urls: tuple[tuple[str, CallState], ...]
    """The distinct webhook URLs in the document (with the slots of the call's own values) and
    their states."""


def _template(
    actions: tuple[Action, ...], prompts: Prompts, names: tuple[str, ...], sealed: bool
) -> _Template:
    carry = {name: _carry_slot(index) for index, name in enumerate(names)}
    urls: dict[str, CallState] = {}

    def place(state: CallState) -> str:
        url = state_url(state, carry)
        if not sealed:
            return url
        urls.setdefault(url, state)
        return f"{url}&{SEAL_PARAM}={_seal_slot(list(urls).index(url))}"

    document = _build(actions, prompts, place)
    return _Template(prompts, document, tuple(urls.items()))


def _build(actions: tuple[Action, ...], prompts: Prompts, urls: URLs) -> str:
    response = VoiceResponse()
    for action in actions:
        _render_action(response, action, prompts, urls)
    return str(response)


# Letters and digits only: urlencode leaves them as they are, and no prompt or URL of ours has them.
def _seal_slot(index: int) -> str:
    return f"IVRSEAL{index}SLOT"


def _carry_slot(index: int) -> str:
    return f"IVRCARRY{index}SLOT"


_CACHED_DOCUMENTS = 20_000
_documents: dict[tuple[int, tuple[Action, ...], tuple[str, ...], bool], _Template] = {}
