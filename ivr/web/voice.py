"""Twilio's voice webhooks: authenticate, parse, ask the flow, apply, render. Nothing else.

No webhook waits on a store for its ticket: what the ticket should record goes to the journal (a local
spool, shipped to Redis), which a writer takes to the database (`ivr.writer`), so a database
outage costs callers nothing. If Redis is down, a caller on hold keeps their place in the URL state;
anything unexpected gets an apology and the operator queue instead of an HTTP 500.

Nobody acts for someone else: the state in a webhook's URL is obeyed only when it carries the seal
this service gave it for that call (`ivr.signing`), and each request takes effect once. Its
fingerprint (URL, seal and form) keys its journal record, so Twilio's retries and replays count
once; the steps whose effect is not in the journal (an agent answering, a conversation ending, an
agent logging in or out) ask Redis whether the request is new (`Switchboard.first_time`), and a
call whose final status came is never queued again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Literal

from flask import Blueprint, Response, abort, request, send_from_directory
from werkzeug.exceptions import HTTPException

from ivr.exchange.contract import Verification
from ivr.exchange.hook import KnownCaller
from ivr.flow import (
    ASKED_CALLBACK,
    LOCK_NOW,
    Caller,
    Decision,
    Flow,
)
from ivr.queue import NewerEntry
from ivr.security import refuse_unsigned
from ivr.services import services
from ivr.speech import Utterance
from ivr.switchboard import Call, carried
from ivr.throttle import forgive, verification_sources, wait_before
from ivr.tickets.changes import FINAL_STATUSES
from ivr.twiml import render
from ivr.web.inbound import (
    SID,
    Sealed,
    admitted,
    answer,
    arrive,
    at_step,
    current_flow,
    hand_back,
    recording_fields,
    respond,
    seconds,
    twiml,
    unseal,
)

log = logging.getLogger("ivr.webhooks")  # the name its log lines have always carried
bp = Blueprint("voice", __name__, url_prefix="/voice")

COUNTRY = re.compile(r"^[A-Z]{2}$")
"""An ISO country code, as Twilio's `FromCountry` gives it."""
PHONE = re.compile(r"^\+[1-9][0-9]{6,15}$")
"""A caller ID the exchange can be asked about (E.164)."""
CODE = re.compile(r"^[0-9]{6}$")
GREET_WAITS_SECONDS = 0.6
"""How long the greeting waits for the exchange's lookup (started a second earlier, at most 1.5 s)."""
_AUDIO_FILE = re.compile(r"^[a-z][a-z0-9_]*\.(mp3|wav)$")
HANG_UP = "<Response><Hangup/></Response>"


@bp.before_request
def authenticate() -> Response | None:
    """Refuse requests not signed by Twilio (403); in development mode, warn instead."""
    return None if request.endpoint == "voice.audio" else refuse_unsigned()


@bp.errorhandler(Exception)
def apologise(error: Exception) -> Response:
    """Bad requests get their 4xx; a failure of ours still gives the caller a way to a person."""
    if isinstance(error, HTTPException):
        if error.response is not None:  # a whole answer (`at_step`'s restart)
            return error.response  # type: ignore[return-value]
        return Response(f"{error.description}\n", error.code or 400, mimetype="text/plain")
    log.exception("webhook %s failed; sending the caller to the operator queue", request.path)
    sid = request.form.get("CallSid", "")
    sealed = unseal(sid, request.form.get("ParentCallSid", "")) if SID.match(sid) else Sealed()
    version, bundle = services().rules.for_call(sealed.rules_version)
    flow = Flow(bundle, services().clock.now())
    carry = carried(sealed.reference, sealed.notice, version)
    language = sealed.state.language if sealed.state else None
    return twiml(render(flow.apology(language), flow.prompts, carry))


@bp.errorhandler(NewerEntry)
def hand_back_newer_entry(error: NewerEntry) -> Response:
    """The caller's queue entry (or their agent) is a newer release's (`Call.hands_back`): nothing
    was changed or journaled; the call goes back to the proxy, which may give it to a newer
    instance. `arrive` lets this happen only while hand-backs are left, on a URL sealed for the
    call."""
    sid = request.form.get("CallSid", "")
    sealed = unseal(sid, "")
    again = hand_back(sealed.origin or sid, "queue entry")
    return again if again is not None else apologise(error)


def _caller(call: Call) -> Caller:
    """The call's caller: their number, the ticket reference, the code a callback to them opens
    with, and what the exchange knows of them."""
    # The code is the ticket's (its call's), whichever leg asks: a callback we placed that is
    # asked for again opens with the same code.
    code = call.callback_code or services().signer.callback_code(call.owner)
    known = services().known.of(call.owner)
    return Caller(
        call.their_number,
        call.reference or "",
        known=known,
        callback_code=code,
        country=_country(call),
        notice=call.notice,
    )


