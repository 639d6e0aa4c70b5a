"""Agents logging in and out: on the agent phone line (Twilio webhook) or through an HTTP API.

The API authenticates each request with HTTP Basic auth: the agent id as user name, the PIN as
password (`curl -u emma:7310 -XPOST https://HOST/api/agents/emma/login`). Serve it over HTTPS only.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from redis.exceptions import RedisError

from ivr.agent_line import AgentAction, AgentLine, AgentStatus
from ivr.flow import CallState
from ivr.rules.schema import Agent, Rules
from ivr.security import refuse_unsigned
from ivr.services import services
from ivr.twiml import render
from ivr.webhooks import current_flow, parse_call, twiml

LOCKOUT_AFTER = 5
LOCKOUT_SECONDS = 15 * 60
"""After this many wrong PINs for one agent (API and agent line together), no PIN is accepted for
that agent until the window has passed: guessing a 4-digit PIN takes years instead of minutes."""

line_bp = Blueprint("agent_line", __name__, url_prefix="/agent")
api_bp = Blueprint("agent_api", __name__, url_prefix="/api")
line_bp.before_request(refuse_unsigned)


def change_status(agent_id: str, agent: Agent, rules: Rules, action: AgentAction) -> AgentStatus:
    """Log an agent in or out (the switchboard logs the event and serves waiting callers)."""
    lines = list(rules.lines_of(agent))
    return services().switchboard.agent_status(agent_id, lines, login=action == "login")


@line_bp.post("/voice")
def agent_line() -> Response:
    """The agent line's Voice URL (a second Twilio number): extension, PIN, log in or out."""
    parse_call(numbered=False)  # a valid CallSid, or 400; the agent line keeps no ticket
    flow = current_flow()
    line = AgentLine(flow)
    state = CallState.from_params(request.args)
    if state is None or state.step != "agent_line":
        return twiml(render(line.answer(), flow.prompts))
    queue = services().queue
    status: AgentStatus | None = None
    locked = False
    if state.agent in flow.rules.agents:
        status = queue.agent_status(state.agent)
        locked = queue.login_failures(state.agent) >= LOCKOUT_AFTER
    result = line.on_input(state, request.form.get("Digits"), status, locked)
    if state.agent and result.pin_ok is not None:
        _note_pin(state.agent, result.pin_ok)
    decision = result.decision
    if result.action and state.agent:
        agent = flow.rules.agents[state.agent]
        new_status = change_status(state.agent, agent, flow.rules, result.action)
        decision = line.confirm(result.action, new_status)
    return twiml(render(decision, flow.prompts))


def _authenticated(agent_id: str) -> tuple[Agent, Rules]:
    rules = services().rules.get().rules
    agent = rules.agents.get(agent_id)
    auth = request.authorization
    if agent is None:
        abort(404, description=f"no agent {agent_id!r}")
    if services().queue.login_failures(agent_id) >= LOCKOUT_AFTER:
        abort(429, description="too many wrong PINs: try again in 15 minutes")
    if auth is None or auth.username != agent_id:
        abort(401, description="give the agent id and PIN with HTTP Basic auth")
    right = secrets.compare_digest(auth.password or "", agent.pin)
    _note_pin(agent_id, right)
    if not right:
        abort(401, description="give the agent id and PIN with HTTP Basic auth")
    return agent, rules


def _note_pin(agent_id: str, right: bool) -> None:
    queue = services().queue
    if right:
        queue.login_succeeded(agent_id)
    else:
        queue.login_failed(agent_id, LOCKOUT_SECONDS)


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
def api_error(error: Any) -> tuple[Response, int]:
    response = jsonify({"error": error.description})
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="ivr agents"'
    return response, error.code
