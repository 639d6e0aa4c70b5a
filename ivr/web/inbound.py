"""Twilio's request, read and checked once for every blueprint that answers Twilio.

A webhook view starts here: `arrive` gives the call (its `CallSid`, caller IDs, ticket and rules
version) and the state its URL carries, obeyed only when this service sealed the URL for this call
(`ivr.signing`); `at_step` adds the flow and refuses a state that is not the webhook's own;
`respond` and `answer` render the decision as TwiML whose URLs are sealed for the call. A URL state
a newer release wrote is handed back to the proxy (`hand_back`) during a rolling upgrade.
`fingerprint` keys a request's effect, the same for Twilio's retries and replays of it.

Nothing here is a view: the views (`ivr.web.voice`, `ivr.web.agents`, `ivr.web.fallback`) import
it, never each other.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from flask import Response, abort, request
from redis.exceptions import RedisError

from ivr.flow import CallState, Decision, Flow, newer_state
from ivr.security import signed_content
from ivr.services import services
from ivr.signing import CALLBACK_CODE_DIGITS, SEAL_MAX_AGE, SEAL_PARAM
from ivr.switchboard import Call
from ivr.tickets.references import LONGEST
from ivr.twiml import NOTICE, Seal, render

log = logging.getLogger("ivr.webhooks")  # the name these log lines carried in ivr/webhooks.py

SID = re.compile(r"^[A-Za-z0-9]{2,64}$")

REFERENCE = re.compile(rf"^[1-9][0-9]{{6,{LONGEST - 1}}}$")
CALLBACK_CODE = re.compile(rf"^[0-9]{{{CALLBACK_CODE_DIGITS}}}$")
NOTICE_ID = re.compile(r"^[1-9][0-9]{0,17}$")
"""An incident id a URL carries (`Caller.notice`)."""
RULES_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")

HAND_BACKS = 4
"""How many times a webhook whose URL state a newer release wrote is handed back to the proxy
(`hand_back`) before this code answers it as a state it cannot read: the call starts over."""
HAND_BACK = "hb"
"""The URL parameter counting a call's hand-backs, last before the seal."""
_HAND_BACK_TAIL = re.compile(rf"&{HAND_BACK}=[0-9]+$")
_NO_HAND_BACK = frozenset({"voice.status", "voice.whisper"})
"""Webhooks whose answer Twilio does not follow as the caller's call (a status callback) or that
play on the agent's leg: they read what they can of the URL, as before."""


@dataclass(frozen=True)
class Sealed:
    """What a webhook's URL carries, once its seal is checked: all None when it is not ours."""

    state: CallState | None = None
    reference: str | None = None
    origin: str | None = None
    callback_code: str | None = None
    """On the first webhook of a callback we placed: the code it opens with."""
    notice: int | None = None
    """The incident notice the call heard (`Caller.notice`)."""
    rules_version: int | None = None
    """The rules version the call started with (`LiveRules.for_call`)."""
    newer: bool = False
    """The state was written by a newer release: this code does not read it (`state` is None)."""


def unseal(sid: str, parent: str) -> Sealed:
    """The URL's state, ticket reference, origin and callback code, if this service sealed the URL
    for this call.

    The call the URL was sealed for is `origin` when the URL names one (a callback we placed),
    else the caller's call: `ParentCallSid` on the agent's leg (the whisper), else `CallSid`."""
    if not request.query_string:
        return Sealed()
    origin = request.args.get("origin") or None
    if origin is not None and not SID.match(origin):
        origin = None
    owner = origin or (parent if SID.match(parent) else sid)
    url = f"{request.path}?{request.query_string.decode('latin-1')}"
    now = services().clock.now().timestamp()
    if not services().signer.is_sealed(url, owner, now):
        log.warning(
            "%s for call %s: its URL state was not issued by this service for this call (forged, "
            "replayed after %d h or from another call); starting the call over",
            request.path,
            sid,
            SEAL_MAX_AGE // 3600,
        )
        return Sealed()
    reference = request.args.get("ref", "")
    code = request.args.get("code", "")
    notice = request.args.get(NOTICE, "")
    version = request.args.get("rv", "")
    newer = newer_state(request.args)
    return Sealed(
        None if newer else CallState.from_params(request.args),
        reference if REFERENCE.match(reference) else None,
        origin,
        code if origin is not None and CALLBACK_CODE.match(code) else None,
        notice=int(notice) if NOTICE_ID.match(notice) else None,
        rules_version=int(version) if RULES_VERSION.match(version) else None,
        newer=newer,
    )