def _country(call: Call) -> str | None:
    """The caller's country (ISO code) as Twilio knows it: of `From`, or on a callback we placed,
    of `To` (the caller's number)."""
    country = request.form.get("ToCountry" if call.called_back else "FromCountry", "")
    country = country.strip().upper()
    return country if COUNTRY.match(country) else None


@bp.post("/incoming")
def incoming() -> Response:
    """The number's Voice URL: a new call. With an exchange hook, the exchange is asked who is
    calling while the caller hears a second of silence (nothing here waits for its answer)."""
    call, _ = arrive()
    flow = current_flow(call)
    known = services().known
    look_up = known.enabled and call.number is not None and PHONE.match(call.number) is not None
    if look_up:
        known.look_up(call.sid, call.number)
    caller = Caller(call.number, call.reference or "", country=_country(call))
    return respond(call, flow.answer(caller, look_up=look_up), flow, always=True)


@bp.post("/greet")
def greet() -> Response:
    """After the second of silence: the greeting, in a known caller's own language."""
    call, flow, _ = at_step("greet")
    known = services().known.wait(call.owner, GREET_WAITS_SECONDS)
    return respond(call, flow.greet(Caller(call.number, call.reference or "", known)), flow)


# --- lock my account now ---------------------------------------------------------------------------


@bp.post("/lock/offer")
def lock_offer() -> Response:
    """A known caller answered the offer to lock their account: for LOCK_NOW, the exchange sends
    them a code (verifications throttled per account and per calling number)."""
    call, flow, state = at_step("lock_offer")
    caller = _caller(call)
    digits = request.form.get("Digits")
    sent: Verification | Literal["throttled"] | None = None
    if digits == LOCK_NOW and caller.known is not None:
        sent = _send_code(call, caller.known)
    return respond(call, flow.lock_offered(state, digits, caller, sent), flow)


@bp.post("/lock/code")
def lock_code() -> Response:
    """The caller keyed the code (never logged, never journaled): the exchange checks it."""
    call, flow, state = at_step("lock_code")
    assert state.verification is not None  # admitted: a lock_code step names its verification
    code = request.form.get("Digits") or ""
    keyed = CODE.match(code) is not None
    checked = services().exchange.check_code(state.verification, code) if keyed else None
    decision = flow.code_keyed(state, keyed, checked)
    if decision.ticket.verified is not None:
        services().known.verified(call.owner, decision.ticket.verified)
        _forgive(call, _caller(call).known)
    return respond(call, decision, flow)


@bp.post("/lock/account")
def lock_account() -> Response:
    """Have the exchange lock the caller's account; then say so, and the security team."""
    call, flow, state = at_step("lock")
    caller = _caller(call)
    locked: bool | None = None
    if caller.known is not None and call.reference:
        if services().switchboard.first_time(call):
            verified = state.stage in ("app", "sms")
            locked = services().exchange.lock(
                caller.known.account, call.owner, call.reference, verified
            )
            if locked:
                services().known.locked(call.owner, services().clock.now())
        else:  # Twilio's retry, or a replay: the account was locked (or not) by the first
            locked = caller.known.locked_at is not None
    return respond(call, flow.account_locked(state, caller, locked), flow)


def _send_code(call: Call, known: KnownCaller) -> Verification | Literal["throttled"] | None:
    """Ask the exchange for a code, unless this account or number asked too often lately."""
    wait = wait_before(services().queue, *verification_sources(known.account, call.number))
    if wait is None:
        log.warning("verification for call %s not throttled: Redis is away; not sent", call.sid)
        return None
    if wait > 0:
        return "throttled"
    return services().exchange.start_verification(known.account, call.owner)


def _forgive(call: Call, known: KnownCaller | None) -> None:
    """A right code: the account's and the number's counts of codes start afresh."""
    if known is None:
        return
    for source in verification_sources(known.account, call.number):
        if not forgive(services().queue, source):
            log.warning("could not reset the verification count of %s", source)


@bp.post("/input")
def keypress() -> Response:
    """A key (or silence) in a menu, the after-hours offer or the satisfaction survey; words at
    a menu that listens, and the one question after words it was unsure of."""
    call, flow, state = at_step("language", "menu", "closed", "survey", "confirm")
    decision = flow.on_input(state, request.form.get("Digits"), _caller(call), _said())
    return respond(call, decision, flow)


SAID_MAX = 1000
"""Characters of `SpeechResult` looked at: more is not something a caller said to a menu."""


