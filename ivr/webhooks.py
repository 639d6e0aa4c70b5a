"""Twilio's voice webhooks: authenticate, parse, ask the flow, record, render. Nothing else.

A caller is never dropped because something on our side failed: if the database is down the call goes
on and the ticket is written by the next webhook that can (or by the status callback); if Redis is down
the hold loop keeps retrying to queue the caller; anything unexpected gets an apology and the operator
queue instead of an HTTP 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from flask import Blueprint, Response, abort, request, send_from_directory
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ivr import services
from ivr.flow import Caller, CallState, Decision, Flow
from ivr.security import refuse_unsigned
from ivr.tickets import service as tickets
from ivr.tickets.changes import FINAL_STATUSES, EventRecord, QueueEvent
from ivr.twiml import render

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
_AUDIO_FILE = re.compile(r"^[a-z][a-z0-9_]*\.(mp3|wav)$")
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@dataclass(frozen=True)
class Call:
    """The fields every Twilio voice webhook carries."""

    sid: str
    number: str | None
    called: str | None
    token: str | None


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
    return twiml(render(flow.apology(state.language if state else None), flow.prompts))


def parse_call() -> Call:
    """The call's fields, or a 400 when Twilio's `CallSid` is missing or malformed."""
    sid = request.form.get("CallSid", "")
    if not SID.match(sid):
        abort(400, description="missing or malformed CallSid")
    number = request.form.get("From", "").strip()[:32] or None
    called = request.form.get("To", "").strip()[:32] or None
    return Call(sid, number, called, request.headers.get(IDEMPOTENCY_HEADER) or None)


def twiml(body: str) -> Response:
    return Response(body, 200, mimetype="text/xml")


def current_flow() -> Flow:
    return Flow(services().rules.get(), services().clock.now())


def _ticket_sid(call: Call, state: CallState | None) -> str:
    """Whose ticket and place this is: a callback we placed carries the original call's sid."""
    return state.origin if state and state.origin else call.sid


def _reference(call: Call, sid: str | None = None) -> str:
    """The call's ticket reference, creating the ticket if this is the first we hear of the call."""
    s = services()
    try:
        with s.db.session() as session:
            ticket = tickets.ensure_ticket(
                session, sid or call.sid, caller=call.number, called=call.called, now=s.clock.now()
            )
            return ticket.reference
    except SQLAlchemyError:
        log.exception("could not write the ticket of %s; the call goes on", call.sid)
        return ""


def _respond(call: Call, decision: Decision, flow: Flow, sid: str | None = None) -> Response:
    """Record what the flow decided, move the caller in the queue, answer with TwiML."""
    s = services()
    sid = sid or call.sid
    if not decision.ticket.is_empty():
        s.switchboard.record(sid, decision.ticket, call.token)
    try:
        if decision.leave:
            s.queue.leave(sid)
        if decision.join:
            join = decision.join
            s.queue.join(sid, join.queue, join.language, join.priority)
        if decision.callback_number:
            s.queue.request_callback(sid, decision.callback_number)
    except RedisError:
        log.exception("queue change for %s failed; the hold loop will retry", sid)
    if decision.join or decision.callback_number:
        s.switchboard.dispatch()  # an agent may be free for this caller right now
    return twiml(render(decision, flow.prompts))


@bp.post("/incoming")
def incoming() -> Response:
    """The number's Voice URL: a new call."""
    call = parse_call()
    reference = _reference(call)
    flow = current_flow()
    return _respond(call, flow.answer(Caller(call.number, reference)), flow)


@bp.post("/input")
def keypress() -> Response:
    """A key (or silence) in a menu, the after-hours offer or the satisfaction survey."""
    call = parse_call()
    state = CallState.from_params(request.args)
    sid = _ticket_sid(call, state)
    caller = Caller(call.number, _reference(call, sid))
    flow = current_flow()
    return _respond(call, flow.on_input(state, request.form.get("Digits"), caller), flow, sid)


@bp.post("/hold")
def hold() -> Response:
    """One round of holding (or a key pressed during it); connects the caller when it is their turn."""
    call = parse_call()
    flow = current_flow()
    state = CallState.from_params(request.args)
    if state is None or state.step != "hold" or state.queue not in flow.rules.queues:
        return _respond(call, flow.on_input(state, None, Caller(call.number, "")), flow)
    sid = _ticket_sid(call, state)
    board = services().switchboard
    board.dispatch()
    assignment = board.assignment(sid)
    if assignment is not None and assignment.agent in flow.rules.agents:
        return _respond(call, flow.connect(state, assignment.agent), flow, sid)
    if assignment is not None:  # the agent was removed from the rules meanwhile
        board.not_answered(sid, assignment.agent, state)
    info = board.hold_info(sid, state, flow.rules)
    digits = request.form.get("Digits")
    if digits is None:
        return _respond(call, flow.hold(state, info), flow, sid)
    caller = Caller(call.number, _reference(call, sid))
    return _respond(call, flow.on_hold_key(state, digits, info, caller), flow, sid)


