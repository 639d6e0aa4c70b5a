"""Twilio's voice webhooks: authenticate, parse, ask the flow, apply, render. Nothing else.

No webhook waits on a store for its ticket: what the ticket should record goes to the journal (a local
spool, shipped to Redis), which a writer takes to the database (`ivr.writer`), so a database
outage costs callers nothing. If Redis is down, a caller on hold keeps their place in the URL state;
anything unexpected gets an apology and the operator queue instead of an HTTP 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from flask import Blueprint, Response, abort, request, send_from_directory
from werkzeug.exceptions import HTTPException

from ivr.flow import Caller, CallState, Decision, Flow
from ivr.security import refuse_unsigned
from ivr.services import services
from ivr.switchboard import Call
from ivr.tickets.changes import FINAL_STATUSES
from ivr.twiml import render

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
REFERENCE = re.compile(r"^[1-9][0-9]{6,11}$")
_AUDIO_FILE = re.compile(r"^[a-z][a-z0-9_]*\.(mp3|wav)$")
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@bp.before_request
def authenticate() -> Response | None:
    """Refuse requests not signed by Twilio (403); in development mode, warn instead."""
    return None if request.endpoint == "voice.audio" else refuse_unsigned()


@bp.errorhandler(Exception)
def apologise(error: Exception) -> Response:
    """Bad requests get their 4xx; a failure of ours still gives the caller a way to a person."""
    if isinstance(error, HTTPException):
        return Response(f"{error.description}\n", error.code or 400, mimetype="text/plain")
    log.exception("webhook %s failed; sending the caller to the operator queue", request.path)
    state = CallState.from_params(request.args)
    flow = current_flow()
    reference = _reference_in_url()
    carry = {"ref": reference} if reference else {}
    return twiml(render(flow.apology(state.language if state else None), flow.prompts, carry))


def _reference_in_url() -> str | None:
    """The ticket reference this webhook's URL carries, if it is one of ours."""
    reference = request.args.get("ref", "")
    return reference if REFERENCE.match(reference) else None


def parse_call(origin: str | None = None, *, numbered: bool = True) -> Call:
    """The call's fields and ticket, or a 400 when Twilio's `CallSid` is missing or malformed.

    `origin`: the original call's sid, on a callback we placed (its ticket and place are that
    call's). The ticket reference comes from the URL. With `numbered` (webhooks that answer the
    caller), a call without one (its first webhook, or one this service has not seen) is given one
    here, from the numbers this process holds: it is in every URL of the answer from then on."""
    sid = request.form.get("CallSid", "")
    if not SID.match(sid):
        abort(400, description="missing or malformed CallSid")
    number = request.form.get("From", "").strip()[:32] or None
    called = request.form.get("To", "").strip()[:32] or None
    token = request.headers.get(IDEMPOTENCY_HEADER) or None
    reference = _reference_in_url()
    given = reference is not None
    if not given and numbered:
        reference = services().references.take()
    owner = origin if origin and SID.match(origin) else sid
    return Call(
        sid,
        number,
        called,
        token,
        ticket_sid=owner,
        reference=reference,
        new_reference=reference is not None and not given,
    )


def _origin(state: CallState | None) -> str | None:
    return state.origin if state else None


def twiml(body: str) -> Response:
    return Response(body, 200, mimetype="text/xml")


def current_flow() -> Flow:
    return Flow(services().rules.get(), services().clock.now())


def _respond(call: Call, decision: Decision, flow: Flow, *, always: bool = False) -> Response:
    """Apply what the flow decided, answer with TwiML."""
    services().switchboard.apply(call, decision, always=always)
    return twiml(render(decision, flow.prompts, call.carry()))


def _caller(call: Call) -> Caller:
    return Caller(call.number, call.reference or "")


@bp.post("/incoming")
def incoming() -> Response:
    """The number's Voice URL: a new call."""
    call = parse_call()
    flow = current_flow()
    return _respond(call, flow.answer(_caller(call)), flow, always=True)


@bp.post("/input")
def keypress() -> Response:
    """A key (or silence) in a menu, the after-hours offer or the satisfaction survey."""
    state = CallState.from_params(request.args)
    call = parse_call(_origin(state))
    flow = current_flow()
    return _respond(call, flow.on_input(state, request.form.get("Digits"), _caller(call)), flow)