def _said() -> Utterance | None:
    """What Twilio heard at a menu that listens: `SpeechResult` and its `Confidence` (0-1)."""
    text = request.form.get("SpeechResult")
    if not text:
        return None
    try:
        confidence: float | None = float(request.form.get("Confidence", ""))
    except ValueError:
        confidence = None
    if confidence is not None and not 0.0 <= confidence <= 1.0:  # nan too
        confidence = None
    return Utterance(text[:SAID_MAX], confidence)


@bp.post("/incident")
def incident() -> Response:
    """The incident notice before the queue, and the key pressed at it (keep waiting, or a
    callback that keeps the place: offered where the line can place one)."""
    call, flow, state = at_step("incident")
    can_call_back = services().telephony.enabled
    decision = flow.incident_notice(state, request.form.get("Digits"), _caller(call), can_call_back)
    return respond(call, decision, flow)


@bp.post("/hold")
def hold() -> Response:
    """One round of holding (or a key pressed during it); connects the caller when it is their turn."""
    call, flow, state = at_step("hold")
    # The callback key pressed at the incident notice: this first round answers it (or connects
    # the caller, when an agent is free right now).
    asked_callback = state.stage == ASKED_CALLBACK
    state = replace(state, stage=None) if asked_callback else state
    board = services().switchboard
    turn = board.hold_round(call, state, flow.rules)
    if turn.ended:
        return twiml(HANG_UP)  # a late or replayed poll of a call that has ended
    if turn.agent is not None and turn.agent in flow.rules.agents:
        decision = flow.connect(state, turn.agent)
    else:
        if turn.agent is not None:  # the agent was removed from the rules meanwhile
            board.not_answered(call, turn.agent, state)
            turn = board.hold_round(call, state, flow.rules)
        digits = request.form.get("Digits")
        if asked_callback:
            digits = flow.rules.hold_keys.callback
        if digits is None:
            decision = flow.hold(state, turn.info)
        else:
            decision = flow.on_hold_key(state, digits, turn.info, _caller(call))
    if call.callback_code is not None:
        # A callback we placed was answered: it proves itself before anyone speaks.
        decision = flow.open_callback(decision, state, _caller(call))
    return respond(call, decision, flow)


@bp.post("/whisper")
def whisper() -> Response:
    """The agent answered: the caller leaves the queue, the agent hears who is calling.

    Twilio's retry or a replay of it hears the whisper again and changes nothing."""
    call, given = arrive(numbered=False, agent_leg=True)
    flow = current_flow(call)
    state = admitted(flow, given, "whisper")
    if state is None:
        return twiml(HANG_UP)  # not a whisper of ours: nobody to put through
    board = services().switchboard
    if board.first_time(call) and board.answered(call) is None:
        return twiml(HANG_UP)  # the caller is gone: nobody to put through
    known = services().known.of(call.owner)  # the caller's call: verified, account locked
    return answer(call, flow.whisper(state, call.reference or "", known), flow)


@bp.post("/agent")
def agent_done() -> Response:
    """The `<Dial>` to the agent ended: free the agent, then the survey or back in line.

    Twilio's retry or a replay of it gets the same answer and frees nobody a second time."""
    call, flow, state = at_step("agent")
    assert state.agent is not None  # admitted: an agent step names its agent and queue
    board = services().switchboard
    answered = request.form.get("DialCallStatus") == "completed"
    if board.first_time(call):
        if answered:
            talk = seconds(request.form.get("DialCallDuration")) or 0
            by_caller = request.form.get("CallStatus") == "completed"
            board.conversation_ended(call, state.agent, state, talk, by_caller)
        else:
            board.not_answered(call, state.agent, state)
    return respond(call, flow.after_agent(state, answered), flow)


@bp.post("/recording")
def recording() -> Response:
    """A voicemail finished recording."""
    call, flow, state = at_step("voicemail")
    url, duration = recording_fields()
    return respond(call, flow.recorded(state, url, duration, _caller(call)), flow)


@bp.post("/status")
def status() -> Response:
    """Status callback: the call ended; free its place (or keep it for a callback) and its agent.

    Always accepted (204): Twilio does not retry a status callback, so what it carries goes to the
    journal whatever the stores are doing."""
    call, _ = arrive(numbered=False)
    call_status = request.form.get("CallStatus", "").strip().lower()
    board = services().switchboard
    if call_status not in FINAL_STATUSES:
        # ringing / in-progress: make sure the call has its ticket
        board.apply(call, Decision(()), always=True)
        return Response(status=204)
    board.end(call, call_status, seconds(request.form.get("CallDuration")))
    return Response(status=204)


@bp.get("/audio/<language>/<name>")
def audio(language: str, name: str) -> Response:
    """Recorded prompts, fetched by Twilio for `<Play>`."""
    prompts = services().rules.get().prompts
    if language not in prompts.catalogs or not _AUDIO_FILE.match(name):
        abort(404)
    return send_from_directory(prompts.audio_root.resolve() / language, name, max_age=300)
