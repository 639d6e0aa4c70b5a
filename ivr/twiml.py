"""Render flow decisions as TwiML with the `twilio` library.

Webhook URLs in the TwiML are relative (`/voice/input?...`): Twilio resolves them against the URL it
just requested, so they stay right behind any proxy or public host name. Besides the flow's own state,
every URL carries the call's context (`carry`: the ticket reference), so that later webhooks know it
without asking a store.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _render_action(
    response: VoiceResponse, action: Action, prompts: Prompts, carry: Mapping[str, str]
) -> None:
    if isinstance(action, FlowGather):
        url = state_url(action.then, carry)
        if action.several_digits:
            keys: dict[str, object] = {"finish_on_key": "#"}
        else:
            keys = {"num_digits": 1, "finish_on_key": ""}  # so that # reaches us ("go back")
        gather = response.gather(
            input="dtmf", timeout=action.timeout, action=url, method="POST", **keys
        )
        for item in action.speech:
            _speak(gather, item, prompts)
        # A Gather that hears nothing falls through to the next verb: tell the flow about the silence.
        response.redirect(url, method="POST")
    elif isinstance(action, GoTo):
        response.redirect(state_url(action.state, carry), method="POST")
    elif isinstance(action, Record):
        response.record(
            action=state_url(action.then, carry),
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
            action=state_url(action.then, carry),
            method="POST",
            timeout=action.timeout,
            answer_on_bridge=True,  # the caller hears hold music, not ringing, until the agent answers
        )
        whisper = state_url(action.whisper, carry)
        if action.phone:
            dial.number(action.phone, url=whisper, method="POST")
        elif action.client:
            dial.client(action.client, url=whisper, method="POST")
    else:
        _speak(response, action, prompts)


def render(decision: Decision, prompts: Prompts, carry: Mapping[str, str] | None = None) -> str:
    """The TwiML document for a decision; `carry` goes into every webhook URL in it.

    Callers at the same place hear the same document but for their ticket reference, so documents
    are built once per version of the prompts and their reference is filled in afterwards."""
    reference = (carry or {}).get("ref")
    if reference is not None and not reference.isdigit():
        return _build(decision.actions, prompts, carry or {})  # not cacheable: build it as it is
    key = (id(prompts), decision.actions, reference is not None)
    cached = _documents.get(key)
    if cached is None or cached[0] is not prompts:
        slot = {"ref": _REFERENCE_SLOT} if reference is not None else {}
        cached = (prompts, _build(decision.actions, prompts, slot))
        if len(_documents) >= _CACHED_DOCUMENTS:
            _documents.clear()  # a new version of the rules: start afresh
        _documents[key] = cached
    document = cached[1]
    return document if reference is None else document.replace(_REFERENCE_SLOT, reference)


def _build(actions: tuple[Action, ...], prompts: Prompts, carry: Mapping[str, str]) -> str:
    response = VoiceResponse()
    for action in actions:
        _render_action(response, action, prompts, carry)
    return str(response)


# Letters only: urlencode leaves it as it is, and no prompt or URL of ours contains it.
_REFERENCE_SLOT = "IVRTICKETREFERENCESLOT"
_CACHED_DOCUMENTS = 20_000
_documents: dict[tuple[int, tuple[Action, ...], bool], tuple[Prompts, str]] = {}
