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
from ivr.security import is_signed
from ivr.tickets import service as tickets
from ivr.tickets.changes import FINAL_STATUSES
from ivr.twiml import render

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
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
    if request.endpoint == "voice.audio":
        return None
    settings = services().settings
    if not settings.twilio_auth_token:
        log.warning("IVR_DEV_MODE: accepted %s without checking its signature", request.path)
        return None
    if not is_signed(request, settings.twilio_auth_token, settings.public_base_url):
        log.warning("refused %s: missing or invalid X-Twilio-Signature", request.path)
        return Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain")
    return None


@bp.errorhandler(Exception)
def apologise(error: Exception) -> Response:
    """Bad requests get their 4xx; a failure of ours still gives the caller a way to a person."""
    if isinstance(error, HTTPException):
        return Response(f"{error.description}\n", error.code or 400, mimetype="text/plain")
    log.exception("webhook %s failed; sending the caller to the operator queue", request.path)
    state = CallState.from_params(request.args)
    flow = Flow(services().rules.get(), services().clock.now())
    return _twiml(render(flow.apology(state.language if state else None), flow.prompts))


def _call() -> Call:
    sid = request.form.get("CallSid", "")
    if not _SID.match(sid):
        abort(400, description="missing or malformed CallSid")
    number = request.form.get("From", "").strip()[:32] or None
    called = request.form.get("To", "").strip()[:32] or None
    return Call(sid, number, called, request.headers.get(IDEMPOTENCY_HEADER) or None)


def _twiml(body: str) -> Response:
    return Response(body, 200, mimetype="text/xml")


def _flow() -> Flow:
    return Flow(services().rules.get(), services().clock.now())


def _reference(call: Call) -> str:
    """The call's ticket reference, creating the ticket if this is the first we hear of the call."""
    s = services()
    try:
        with s.db.session() as session:
            ticket = tickets.ensure_ticket(
                session, call.sid, caller=call.number, called=call.called, now=s.clock.now()
            )
            return ticket.reference
    except SQLAlchemyError:
        log.exception("could not write the ticket of %s; the call goes on", call.sid)
        return ""


def _respond(call: Call, decision: Decision, flow: Flow) -> Response:
    """Record what the flow decided, then answer Twilio with its TwiML."""
    s = services()
    if not decision.ticket.is_empty():
        try:
            with s.db.session() as session:
                tickets.apply_change(
                    session,
                    call.sid,
                    decision.ticket,
                    now=s.clock.now(),
                    token=call.token,
                    caller=call.number,
                    called=call.called,
                )
        except SQLAlchemyError:
            log.exception("could not update the ticket of %s; the call goes on", call.sid)
    if decision.join:
        join = decision.join
        try:
            s.queue.join(call.sid, join.queue, join.language, join.priority)
        except RedisError:
            log.exception("could not queue %s now; the hold loop will retry", call.sid)
    return _twiml(render(decision, flow.prompts))


@bp.post("/incoming")
def incoming() -> Response:
    """The number's Voice URL: a new call."""
    call = _call()
    reference = _reference(call)
    flow = _flow()
    return _respond(call, flow.answer(Caller(call.number, reference)), flow)


@bp.post("/input")
def keypress() -> Response:
    """A key (or silence) in a menu."""
    call = _call()
    caller = Caller(call.number, _reference(call))
    flow = _flow()
    state = CallState.from_params(request.args)
    return _respond(call, flow.on_input(state, request.form.get("Digits"), caller), flow)


@bp.post("/hold")
def hold() -> Response:
    """One round of holding in a queue: (re)join if needed, then hear the position."""
    call = _call()
    flow = _flow()
    state = CallState.from_params(request.args)
    if state is None or state.step != "hold" or state.queue not in flow.rules.queues:
        return _respond(call, flow.on_input(state, None, Caller(call.number, "")), flow)
    assert state.language is not None and state.queue is not None
    queue = services().queue
    position: int | None = None
    try:
        place = queue.place(call.sid)
        if place is None:
            priority = state.priority if state.priority is not None else 0
            place = queue.join(call.sid, state.queue, state.language, priority)
        queue.heartbeat(call.sid)
        position = place.position
    except RedisError:
        log.exception("queue unavailable while %s holds", call.sid)
    return _respond(call, flow.hold(state, position), flow)


@bp.post("/recording")
def recording() -> Response:
    """A voicemail finished recording."""
    call = _call()
    caller = Caller(call.number, _reference(call))
    flow = _flow()
    state = CallState.from_params(request.args)
    if state is None or state.step != "voicemail" or state.language is None:
        return _respond(call, flow.on_input(state, None, caller), flow)
    url = request.form.get("RecordingUrl", "").strip()[:500] or None
    try:
        seconds = int(request.form.get("RecordingDuration", "0"))
    except ValueError:
        seconds = 0
    return _respond(call, flow.recorded(state, url, seconds, caller), flow)


@bp.post("/status")
def status() -> Response:
    """The number's status callback: when the call ends, close its ticket and free its place."""
    call = _call()
    call_status = request.form.get("CallStatus", "").strip().lower()
    s = services()
    if call_status in FINAL_STATUSES:
        try:
            s.queue.leave(call.sid)
        except RedisError:
            log.exception("could not remove %s from its queue; its heartbeat will expire", call.sid)
        try:
            duration = int(request.form.get("CallDuration", ""))
        except ValueError:
            duration = None
        try:
            with s.db.session() as session:
                tickets.close_ticket(
                    session,
                    call.sid,
                    call_status=call_status,
                    now=s.clock.now(),
                    duration=duration,
                    caller=call.number,
                    called=call.called,
                )
        except SQLAlchemyError:
            log.exception("could not close the ticket of %s", call.sid)
            return Response("ticket store unavailable, retry later\n", 503, mimetype="text/plain")
    else:
        _reference(call)  # ringing / in-progress: make sure the call has its ticket
    return Response(status=204)


@bp.get("/audio/<language>/<name>")
def audio(language: str, name: str) -> Response:
    """Recorded prompts, fetched by Twilio for `<Play>`."""
    prompts = services().rules.get().prompts
    if language not in prompts.catalogs or not _AUDIO_FILE.match(name):
        abort(404)
    return send_from_directory(prompts.audio_root.resolve() / language, name, max_age=300)