def _hand_backs_given() -> int:
    """How many times this webhook was handed back already (its URL's `hb=`)."""
    given = request.args.get(HAND_BACK, "")
    return int(given) if given.isdigit() else 0


def hand_back(owner: str, what: str = "URL state") -> Response | None:
    """For a webhook whose URL state (or queue entry: `what`) a newer release wrote: a short pause,
    then the same webhook again (resealed, its hand-backs counted), which the proxy may give to a
    newer instance during a rolling upgrade. None once `HAND_BACKS` were given: the call starts
    over, as for any state this code cannot read, and the caller is never dropped."""
    url = f"{request.path}?{request.query_string.decode('latin-1')}"
    head = url.rpartition(f"&{SEAL_PARAM}=")[0]
    given = _hand_backs_given()
    if given >= HAND_BACKS:
        log.warning(
            "%s: %s of a newer release after %d hand-backs: starting over", url, what, given
        )
        return None
    head = f"{_HAND_BACK_TAIL.sub('', head)}&{HAND_BACK}={given + 1}"
    now = services().clock.now().timestamp()
    again = services().signer.seal(head, owner, now)
    log.info("%s: %s of a newer release; handing the call back to the proxy", request.path, what)
    return twiml(f'<Response><Pause length="1"/><Redirect>{escape(again)}</Redirect></Response>')


def arrive(*, numbered: bool = True, agent_leg: bool = False) -> tuple[Call, CallState | None]:
    """The call's fields and ticket and the state its URL carries, or a 400 when Twilio's
    `CallSid` is missing or malformed.

    The state, the ticket reference and the original call (`origin`, on a callback we placed:
    its ticket and place are that call's) count only when this service sealed the URL for this
    call; otherwise the state is None and the call starts over. With `numbered` (webhooks that
    answer the caller), a call without a reference (its first webhook, or one whose URL is not
    ours) is given one here, from the numbers this process holds. `agent_leg`: the request comes
    on the agent's leg of a `<Dial>` (the whisper), whose caller is `ParentCallSid`."""
    sid = request.form.get("CallSid", "")
    if not SID.match(sid):
        abort(400, description="missing or malformed CallSid")
    parent = request.form.get("ParentCallSid", "") if agent_leg else ""
    sealed = unseal(sid, parent)
    if sealed.newer and request.endpoint not in _NO_HAND_BACK:
        again = hand_back(sealed.origin or (parent if SID.match(parent) else sid))
        if again is not None:
            abort(again)
    number, called = caller_ids()
    reference = sealed.reference
    if reference is None and numbered:
        reference = services().switchboard.reference_for(sid, services().references.take)
    owner = sealed.origin or (parent if SID.match(parent) else sid)
    rules = services().rules
    if sealed.state is not None or sealed.rules_version is not None:
        version = rules.for_call(sealed.rules_version or _pinned(owner, sealed.state))[0]
    else:  # a new call (or one whose URL is not ours): the live version, or a tester's draft
        version = rules.for_new_call(called if sealed.origin is not None else number)[0]
    # A queue entry of a newer release: handed back as a newer URL state is, while hand-backs are
    # left, only on the caller's own call and a URL sealed for it (`hand_back_newer_entry`).
    hands_back = (
        request.endpoint not in _NO_HAND_BACK
        and sealed.state is not None
        and _hand_backs_given() < HAND_BACKS
    )
    call = Call(
        sid,
        number,
        called,
        fingerprint(),
        ticket_sid=owner,
        reference=reference,
        new_reference=reference is not None and sealed.reference is None,
        called_back=sealed.origin is not None,
        callback_code=sealed.callback_code,
        notice=sealed.notice,
        rules_version=version,
        hands_back=hands_back,
    )
    return call, sealed.state