@bp.post("/whisper")
def whisper() -> Response:
    """The agent answered: the caller leaves the queue, the agent hears who is calling."""
    call = parse_call()  # the agent's leg
    flow = current_flow()
    state = CallState.from_params(request.args)
    parent = request.form.get("ParentCallSid", "")
    sid = (state.origin if state else None) or (parent if SID.match(parent) else call.sid)
    if state is None or services().switchboard.answered(sid) is None:
        return twiml("<Response><Hangup/></Response>")  # the caller is gone: nobody to put through
    return twiml(render(flow.whisper(state, _reference(call, sid)), flow.prompts))


@bp.post("/agent")
def agent_done() -> Response:
    """The `<Dial>` to the agent ended: free the agent, then the survey or back in line."""
    call = parse_call()
    flow = current_flow()
    state = CallState.from_params(request.args)
    if state is None or state.step != "agent" or state.agent is None or state.queue is None:
        return _respond(call, flow.on_input(state, None, Caller(call.number, "")), flow)
    sid = _ticket_sid(call, state)
    board = services().switchboard
    answered = request.form.get("DialCallStatus") == "completed"
    if answered:
        try:
            talk = int(request.form.get("DialCallDuration", "0"))
        except ValueError:
            talk = 0
        by_caller = request.form.get("CallStatus") == "completed"
        board.conversation_ended(sid, state.agent, state, talk, by_caller)
    else:
        board.not_answered(sid, state.agent, state)
    return _respond(call, flow.after_agent(state, answered), flow, sid)


@bp.post("/recording")
def recording() -> Response:
    """A voicemail finished recording."""
    call = parse_call()
    state = CallState.from_params(request.args)
    sid = _ticket_sid(call, state)
    caller = Caller(call.number, _reference(call, sid))
    flow = current_flow()
    if state is None or state.step != "voicemail" or state.language is None:
        return _respond(call, flow.on_input(state, None, caller), flow, sid)
    url = request.form.get("RecordingUrl", "").strip()[:500] or None
    try:
        seconds = int(request.form.get("RecordingDuration", "0"))
    except ValueError:
        seconds = 0
    return _respond(call, flow.recorded(state, url, seconds, caller), flow, sid)


@bp.post("/status")
def status() -> Response:
    """Status callback: when a call ends, free its place (or keep it for a callback) and its agent."""
    call = parse_call()
    call_status = request.form.get("CallStatus", "").strip().lower()
    origin = request.args.get("origin", "")
    sid = origin if SID.match(origin) else call.sid
    s = services()
    if call_status not in FINAL_STATUSES:
        _reference(call)  # ringing / in-progress: make sure the call has its ticket
        return Response(status=204)
    if sid != call.sid and call_status != "completed":
        # The callback we placed was not answered: the agent waiting for it is freed.
        s.switchboard.log(sid, EventRecord(QueueEvent.CALLBACKDIAL, data={"result": call_status}))
    s.switchboard.hang_up(sid)
    try:
        duration = int(request.form.get("CallDuration", ""))
    except ValueError:
        duration = None
    try:
        with s.db.session() as session:
            ticket = tickets.close_ticket(
                session,
                sid,
                call_status=call_status,
                now=s.clock.now(),
                duration=duration,
                caller=call.number if sid == call.sid else None,
                called=call.called,
            )
            agent = ticket.agent
    except SQLAlchemyError:
        log.exception("could not close the ticket of %s", sid)
        return Response("ticket store unavailable, retry later\n", 503, mimetype="text/plain")
    if agent:
        s.switchboard.agent_done_with(agent, sid)
    return Response(status=204)


@bp.get("/audio/<language>/<name>")
def audio(language: str, name: str) -> Response:
    """Recorded prompts, fetched by Twilio for `<Play>`."""
    prompts = services().rules.get().prompts
    if language not in prompts.catalogs or not _AUDIO_FILE.match(name):
        abort(404)
    return send_from_directory(prompts.audio_root.resolve() / language, name, max_age=300)
