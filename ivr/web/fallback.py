"""The number's Fallback URL: what a caller hears when the service failed them.

Twilio requests the Fallback URL "if Twilio is unable to retrieve or execute TwiML from your web
server" (a timeout, an HTTP 5xx, TwiML it refuses), with `ErrorCode` and `ErrorUrl`. So it must work
when everything else does not: it answers from memory (the rules and prompts this process already
holds, else fixed English words), with no database and no Redis. The caller hears an apology in
their language (read from the failed URL's `language`), then the operator line (`IVR_OPERATOR_NUMBER`)
or, without one or when nobody answers, a voicemail. A voicemail is journaled when the spool can take
it; Twilio keeps the recording in the account either way.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.flow import Decision, Flow
from ivr.security import refuse_unsigned
from ivr.services import services
from ivr.switchboard import Call
from ivr.tickets.changes import Outcome, TicketChange
from ivr.web.inbound import SID, caller_ids, fingerprint, recording_fields, twiml

log = logging.getLogger("ivr.fallback")  # the name its log lines have always carried
bp = Blueprint("fallback", __name__, url_prefix="/voice/fallback")
bp.before_request(refuse_unsigned)

MAX_RECORDING_SECONDS = 180
_FIXED = {
    "technical_problem": "We are sorry, something went wrong on our side.",
    "voicemail_instructions": "After the tone, please leave your question and how to reach you.",
    "voicemail_saved": "Thank you. Your message has been saved.",
    "voicemail_empty": "Sorry, we did not hear a message.",
    "goodbye": "Goodbye.",
}
"""What the caller hears when not even the prompts can be had."""


class _Voice:
    """Speaks prompts in one language from the prompts in memory, or the fixed English words."""

    def __init__(self, language: str | None) -> None:
        self.flow: Flow | None = None
        try:
            bundle = services().rules.get()
            flow = Flow(bundle, services().clock.now())
            codes = flow.rules.language_codes
            self.language = language if language in codes else flow.rules.defaults.language
            self.flow = flow
        except Exception:  # the fallback must answer whatever is broken
            log.exception("fallback: no prompts in memory; answering in fixed English words")
            self.language = "en-US"

    def say(self, response: VoiceResponse, prompt: str) -> None:
        if self.flow is not None:
            try:
                catalog = self.flow.prompts.catalog(self.language)
                text = self.flow.say(prompt, self.language).text
                response.say(text, voice=catalog.voice, language=catalog.say_language)
                return
            except Exception:
                log.exception("fallback: prompt %s failed; saying it in fixed English", prompt)
        response.say(_FIXED[prompt], language="en-US")


def _language_of(url: str) -> str | None:
    """The `language` of the webhook URL that failed, if it names one."""
    return dict(parse_qsl(urlsplit(url).query)).get("language") or None


def _here(path: str, language: str) -> str:
    return f"/voice/fallback{path}?{urlencode({'language': language})}"


def _voicemail(response: VoiceResponse, voice: _Voice) -> None:
    voice.say(response, "voicemail_instructions")
    response.record(
        action=_here("/recorded", voice.language),
        method="POST",
        max_length=MAX_RECORDING_SECONDS,
        finish_on_key="#",
        play_beep=True,
        timeout=5,
    )
    voice.say(response, "voicemail_empty")  # Twilio goes on here when nothing was recorded
    voice.say(response, "goodbye")
    response.hangup()


@bp.post("")
def fallback() -> Response:
    """The Fallback URL: an apology, then the operator line or a voicemail."""
    error_code = request.form.get("ErrorCode", "")[:16]
    error_url = request.form.get("ErrorUrl", "")[:2000]
    log.error(
        "fallback for %s: Twilio error %s on %s", request.form.get("CallSid"), error_code, error_url
    )
    voice = _Voice(_language_of(error_url))
    response = VoiceResponse()
    voice.say(response, "technical_problem")
    operator = services().settings.operator_number
    if operator:
        dial = response.dial(action=_here("/dialled", voice.language), method="POST", timeout=30)
        dial.number(operator)
    else:
        _voicemail(response, voice)
    return twiml(str(response))


@bp.post("/dialled")
def dialled() -> Response:
    """The operator line was called: goodbye after a conversation, else a voicemail."""
    voice = _Voice(request.args.get("language"))
    response = VoiceResponse()
    if request.form.get("DialCallStatus") == "completed":
        voice.say(response, "goodbye")
        response.hangup()
    else:
        _voicemail(response, voice)
    return twiml(str(response))


@bp.post("/recorded")
def recorded() -> Response:
    """The voicemail is recorded: keep it on the call's ticket if the spool can, thank the caller."""
    voice = _Voice(request.args.get("language"))
    _journal_voicemail()
    response = VoiceResponse()
    voice.say(response, "voicemail_saved")
    voice.say(response, "goodbye")
    response.hangup()
    return twiml(str(response))


def _journal_voicemail() -> None:
    try:
        sid = request.form.get("CallSid", "")
        url, seconds = recording_fields()
        if not SID.match(sid) or not url or not seconds:
            return
        number, called = caller_ids()
        call = Call(sid, number, called, fingerprint(), ticket_sid=sid)
        change = TicketChange(
            outcome=Outcome.VOICEMAIL, recording_url=url, recording_duration=seconds
        )
        services().switchboard.apply(call, Decision((), change), always=True)
    except Exception:  # the caller is thanked whatever happens to the record
        log.exception(
            "fallback: the voicemail of %s could not be journaled", request.form.get("CallSid")
        )