def _pinned(owner: str, state: CallState | None) -> int | None:
    """The version a queued call started with, when its URL does not say (the URL an agent's
    turn moved it to); None when unknown, and the live version serves it."""
    if state is None or state.step != "hold":
        return None
    try:
        return services().queue.pinned_rules_version(owner)
    except RedisError:
        return None


def fingerprint() -> str:
    """The same for Twilio's retries of a webhook and for any replay of it (also one whose form was
    changed without changing its signature), different for every other request: the URL (whose
    seal holds the second it was issued) and what the signature covers of the form."""
    digest = hashlib.sha256(request.path.encode())
    digest.update(b"?" + request.query_string + b"\n")
    digest.update(signed_content(request.form).encode())
    return digest.hexdigest()[:32]


def seal_for(call: Call) -> Seal:
    """Seals the URLs of an answer to `call`: each for the call that will request it."""
    signer, now = services().signer, services().clock.now().timestamp()
    return lambda url, state: signer.seal_of(url, state.origin or call.sid, now)


def twiml(body: str) -> Response:
    """A TwiML answer (200, text/xml)."""
    return Response(body, 200, mimetype="text/xml")


def current_flow(call: Call | None = None) -> Flow:
    """The flow of `call`'s rules version (the one it started with); without a call, the live one."""
    rules = services().rules
    bundle = rules.for_call(call.rules_version)[1] if call is not None else rules.get()
    return Flow(bundle, services().clock.now(), rules.incident())


def respond(call: Call, decision: Decision, flow: Flow, *, always: bool = False) -> Response:
    """Apply what the flow decided, answer with TwiML."""
    services().switchboard.apply(call, decision, always=always)
    return answer(call, decision, flow)


def answer(call: Call, decision: Decision, flow: Flow) -> Response:
    """The TwiML of a decision, its URLs carrying the call's context and sealed for it."""
    return twiml(render(decision, flow.prompts, call.carry(), seal_for(call)))


def admitted(flow: Flow, state: CallState | None, *steps: str) -> CallState | None:
    """The state, when it fits the current rules and is one of `steps` (this webhook's)."""
    admitted = flow.admit(state)
    return admitted if admitted is not None and admitted.step in steps else None


def at_step(*steps: str) -> tuple[Call, Flow, CallState]:
    """This webhook's call, flow and state, when its URL's state is one of `steps`; otherwise the
    request is answered at once with where such a call goes (`Flow.restart`)."""
    call, given = arrive()
    flow = current_flow(call)
    state = admitted(flow, given, *steps)
    if state is None:
        abort(respond(call, flow.restart(given), flow))
    return call, flow, state


def caller_ids() -> tuple[str | None, str | None]:
    """Twilio's `From` and `To`, as a ticket keeps them (None when empty)."""
    number = request.form.get("From", "").strip()[:32] or None
    called = request.form.get("To", "").strip()[:32] or None
    return number, called


def recording_fields() -> tuple[str | None, int]:
    """The `RecordingUrl` and `RecordingDuration` (0 when missing or unusable) of a voicemail."""
    url = request.form.get("RecordingUrl", "").strip()[:500] or None
    return url, seconds(request.form.get("RecordingDuration")) or 0


def seconds(value: str | None) -> int | None:
    """A duration Twilio sent, or None when it is missing or not one we can use: nobody talks
    for four months."""
    try:
        seconds = int(value or "")
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 10**7 else None