@bp.post("/hold")
def hold() -> Response:
    """One round of holding (or a key pressed during it); connects the caller when it is their turn."""
    flow = current_flow()
    state = CallState.from_params(request.args)
    call = parse_call(_origin(state))
    if state is None or state.step != "hold" or state.queue not in flow.rules.queues:
        return _respond(call, flow.on_input(state, None, _caller(call)), flow)
    if state.language not in flow.rules.language_codes:
        return _respond(call, flow.on_input(state, None, _caller(call)), flow)
    board = services().switchboard
    turn = board.hold_round(call, state, flow.rules)
    if turn.agent is not None and turn.agent in flow.rules.agents:
        return _respond(call, flow.connect(state, turn.agent), flow)
    if turn.agent is not None:  # the agent was removed from the rules meanwhile
        board.not_answered(call, turn.agent, state)
        turn = board.hold_round(call, state, flow.rules)
    digits = request.form.get("Digits")
    if digits is None:
        return _respond(call, flow.hold(state, turn.info), flow)
    return _respond(call, flow.on_hold_key(state, digits, turn.info, _caller(call)), flow)


@bp.post("/whisper")
def whisper() -> Response:
    """The agent answered: the caller leaves the queue, the agent hears who is calling."""
    flow = current_flow()
    state = CallState.from_params(request.args)
    call = parse_call(_origin(state), numbered=False)  # the agent's leg
    parent = request.form.get("ParentCallSid", "")
    if not (state and state.origin) and SID.match(parent):
        call = replace(call, ticket_sid=parent)
    if state is None or services().switchboard.answered(call) is None:
        return twiml("<Response><Hangup/></Response>")  # the caller is gone: nobody to put through
    return twiml(render(flow.whisper(state, call.reference or ""), flow.prompts))


@bp.post("/agent")
def agent_done() -> Response:
    """The `<Dial>` to the agent ended: free the agent, then the survey or back in line."""
    flow = current_flow()
    state = CallState.from_params(request.args)
    call = parse_call(_origin(state))
    if state is None or state.step != "agent" or state.agent is None or state.queue is None:
        return _respond(call, flow.on_input(state, None, _caller(call)), flow)
    if state.language not in flow.rules.language_codes:
        return _respond(call, flow.on_input(state, None, _caller(call)), flow)
    board = services().switchboard
    answered = request.form.get("DialCallStatus") == "completed"
    if answered:
        try:
            talk = int(request.form.get("DialCallDuration", "0"))
        except ValueError:
            talk = 0
        by_caller = request.form.get("CallStatus") == "completed"
        board.conversation_ended(call, state.agent, state, talk, by_caller)
    else:
        board.not_answered(call, state.agent, state)
    return _respond(call, flow.after_agent(state, answered), flow)


@bp.post("/recording")
def recording() -> Response:
    """A voicemail finished recording."""
    state = CallState.from_params(request.args)
    call = parse_call(_origin(state))
    flow = current_flow()
    if state is None or state.step != "voicemail" or state.language is None:
        return _respond(call, flow.on_input(state, None, _caller(call)), flow)
    url = request.form.get("RecordingUrl", "").strip()[:500] or None
    try:
        seconds = int(request.form.get("RecordingDuration", "0"))
    except ValueError:
        seconds = 0
    return _respond(call, flow.recorded(state, url, seconds, _caller(call)), flow)


@bp.post("/status")
def status() -> Response:
    """Status callback: the call ended; free its place (or keep it for a callback) and its agent.

    Always accepted (204): Twilio does not retry a status callback, so what it carries goes to the
    journal whatever the stores are doing."""
    call = parse_call(request.args.get("origin"), numbered=False)
    call_status = request.form.get("CallStatus", "").strip().lower()
    board = services().switchboard
    if call_status not in FINAL_STATUSES:
        # ringing / in-progress: make sure the call has its ticket
        board.apply(call, Decision(()), always=True)
        return Response(status=204)
    try:
        duration: int | None = int(request.form.get("CallDuration", ""))
    except ValueError:
        duration = None
    if duration is not None and not 0 <= duration <= 10**7:
        duration = None  # nobody talks for four months: not a duration we can use
    board.end(call, call_status, duration)
    return Response(status=204)


@bp.get("/audio/<language>/<name>")
def audio(language: str, name: str) -> Response:
    """Recorded prompts, fetched by Twilio for `<Play>`."""
    prompts = services().rules.get().prompts
    if language not in prompts.catalogs or not _AUDIO_FILE.match(name):
        abort(404)
    return send_from_directory(prompts.audio_root.resolve() / language, name, max_age=300)
