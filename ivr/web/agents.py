"""Agents logging in and out: on the agent phone line (Twilio webhook) or through an HTTP API.

The API authenticates each request with HTTP Basic auth: the agent id as user name, the PIN as
password (`curl -u emma -XPOST https://HOST/api/agents/emma/login` asks for it). Serve it over HTTPS
only. Both check the PIN against the PIN store (`ivr agents set-pin`), throttled per source: the
calling number on the line, the client address on the API (`ivr.throttle`). Development mode skips
Twilio's signature check only, never the PIN.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from ivr.agent_line import AgentAction, AgentLine, AgentStatus, PinCheck
from ivr.flow import CallState
from ivr.rules.schema import Agent, Rules
from ivr.security import refuse_unsigned
from ivr.services import services
from ivr.switchboard import Call
from ivr.throttle import callback_source, check_secret, client_source, phone_source
from ivr.twiml import render, state_url
from ivr.web.inbound import admitted, answer, arrive, current_flow, twiml

ASK_FOR_PIN = "give the agent id and PIN with HTTP Basic auth"

line_bp = Blueprint("agent_line", __name__, url_prefix="/agent")
api_bp = Blueprint("agent_api", __name__, url_prefix="/api")
line_bp.before_request(refuse_unsigned)
log = logging.getLogger("ivr.agents")  # the name its log lines have always carried


def check_pin(source: str, agent_id: str | None, pin: str, rules: Rules) -> tuple[PinCheck, float]:
    """Whether `pin` is the PIN of `agent_id` (None or unknown: wrong, and a try all the same), if
    `source` may have a PIN checked now (`ivr.throttle`); with the seconds it must wait when it may
    not."""
    s = services()
    found = check_secret(
        s.queue, source, lambda: s.pins.verify(agent_id or "", pin) and agent_id in rules.agents
    )
    if found.outcome == "wrong":
        log.warning("wrong PIN for agent %r from %s", agent_id, source)
    return found.outcome, found.wait


def change_status(agent_id: str, agent: Agent, rules: Rules, action: AgentAction) -> AgentStatus:
    """Log an agent in or out (the switchboard logs the event and serves waiting callers)."""
    lines = list(rules.lines_of(agent))
    return services().switchboard.agent_status(agent_id, lines, login=action == "login")


@line_bp.post("/voice")
def agent_line() -> Response:
    """The agent line's Voice URL (a second Twilio number): extension, PIN, log in or out.

    Its URL state is sealed like every webhook's (a made-up `stage=options` starts the call over),
    and a login or logout takes effect once: a replay of it hears the outcome and changes nothing."""
    call, given = arrive(numbered=False)  # the agent line keeps no ticket
    flow = current_flow()
    line = AgentLine(flow)
    state = admitted(flow, given, "agent_line")
    if state is None:
        return answer(call, line.answer(), flow)
    digits = request.form.get("Digits")
    pin: PinCheck | None = None
    if state.stage in ("pin", "callback_pin") and digits:
        # On the call we placed to the agent's phone, guesses count apart from the caller IDs'.
        source = (
            callback_source(state.agent or "")
            if state.stage == "callback_pin"
            else phone_source(call.number)
        )
        pin, _ = check_pin(source, state.agent, digits, flow.rules)
    status: AgentStatus | None = None
    if state.agent in flow.rules.agents and pin in (None, "right"):
        status = services().queue.agent_status(state.agent)
    own_phone = _own_phone(flow.rules, state.agent, call.number)
    result = line.on_input(
        state,
        digits,
        status,
        pin,
        call_back_possible=own_phone is not None and services().telephony.enabled,
    )
    if result.call_back and state.agent and own_phone:
        _call_agent_back(call, state, own_phone)
    decision = result.decision
    if result.action and state.agent:
        agent = flow.rules.agents[state.agent]
        if services().switchboard.first_time(call):
            new_status = change_status(state.agent, agent, flow.rules, result.action)
        else:  # Twilio's retry, or a replay: say how things stand, change nothing
            new_status = services().queue.agent_status(state.agent)
        decision = line.confirm(result.action, new_status)
    return answer(call, decision, flow)


AGENT_CALLBACK_EVERY_SECONDS = 300
"""At most one call back to an agent's phone in this long, however often a throttled call comes."""


