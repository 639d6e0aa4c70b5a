"""Every webhook, fed whatever a form and a URL can hold (hypothesis): never a 5xx, always TwiML that
Twilio accepts, and never the catch-all apology (an exception in our code)."""

from __future__ import annotations

import itertools
import logging
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from ivr.db import Database
from ivr.simulator.twiml import parse_twiml
from tests.support import AUTH_TOKEN, BASE_URL, parse, reference_in, sealed, ticket_of

pytestmark = pytest.mark.usefixtures("agent_pins")
_sids = itertools.count(10**6)

PATHS = (
    "/voice/incoming",
    "/voice/input",
    "/voice/hold",
    "/voice/whisper",
    "/voice/agent",
    "/voice/recording",
    "/voice/status",
    "/voice/fallback",
    "/voice/fallback/dialled",
    "/voice/fallback/recorded",
    "/agent/voice",
)
_VALID_SIDS = st.sampled_from(["CA" + "a" * 32, "CA" + "b" * 32, "CAshort1"])
SIDS = st.one_of(_VALID_SIDS, _VALID_SIDS, _VALID_SIDS, st.just(""), st.text(max_size=70))
BREAKING = ("\u2028", "\u2029", "\u0085", "\x00", "\r\n", "\n", "\x1e", "\x0b")
"""Characters that end a line for one reader or another (`str.splitlines`, a log viewer), and NUL,
which PostgreSQL text refuses: what a caller ID or a form field may carry all the same."""


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Any text, and often text with line-breaking characters and NUL mixed in."""
    broken = st.lists(
        st.text(max_size=6) | st.sampled_from(BREAKING), max_size=max(1, max_size // 4)
    ).map("".join)
    return st.text(max_size=max_size) | broken.map(lambda text: text[:max_size])


_IN_RANGE = st.integers(0, 100).map(str)
NUMBERS = st.one_of(_IN_RANGE, _IN_RANGE, st.integers(-5, 10**20).map(str), st.text(max_size=5))


def _known(*names: str) -> st.SearchStrategy[str]:
    """Mostly names the rules use (and near misses), sometimes anything at all."""
    known = st.sampled_from(names)
    return st.one_of(known, known, known, st.text(max_size=20))


STEP_OF = {
    "/voice/input": "menu",
    "/voice/hold": "hold",
    "/voice/whisper": "whisper",
    "/voice/agent": "agent",
    "/voice/recording": "voicemail",
    "/agent/voice": "agent_line",
}
"""The step a webhook's own URLs name (most examples use it, to get past the first checks)."""
STEPS = _known(
    "language", "menu", "closed", "hold", "voicemail", "agent", "whisper", "survey", "agent_line"
)
STATE = st.fixed_dictionaries(
    {},
    optional={
        "language": _known("en-US", "de-DE", "zh-CN", "fr-FR", "xx-XX"),
        "menu": _known("main", "funds", "account", "nowhere"),
        "queue": _known("funds", "security", "general", "tech", "nowhere"),
        "agent": _known("emma", "anna", "sec_desk", "nobody"),
        "stage": _known("extension", "pin", "options"),
        "priority": NUMBERS,
        "tries": NUMBERS,
        "since": NUMBERS,
        "ref": st.integers(0, 10**13).map(str) | st.text(max_size=8),
        "origin": SIDS,
    },
)
DIGITS = st.sampled_from(["1", "2", "3", "0", "*", "#", "", "581937", "99"]) | st.text(max_size=12)
FORM = st.fixed_dictionaries(
    {"CallSid": SIDS},
    optional={
        "From": st.sampled_from(["+14155550100", "+4930000000104", "anonymous"]) | texts(40),
        "To": texts(20),
        "Digits": DIGITS,
        "CallStatus": _known("completed", "in-progress", "ringing", "busy", "no-answer"),
        "CallDuration": st.integers(-5, 10**20).map(str) | st.text(max_size=5),
        "DialCallStatus": _known("completed", "no-answer", "busy", "failed"),
        "DialCallDuration": st.integers(-5, 10**20).map(str) | st.text(max_size=5),
        "RecordingUrl": texts(600),
        "RecordingDuration": st.integers(-5, 10**20).map(str) | st.text(max_size=5),
        "ParentCallSid": SIDS,
        "ErrorUrl": texts(100),
        "ErrorCode": texts(8),
    },
)


TWISTS = st.lists(
    st.sampled_from([("", ""), ("Digits", "1"), ("From", "+14155550100"), ("", "x")]), max_size=3
)
"""Pairs added to a form as a replay with a twist would: empty ones, names sent twice."""


def post(
    client: FlaskClient, url: str, form: dict[str, str], twist: list[tuple[str, str]]
) -> TestResponse:
    """POST `form` and the `twist` pairs as one body, signed as Twilio signs such a form."""
    pairs = [*form.items(), *twist]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE_URL + url, MultiDict(pairs))
    return client.post(
        url,
        data=urlencode(pairs),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("ivr.webhooks") or record.name.startswith("ivr.agents"):
            self.seen.append(record.getMessage())


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI fails only when the code does
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    step=st.none() | STEPS,
    state=STATE,
    form=FORM,
    seal=st.sampled_from([True, True, False]),
    twist=TWISTS,
)
def test_no_webhook_input_reaches_the_catch_all(
    client: FlaskClient,
    path: str,
    step: str | None,
    state: dict[str, str],
    form: dict[str, str],
    seal: bool,
    twist: list[tuple[str, str]],
) -> None:
    if step is None:
        step = STEP_OF.get(path)
    if step is not None:
        state = {"step": step, **state}
    url = f"{path}?{urlencode(state)}" if state else path
    if seal and state:
        # Sealed for the call that would request it, as the service seals what it issues.
        caller = form.get("ParentCallSid") if path == "/voice/whisper" else None
        url = sealed(client, url, state.get("origin") or caller or form["CallSid"])
    errors = _Errors()
    logging.getLogger("ivr").addHandler(errors)
    try:
        response = post(client, url, form, twist)
    finally:
        logging.getLogger("ivr").removeHandler(errors)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert errors.seen == []
    if response.status_code == 200 and response.mimetype == "text/xml":
        parse_twiml(response.get_data(), response.content_type)  # raises if Twilio would refuse it


CALLER_IDS = st.sampled_from(["+14155550100", "anonymous", ""]) | texts(40)


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(caller=CALLER_IDS, called=CALLER_IDS, keys=st.lists(DIGITS, max_size=3), twist=TWISTS)
def test_every_call_that_reached_the_service_has_a_complete_ticket(
    client: FlaskClient,
    database: Database,
    caller: str,
    called: str,
    keys: list[str],
    twist: list[tuple[str, str]],
) -> None:
    sid = f"CA{next(_sids):032x}"
    form = {"CallSid": sid, "From": caller, "To": called}
    twiml = parse(post(client, "/voice/incoming", {**form, "CallStatus": "ringing"}, twist))
    for key in keys:
        gather = twiml.find("Gather")
        if gather is None:
            break
        twiml = parse(post(client, gather.attrib["action"], {**form, "Digits": key}, twist))
    ended = {**form, "CallStatus": "completed", "CallDuration": "30"}
    assert post(client, "/voice/status", ended, twist).status_code in (200, 204)
    ticket = ticket_of(database, sid)

    def kept(number: str) -> str | None:
        return number.strip()[:32].replace("\x00", "\ufffd") or None

    assert (ticket.caller, ticket.called) == (kept(caller), kept(called))
    assert ticket.reference == reference_in(twiml) or reference_in(twiml) is None
    assert ticket.ended_at is not None and ticket.call_status == "completed"
