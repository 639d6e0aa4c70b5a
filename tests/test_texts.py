"""The ticket number by text: once per call, in the caller's language, from the number they called,
on a thread of its own, so that a slow or failing Twilio Messaging never delays or changes the call.

Twilio is faked at the `twilio` library's HTTP client (`ivr.simulator.rest.TwilioRest`, which
quotes the Messages resource it models).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.http.response import Response as TwilioResponse

from ivr import texts as texts_module
from ivr.db import Database
from ivr.services import Services
from ivr.simulator.rest import Kind, TwilioRest
from ivr.telephony import TwilioTelephony
from ivr.texts import Texts
from tests.support import (
    AUTH_TOKEN,
    PUBLIC,
    REST_ACCOUNT_SID,
    Phone,
    prompt_texts,
    ticket_of,
    twilio_rest,
    write_rules,
)

CALLER = "+14155550100"
OUR_NUMBER = "+18005550199"
SETTLE = 10.0
"""Seconds a test waits at most for the texting thread."""


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials: it can text."""
    return rest_app


def services_of(client: FlaskClient) -> Services:
    found: Services = client.application.extensions["ivr"]
    return found


def sent(client: FlaskClient) -> Texts:
    texts = services_of(client).switchboard.texts
    assert texts is not None
    return texts


def holding(client: FlaskClient) -> Phone:
    """A caller in English, holding for a withdrawal (nobody is logged in)."""
    call = Phone(client, caller=CALLER, called=OUR_NUMBER, base_url=PUBLIC)
    call.dial()
    call.press("2")
    call.press("2")
    call.press("2")
    call.follow()
    assert "in line" in call.last_heard()
    return call


def test_a_caller_who_asks_for_a_callback_gets_the_ticket_number_and_code_by_text_once(
    client: FlaskClient, rest: TwilioRest, database: Database
) -> None:
    call = holding(client)
    assert call.twiml is not None
    gather = call.twiml.find("Gather")
    assert gather is not None
    call.press("2")  # call me back
    assert sent(client).drain(SETTLE)
    ticket = ticket_of(database, call.sid)
    [text] = rest.texts()
    assert (text.data["To"], text.data["From"]) == (CALLER, OUR_NUMBER)
    assert text.data["Body"] == prompt_texts("en-US")["sms_callback"].format(
        brand="BitP",
        reference=ticket.reference,
        code=ticket.callback_code,
        email="support@bitp.example",
    )
    # Twilio's retry of the same webhook (or a replay of it) texts nothing more.
    call._post(gather.attrib["action"], Digits="2")
    assert sent(client).drain(SETTLE)
    assert len(rest.texts()) == 1


def test_a_failed_text_changes_nothing_on_the_call(
    client: FlaskClient, rest: TwilioRest, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    call = holding(client)
    rest.fail()  # Twilio answers 500 to everything from now on
    with caplog.at_level(logging.ERROR, logger="ivr.telephony"):
        call.press("2")
        assert sent(client).drain(SETTLE)
    assert len(rest.texts()) == 1 and "could not text +14155550100" in caplog.text
    assert "You keep your place in line" in call.last_heard()
    assert call.last_heard().endswith("Thank you for calling BitP. Goodbye.")
    ticket = ticket_of(database, call.sid)
    assert (ticket.outcome, ticket.callback_number) == ("callback", CALLER)
    assert ticket.callback_code is not None


def test_a_slow_twilio_does_not_hold_up_the_call(
    client: FlaskClient, rest: TwilioRest, database: Database
) -> None:
    call = holding(client)
    answer = rest.hold(Kind.TEXT)  # Twilio answers texts only when the test says so
    try:
        call.press("2")  # answered while the text is still on its way
        assert "You keep your place in line" in call.last_heard()
        assert not sent(client).drain(0)
    finally:
        answer.set()
    assert sent(client).drain(SETTLE)
    assert len(rest.texts()) == 1


def test_without_the_switch_nobody_is_texted(
    app_factory: Callable[..., Flask], rest: TwilioRest, tmp_path: Path
) -> None:
    rules, _ = write_rules(tmp_path, ("sms_reference: true", "sms_reference: false"))
    app = app_factory(
        twilio_http_client=rest,
        twilio_account_sid=REST_ACCOUNT_SID,
        public_base_url=PUBLIC,
        routing_rules=rules,
    )
    client = app.test_client()
    holding(client).press("2")
    assert sent(client).drain(SETTLE)
    assert rest.texts() == []


# --- the texting thread ---------------------------------------------------------------------------


class Flaky(TwilioRest):
    """Twilio's API behind a network that drops the first request (the HTTP client raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def request(self, method: str, uri: str, **kwargs: object) -> TwilioResponse:
        if not self.dropped:
            self.dropped += 1
            raise ConnectionResetError("connection reset by peer")
        return super().request(method, uri, **kwargs)  # type: ignore[arg-type]


def telephony(http: TwilioRest) -> TwilioTelephony:
    return TwilioTelephony(REST_ACCOUNT_SID, AUTH_TOKEN, PUBLIC, http_client=http)


def test_the_thread_outlives_a_failing_http_client(caplog: pytest.LogCaptureFixture) -> None:
    http = Flaky()
    texts = Texts(telephony(http))
    with caplog.at_level(logging.ERROR, logger="ivr.texts"):
        texts.send(CALLER, OUR_NUMBER, "first")
        texts.send(CALLER, OUR_NUMBER, "second")
        assert texts.drain(SETTLE)
    assert "sending the text to +14155550100 failed" in caplog.text
    assert [r.data["Body"] for r in http.texts()] == ["second"]


def test_texts_beyond_the_waiting_limit_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    http = twilio_rest()
    answer = http.hold(Kind.TEXT)
    texts = Texts(telephony(http), max_waiting=1)
    try:
        texts.send(CALLER, OUR_NUMBER, "being sent")
        assert http.wait_for(Kind.TEXT, SETTLE)  # the thread took it
        with caplog.at_level(logging.WARNING, logger="ivr.texts"):
            texts.send(CALLER, OUR_NUMBER, "waiting")
            texts.send(CALLER, OUR_NUMBER, "one too many")
    finally:
        answer.set()
    assert texts.drain(SETTLE)
    assert [r.data["Body"] for r in http.texts()] == ["being sent", "waiting"]
    assert "the text to +14155550100 is dropped" in caplog.text


def test_a_thread_that_ended_idle_is_started_again_by_the_next_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(texts_module, "IDLE_SECONDS", 0.05)
    http = twilio_rest()
    texts = Texts(telephony(http))
    texts.send(CALLER, OUR_NUMBER, "before")
    assert texts.drain(SETTLE)
    deadline = time.monotonic() + SETTLE
    while texts.running():
        assert time.monotonic() < deadline, "the idle thread did not end"
        time.sleep(0.01)
    texts.send(CALLER, OUR_NUMBER, "after")
    assert texts.drain(SETTLE)
    assert [r.data["Body"] for r in http.texts()] == ["before", "after"]


def test_no_thread_to_be_had_drops_the_text_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    http = twilio_rest()
    texts = Texts(telephony(http))
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with caplog.at_level(logging.ERROR, logger="ivr.texts"):
        texts.send(CALLER, OUR_NUMBER, "lost")  # returns: the webhook answers as ever
    assert "cannot start the texting thread" in caplog.text
    monkeypatch.undo()
    texts.send(CALLER, OUR_NUMBER, "next")  # the next text starts a thread after all
    assert texts.drain(SETTLE)
    assert [r.data["Body"] for r in http.texts()] == ["next"]