def _own_phone(rules: Rules, agent_id: str | None, number: str | None) -> str | None:
    """The agent's registered phone, when the call comes from it (as its caller ID says)."""
    agent = rules.agents.get(agent_id or "")
    return agent.phone if agent is not None and number and agent.phone == number else None


def _call_agent_back(call: Call, state: CallState, phone: str) -> None:
    """Place a call to the agent's registered phone that asks for the PIN there."""
    s = services()
    assert state.agent is not None
    if not call.called or not s.queue.claim_agent_callback(
        state.agent, AGENT_CALLBACK_EVERY_SECONDS
    ):
        log.warning("agent line: %s was called back lately; not again yet", state.agent)
        return
    now = s.clock.now().timestamp()
    # The new call's sid is not known yet: its URLs are sealed for this call (`origin`).
    answered = replace(state, stage="callback", tries=0, origin=call.sid)
    url = s.signer.seal(state_url(answered), call.sid, now)
    if s.telephony.call(phone, call.called, url, f"{line_bp.url_prefix}/status") is None:
        log.error("agent line: could not call %s back on their phone", state.agent)


@line_bp.post("/status")
def agent_line_status() -> Response:
    """Status callbacks of the calls the agent line places: nothing to keep (no ticket)."""
    return Response(status=204)


@line_bp.errorhandler(RedisError)
def line_unavailable(error: RedisError) -> Response:
    """The queue store is away: the agent hears that logging in cannot be done now."""
    log.warning("agent line: the queue store is unavailable (%s)", error)
    return twiml(render(AgentLine(current_flow()).unavailable(), current_flow().prompts))


def _authenticated(agent_id: str) -> tuple[Agent, Rules]:
    """The agent and the rules, when the request carries the agent's id and PIN; else the error."""
    rules = services().rules.get().rules
    auth = request.authorization
    if auth is None or auth.username != agent_id or not auth.password:
        abort(401, description=ASK_FOR_PIN)
    # An agent id nobody has is a wrong PIN like any other: the API does not tell who exists.
    found, wait = check_pin(client_source(request.remote_addr), agent_id, auth.password, rules)
    if found == "throttled":
        seconds = math.ceil(wait)
        raise TooManyRequests(
            f"too many wrong PINs from this address: try again in {seconds} seconds",
            retry_after=seconds,
        )
    if found == "unavailable":
        abort(503, description="PINs cannot be checked now (the queue store is away): try again")
    if found == "busy":
        raise ServiceUnavailable(
            "too many PIN checks at once: try again in a moment", retry_after=1
        )
    if found != "right":
        abort(401, description=ASK_FOR_PIN)
    return rules.agents[agent_id], rules


def _describe(agent_id: str, agent: Agent, status: AgentStatus) -> dict[str, Any]:
    return {
        "agent": agent_id,
        "name": agent.name,
        "status": status,
        "call": services().queue.agent_call(agent_id),
        "languages": list(agent.languages),
        "queues": list(agent.queues),
    }


@api_bp.get("/agents/<agent_id>")
def agent_state(agent_id: str) -> Response:
    """The agent's status and current call."""
    agent, _ = _authenticated(agent_id)
    return jsonify(_describe(agent_id, agent, services().queue.agent_status(agent_id)))


@api_bp.post("/agents/<agent_id>/<any(login, logout):action>")
def agent_login(agent_id: str, action: AgentAction) -> Response:
    """Log in (ready for calls) or out; an agent on a call changes when the call ends."""
    agent, rules = _authenticated(agent_id)
    change_status(agent_id, agent, rules, action)
    return jsonify(_describe(agent_id, agent, services().queue.agent_status(agent_id)))


@api_bp.errorhandler(RedisError)
def queue_down(error: RedisError) -> tuple[Response, int]:
    return jsonify({"error": "the queue store is unavailable, try again"}), 503


@api_bp.errorhandler(401)
@api_bp.errorhandler(404)
@api_bp.errorhandler(429)
@api_bp.errorhandler(503)
def api_error(error: Any) -> tuple[Response, int]:
    response = jsonify({"error": error.description})
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="ivr agents"'
    if getattr(error, "retry_after", None) is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response, error.code
