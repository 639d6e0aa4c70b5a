"""Nobody acts for someone else: the service probed as an attacker would, and as Twilio's retries would.

Each test sends what an attacker can send (a correctly signed request, since the auth token or a
captured request may be in the wrong hands) and asserts what the attacker gets: no skipped menus, no
place in a line, nobody logged out, nothing recorded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.security import is_signed, signed_content
from ivr.services import services
from ivr.signing import SEAL_MAX_AGE, Signer
from ivr.tickets.changes import QueueEvent
from ivr.tickets.events import events_of
from tests.conftest import AGENT_PINS
from tests.faults import free_port
from tests.support import (
    AUTH_TOKEN,
    BASE_URL,
    PUBLIC,
    Phone,
    new_call_sid,
    parse,
    sealed,
    signed_post,
    spoken,
    ticket_of,
)
from tests.tickets.test_journal import unreachable_redis
from tests.web.test_health import build

pytestmark = pytest.mark.usefixtures("agent_pins")

LANGUAGE_MENU = "For English, press 2."
CAUGHT = "sending the caller to the operator queue"
"""What the catch-all logs: no test here may reach it."""


def in_line(client: FlaskClient) -> int:
    with client.application.app_context():
        queue = services().queue
        return sum(queue.size(q, "en-US") for q in ("security", "funds", "general", "account"))


def waiting_for_funds(client: FlaskClient, *, agent_free: bool = False) -> Phone:
    """A caller in English, holding for a withdrawal (the funds queue), or put through at once."""
    call = Phone(client)
    call.dial()
    call.press("2")
    call.press("2")
    call.press("2")
    call.follow()
    assert ("connecting you" if agent_free else "in line") in call.last_heard()
    return call


def log_in(client: FlaskClient, agent: str) -> None:
    response = client.post(f"/api/agents/{agent}/login", auth=(agent, AGENT_PINS[agent]))
    assert response.status_code == 200, response.get_data(as_text=True)


def agent_status(client: FlaskClient, agent: str) -> str:
    with client.application.app_context():
        return services().queue.agent_status(agent)


# --- state in URLs ------------------------------------------------------------------------------


def test_a_made_up_hold_url_does_not_skip_the_menus_or_jump_the_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "/voice/hold?step=hold&language=en-US&queue=security&priority=100&tries=0"
    response = signed_post(client, forged, {"CallSid": new_call_sid(), "From": "+14155550100"})
    assert response.status_code == 200
    assert LANGUAGE_MENU in spoken(parse(response))
    assert in_line(client) == 0
    assert "was not issued by this service for this call" in caplog.text


def test_a_url_sealed_for_another_call_is_not_obeyed(client: FlaskClient) -> None:
    victim = waiting_for_funds(client)
    redirect = victim.twiml.find("Redirect") if victim.twiml is not None else None
    assert redirect is not None and redirect.text
    stranger = Phone(client)
    stranger.dial()
    twiml = stranger._post(redirect.text)  # the victim's own hold URL, on another call
    assert LANGUAGE_MENU in spoken(twiml)
    assert in_line(client) == 1  # only the victim


def test_a_sealed_url_with_a_changed_priority_is_not_obeyed(client: FlaskClient) -> None:
    call = waiting_for_funds(client)
    redirect = call.twiml.find("Redirect") if call.twiml is not None else None
    assert redirect is not None and redirect.text and "priority=30" in redirect.text
    twiml = call._post(redirect.text.replace("priority=30", "priority=100"))
    assert LANGUAGE_MENU in spoken(twiml)
    assert in_line(client) == 1  # still the one place, at its own priority


CALLING_BACK = "calling you back"


def test_a_made_up_callback_url_is_not_obeyed_and_proves_nothing(client: FlaskClient) -> None:
    # A scammer with a signed request cannot make our line open "calling you back" with a code.
    victim = waiting_for_funds(client)
    forged = (
        "/voice/hold?step=hold&language=en-US&queue=funds&priority=30&tries=0"
        f"&origin={victim.sid}&ref=4821093&code=1234"
    )
    twiml = parse(signed_post(client, forged, {"CallSid": new_call_sid(), "To": "+14155550100"}))
    assert LANGUAGE_MENU in spoken(twiml)
    assert not any(CALLING_BACK in said for said in spoken(twiml))


def test_only_a_callback_we_placed_opens_with_a_code(client: FlaskClient) -> None:
    # Sealed by us, but for the caller's own call (no `origin`): holding, not a callback.
    call = waiting_for_funds(client)
    url = sealed(
        client, "/voice/hold?step=hold&language=en-US&queue=funds&tries=1&code=1234", call.sid
    )
    twiml = call._post(url)
    assert "in line" in " ".join(spoken(twiml))
    assert not any(CALLING_BACK in said for said in spoken(twiml))


def test_a_callback_code_cannot_be_worked_out_without_the_secret() -> None:
    ours, theirs = Signer(["our-secret-0123456789abcdef"]), Signer(["a-guess-0123456789abcdef"])
    calls = [new_call_sid() for _ in range(50)]
    codes = [ours.callback_code(sid) for sid in calls]
    assert all(len(code) == 4 and code.isdigit() for code in codes)
    assert codes == [ours.callback_code(sid) for sid in calls]  # the same for Twilio's retries
    # Another key gives other codes: the call's sid alone (in every URL) tells nothing.
    assert sum(a == theirs.callback_code(sid) for a, sid in zip(codes, calls, strict=True)) <= 2


def test_two_callers_share_a_callback_code_only_by_rare_chance() -> None:
    # Consecutive calls (as Twilio numbers them, or as a busy morning brings them) do not share
    # codes: 200 calls would share about 2 pairs by chance, never a code for many.
    signer = Signer(["our-secret-0123456789abcdef"])
    codes = [signer.callback_code(f"CA{n:032x}") for n in range(1, 201)]
    assert len(set(codes)) >= 195
    assert max(codes.count(code) for code in codes) <= 2


def test_a_sealed_url_is_good_for_six_hours_only(client: FlaskClient, clock: FrozenClock) -> None:
    call = Phone(client)
    call.dial()
    call.press("2")
    clock.advance(SEAL_MAX_AGE + 1)
    twiml = call.press("2")  # the main menu's URL, used six hours later
    assert LANGUAGE_MENU in spoken(twiml)


def test_a_key_still_in_ivr_secret_opens_what_it_sealed(
    app_factory: Callable[..., Flask],
) -> None:
    old_key, new_key = "o" * 32, "n" * 32
    before = app_factory(state_secrets=(old_key,)).test_client()
    call = Phone(before)
    call.dial()
    call.press("2")
    call.client = app_factory(state_secrets=(new_key, old_key)).test_client()  # rotated
    twiml = call.press("1")
    assert LANGUAGE_MENU not in spoken(twiml)
    late = Phone(before)
    late.dial()
    late.press("2")
    late.client = app_factory(state_secrets=(new_key,)).test_client()  # the old key retired
    assert LANGUAGE_MENU in spoken(late.press("1"))


@pytest.mark.parametrize(
    "state",
    [
        "step=hold&tries=0",  # a hold step without a language
        "step=hold&language=en-US&tries=0",  # ... or without a queue
        "step=menu&language=en-US&menu=nowhere&tries=0",  # an unknown menu
        "step=agent&language=en-US&queue=funds&tries=0",  # an agent step without its agent
        "step=whisper&language=xx-XX&queue=funds&agent=emma&tries=0",  # an unknown language
        "step=survey&language=en-US&tries=99999",  # out of range
    ],
)
@pytest.mark.parametrize(
    "path", ["/voice/input", "/voice/hold", "/voice/agent", "/voice/recording"]
)
def test_sealed_but_malformed_state_restarts_the_call_without_an_error(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, path: str, state: str
) -> None:
    sid = new_call_sid()
    url = sealed(client, f"{path}?{state}", sid)
    with caplog.at_level(logging.WARNING):
        response = signed_post(client, url, {"CallSid": sid, "Digits": "1"})
    assert response.status_code == 200
    assert parse(response).find("Gather") is not None
    assert CAUGHT not in caplog.text


def test_a_call_duration_of_ten_to_the_twentieth_is_not_recorded(
    client: FlaskClient, database: Database
) -> None:
    call = Phone(client)
    call.dial()
    call.hang_up(duration=10**20)
    ticket = ticket_of(database, call.sid)
    assert ticket.call_status == "completed" and ticket.duration_seconds is None


FORGED_LOGOUT = "/agent/voice?step=agent_line&language=en-US&stage=options&agent=anna&tries=0"


@pytest.mark.parametrize("dev_mode", [False, True])
def test_a_made_up_agent_line_url_logs_nobody_out_without_the_pin(
    app_factory: Callable[..., Flask], dev_mode: bool
) -> None:
    token = None if dev_mode else AUTH_TOKEN
    client = app_factory(twilio_auth_token=token, dev_mode=dev_mode).test_client()
    log_in(client, "anna")
    form = {"CallSid": new_call_sid(), "From": "+15005550006", "Digits": "2"}
    response = signed_post(client, FORGED_LOGOUT, form)
    assert "agent line" in " ".join(spoken(parse(response))).lower()  # the welcome, from the start
    assert agent_status(client, "anna") == "available"


def agent_line_logout(client: FlaskClient, extension: str, pin: str) -> tuple[str, dict[str, str]]:
    """An agent calls the agent line and logs out; the URL and form of that last request."""
    line = Phone(client, caller="+4930000000104")
    line._post("/agent/voice")
    line.press(extension)
    line.press(pin)
    gather = line.twiml.find("Gather") if line.twiml is not None else None
    assert gather is not None
    line.press("2")
    assert "You are logged out." in " ".join(line.heard)
    return gather.attrib["action"], line.form(Digits="2")


def test_a_captured_agent_line_logout_replayed_later_changes_nothing(
    client: FlaskClient, clock: FrozenClock
) -> None:
    log_in(client, "anna")
    url, form = agent_line_logout(client, "104", AGENT_PINS["anna"])
    assert agent_status(client, "anna") == "offline"
    log_in(client, "anna")  # back at work
    clock.advance(60)
    replay = signed_post(client, url, form)
    assert replay.status_code == 200
    assert agent_status(client, "anna") == "available"


def post_raw(client: FlaskClient, url: str, body: str, signature: str) -> int:
    """POST a hand-made form body with a signature captured from another request."""
    response = client.post(
        url,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    return response.status_code


# Twilio's signature covers each name's distinct values, joined without separators
# (`RequestValidator.compute_signature`: "for value in sorted(set(values)): s += param_name + value"),
# so these bodies carry the captured request's signature and must count as that request.
TWISTS = [
    pytest.param("&Digits=2", id="a value sent twice"),
    pytest.param("&=", id="an empty pair"),
    pytest.param("&Digits=2&Digits=2&=&=", id="both, twice"),
]


@pytest.mark.parametrize("twist", TWISTS)
def test_a_captured_agent_line_logout_replayed_with_a_twist_changes_nothing(
    client: FlaskClient, clock: FrozenClock, twist: str
) -> None:
    log_in(client, "anna")
    url, form = agent_line_logout(client, "104", AGENT_PINS["anna"])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE_URL + url, form)
    log_in(client, "anna")  # back at work
    clock.advance(60)
    body = urlencode(form) + twist
    assert RequestValidator(AUTH_TOKEN).validate(
        BASE_URL + url, MultiDict(parse_qsl(body, keep_blank_values=True)), signature
    )
    assert post_raw(client, url, body, signature) == 200
    assert agent_status(client, "anna") == "available"


def test_a_form_whose_names_and_values_are_cut_elsewhere_counts_as_the_signed_one() -> None:
    # "From" + "+4930123" and "Fro" + "m+4930123" sign alike: the fingerprint takes them as one.
    one = MultiDict([("From", "+4930123"), ("To", "4")])
    other = MultiDict([("Fro", "m+4930123"), ("To", "4")])
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.compute_signature(PUBLIC, one) == validator.compute_signature(PUBLIC, other)
    assert signed_content(one) == signed_content(other)
    twice = MultiDict([("From", "+4930123"), ("To", "4"), ("To", "4"), ("", "")])
    assert signed_content(one) == signed_content(twice)
    assert signed_content(one) != signed_content(MultiDict([("From", "+4930123")]))


def test_a_dial_action_replayed_with_a_twist_logs_the_conversation_once(
    client: FlaskClient, database: Database
) -> None:
    call = waiting_for_funds(client)
    log_in(client, "emma")
    dial = call.follow().find("Dial")
    assert dial is not None
    whisper_form = {"CallSid": new_call_sid(), "ParentCallSid": call.sid, "From": call.caller}
    signed_post(client, dial[0].attrib["url"], whisper_form)
    done = call.form(DialCallStatus="completed", DialCallDuration="95", CallStatus="in-progress")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        BASE_URL + dial.attrib["action"], done
    )
    for twist in ("", "&DialCallDuration=95", "&="):
        body = urlencode(done) + twist
        assert post_raw(client, dial.attrib["action"], body, signature) == 200
    with database.session() as session:
        rows = events_of(session, call.sid)
        events = [row.event for row in rows]
    assert events.count(QueueEvent.COMPLETEAGENT) == 1
    assert [row.talk_seconds for row in rows if row.talk_seconds] == [95]


# --- each step applies once ---------------------------------------------------------------------


def test_a_menu_step_sent_three_times_without_a_token_is_recorded_once(
    client: FlaskClient, database: Database
) -> None:
    call = Phone(client)
    call.dial()
    gather = call.twiml.find("Gather") if call.twiml is not None else None
    assert gather is not None
    for _ in range(3):
        signed_post(client, gather.attrib["action"], call.form(Digits="2"))
    assert ticket_of(database, call.sid).menu_path == ["language:2"]


def test_an_idempotency_token_of_any_length_keeps_the_change(
    client: FlaskClient, database: Database
) -> None:
    call = Phone(client)
    call.dial()
    gather = call.twiml.find("Gather") if call.twiml is not None else None
    assert gather is not None
    headers = {"I-Twilio-Idempotency-Token": "t" * 5000}
    signed_post(client, gather.attrib["action"], call.form(Digits="2"), headers=headers)
    assert ticket_of(database, call.sid).menu_path == ["language:2"]


def test_a_replayed_whisper_hears_the_whisper_again_instead_of_a_hang_up(
    client: FlaskClient,
) -> None:
    call = waiting_for_funds(client)
    log_in(client, "emma")
    twiml = call.follow()  # the next round: put through to Emma
    dial = twiml.find("Dial")
    assert dial is not None
    whisper = dial[0].attrib["url"]
    form = {"CallSid": new_call_sid(), "ParentCallSid": call.sid, "From": call.caller}
    first = signed_post(client, whisper, form)
    again = signed_post(client, whisper, form)  # Twilio's retry, or someone's replay
    assert "Hangup" not in again.get_data(as_text=True)
    assert spoken(parse(again)) == spoken(parse(first))
    assert agent_status(client, "emma") == "busy"


def test_a_replayed_dial_action_logs_the_conversation_once_and_frees_nobody_later(
    client: FlaskClient, database: Database
) -> None:
    call = waiting_for_funds(client)
    log_in(client, "emma")
    twiml = call.follow()
    dial = twiml.find("Dial")
    assert dial is not None
    whisper_form = {"CallSid": new_call_sid(), "ParentCallSid": call.sid, "From": call.caller}
    signed_post(client, dial[0].attrib["url"], whisper_form)
    done = call.form(DialCallStatus="completed", DialCallDuration="95", CallStatus="in-progress")
    signed_post(client, dial.attrib["action"], done)
    call.hang_up()
    waiting_for_funds(client, agent_free=True)  # Emma takes the next caller
    assert agent_status(client, "emma") == "busy"
    replay = signed_post(client, dial.attrib["action"], done)  # a minute later
    assert replay.status_code == 200
    assert agent_status(client, "emma") == "busy"  # still with the second caller
    with database.session() as session:
        events = [row.event for row in events_of(session, call.sid)]
    assert events.count(QueueEvent.COMPLETEAGENT) == 1


# --- out of order -------------------------------------------------------------------------------


def test_a_hold_poll_after_the_call_ended_hangs_up_and_hands_nobody_to_an_agent(
    client: FlaskClient,
) -> None:
    call = waiting_for_funds(client)
    redirect = call.twiml.find("Redirect") if call.twiml is not None else None
    assert redirect is not None and redirect.text
    call.hang_up()
    late = signed_post(client, redirect.text, call.form())  # arrives after `completed`
    assert "<Hangup" in late.get_data(as_text=True)
    assert in_line(client) == 0
    log_in(client, "emma")
    assert agent_status(client, "emma") == "available"


def test_a_menu_key_after_the_call_ended_queues_nobody(client: FlaskClient) -> None:
    call = Phone(client)
    call.dial()
    call.press("2")
    call.press("2")  # deposits and withdrawals
    gather = call.twiml.find("Gather") if call.twiml is not None else None
    assert gather is not None
    call.hang_up()
    signed_post(client, gather.attrib["action"], call.form(Digits="2"))  # a withdrawal, too late
    assert in_line(client) == 0


# --- Twilio's signature -------------------------------------------------------------------------

# Twilio's own example, as Twilio's Python library tests its validator (twilio/twilio-python,
# tests/unit/test_request_validator.py): auth token 12345, this URL and form, this signature.
EXAMPLE_TOKEN = "12345"
EXAMPLE_FORM = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXAMPLE_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.parametrize(
    ("base_url", "headers", "expected"),
    [
        ("https://mycompany.com", {}, True),  # PUBLIC_BASE_URL
        (None, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com"}, True),
        (None, {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "mycompany.com"}, True),
        (None, {}, False),  # seen as http://internal:8000: not the URL Twilio signed
        ("https://elsewhere.example", {}, False),
    ],
)
def test_twilios_published_example_signature_is_checked_behind_a_proxy(
    app: Flask, base_url: str | None, headers: dict[str, str], expected: bool
) -> None:
    with app.test_request_context(
        "/myapp.php?foo=1&bar=2",
        base_url="http://internal:8000",
        method="POST",
        data=EXAMPLE_FORM,
        headers={"X-Twilio-Signature": EXAMPLE_SIGNATURE, **headers},
    ):
        from flask import request

        assert is_signed(request, EXAMPLE_TOKEN, base_url) is expected


@pytest.mark.parametrize(
    "public",
    [
        "https://mycompany.com/voice/hold?step=hold&ref=4821093",
        "https://mycompany.com:443/voice/hold?step=hold",
        "http://mycompany.com:8080/voice/input",
        "http://mycompany.com/voice/input?a=%26b&c=d+e",
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signatures_are_accepted_exactly_as_twilios_validator_accepts_them(
    app: Flask, public: str, method: str
) -> None:
    """Signed over the URL with its port, without it, over another URL or form, or not at all:
    the check says what `RequestValidator.validate` says, for every one."""
    form = MultiDict([("CallSid", "CA1"), ("Digits", "12"), ("Digits", "3"), ("Digits", "12")])
    validator = RequestValidator(EXAMPLE_TOKEN)
    split = urlsplit(public)
    bare = split._replace(netloc=split.hostname or "").geturl()
    with_port = split._replace(netloc=f"{split.hostname}:{split.port or 443}").geturl()
    signed = form if method == "POST" else {}
    signatures = [
        validator.compute_signature(url, params)
        for url in (public, bare, with_port, public + "&x=1")
        for params in (signed, {"CallSid": "CA2"})
    ] + ["", "not base64 ☃", EXAMPLE_SIGNATURE]
    base_url, path = public.split("/voice")[0], "/voice" + public.split("/voice")[1]
    accepted = []
    for signature in signatures:
        with app.test_request_context(
            path,
            base_url="http://internal:8000",
            method=method,
            data=form if method == "POST" else None,
            headers={"X-Twilio-Signature": signature},
        ):
            from flask import request

            expected = bool(signature) and validator.validate(public, signed, signature)
            assert is_signed(request, EXAMPLE_TOKEN, base_url) is expected
            accepted.append(expected)
    assert any(accepted) and not all(accepted)


def test_a_wrong_signature_is_refused_on_every_webhook(client: FlaskClient) -> None:
    for path in ("/voice/incoming", "/voice/status", "/voice/fallback", "/agent/voice"):
        response = signed_post(client, path, {"CallSid": new_call_sid()}, token="not-the-token")
        assert response.status_code == 403, path


# --- the fallback URL ---------------------------------------------------------------------------


def test_the_fallback_answers_with_every_store_down(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("the spool cannot be made under a file")
    nowhere = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    app = build(nowhere, tmp_path / "a-file", unreachable_redis())
    client = app.test_client()
    failed = "https://ivr.example.com/voice/hold?step=hold&language=de-DE&queue=funds"
    response = signed_post(
        client,
        "/voice/fallback",
        {"CallSid": new_call_sid(), "ErrorCode": "11200", "ErrorUrl": failed},
    )
    assert response.status_code == 200
    twiml = parse(response)
    assert spoken(twiml)[0].startswith("Es tut uns leid")  # the caller's language
    record = twiml.find("Record")
    assert record is not None  # no operator line configured: a voicemail
    saved = signed_post(
        client,
        record.attrib["action"],
        {
            "CallSid": new_call_sid(),
            "RecordingUrl": "https://api.twilio.com/r/RE1",
            "RecordingDuration": "9",
        },
    )
    assert saved.status_code == 200 and parse(saved).find("Hangup") is not None


def test_the_fallback_puts_the_caller_through_to_the_operator_line(
    app_factory: Callable[..., Flask], database: Database
) -> None:
    client = app_factory(operator_number="+14155550999").test_client()
    sid = new_call_sid()
    response = signed_post(client, "/voice/fallback", {"CallSid": sid, "ErrorCode": "11205"})
    dial = parse(response).find("Dial")
    assert dial is not None and (dial.findtext("Number") or "").strip() == "+14155550999"
    unanswered = signed_post(
        client, dial.attrib["action"], {"CallSid": sid, "DialCallStatus": "no-answer"}
    )
    record = parse(unanswered).find("Record")
    assert record is not None
    signed_post(
        client,
        record.attrib["action"],
        {"CallSid": sid, "RecordingUrl": "https://api.twilio.com/r/RE2", "RecordingDuration": "12"},
    )
    ticket = ticket_of(database, sid)
    assert ticket.outcome == "voicemail" and ticket.recording_url == "https://api.twilio.com/r/RE2"


# --- development mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_dev_mode_refuses_a_host_other_machines_can_reach(
    host: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.cli import main

    # `ivr serve --dev` writes IVR_DEV_MODE and IVR_EXCHANGE_URL into this process's environment:
    # set both through monkeypatch so that they are put back, not inherited by later tests'
    # instances (an exchange hook there makes every call open with a lookup).
    monkeypatch.setenv("IVR_DEV_MODE", "")
    monkeypatch.setenv("IVR_EXCHANGE_URL", "")
    assert main(["serve", "--dev", "--host", host]) == 1
    assert "not a loopback address" in capsys.readouterr().err


def test_dev_mode_still_checks_the_seal(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(twilio_auth_token=None, dev_mode=True).test_client()
    forged = "/voice/hold?step=hold&language=en-US&queue=security&priority=100&tries=0"
    response = client.post(forged, data={"CallSid": new_call_sid()})
    assert LANGUAGE_MENU in spoken(parse(response))
    assert in_line(client) == 0
