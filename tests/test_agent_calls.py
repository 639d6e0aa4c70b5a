"""Callers reach a human: whole calls through holding to an agent, callbacks that keep the place,
agents logging in and out, with every Twilio REST call checked through the `twilio` library's own
HTTP client interface (a recording fake)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import services
from ivr.tickets.events import events_of, queue_stats
from tests.conftest import MONDAY_AFTERNOON
from tests.support import FakeTwilioRest, Phone, new_call_sid, prompt_texts, signed_post, ticket_of

PUBLIC = "https://ivr.example.com"


@pytest.fixture
def rest() -> FakeTwilioRest:
    return FakeTwilioRest()


@pytest.fixture
def app(app_factory: Callable[..., Flask], rest: FakeTwilioRest) -> Flask:
    """The app with Twilio REST credentials, so it moves and calls back callers itself."""
    return app_factory(
        twilio_http_client=rest, twilio_account_sid="AC" + "1" * 32, public_base_url=PUBLIC
    )


def phone(client: FlaskClient, caller: str = "+14155550100") -> Phone:
    return Phone(client, caller=caller, base_url=PUBLIC)


def log_in(client: FlaskClient, agent: str, pin: str) -> dict[str, object]:
    response = client.post(f"/api/agents/{agent}/login", auth=(agent, pin))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, object] = response.get_json()
    return body


def queue_for_funds(call: Phone, language_key: str) -> None:
    """Language, then deposits and withdrawals, then a withdrawal; then the first hold round."""
    call.dial()
    call.press(language_key)
    call.press("2")
    call.press("2")
    call.follow()


def agent_answers(client: FlaskClient, call: Phone) -> str:
    """The agent's phone rings and is picked up: Twilio fetches the whisper on the agent's leg."""
    assert call.twiml is not None
    dial = call.twiml.find("Dial")
    assert dial is not None, "the caller is not being put through"
    target = dial[0]
    form = {"CallSid": new_call_sid(), "ParentCallSid": call.sid, "From": call.caller}
    response = signed_post(client, target.attrib["url"], form, base_url=PUBLIC)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def conversation_ends(call: Phone, seconds: int, by: str = "agent") -> None:
    assert call.twiml is not None
    dial = call.twiml.find("Dial")
    assert dial is not None
    status = "in-progress" if by == "agent" else "completed"
    call._post(
        dial.attrib["action"],
        DialCallStatus="completed",
        DialCallDuration=str(seconds),
        CallStatus=status,
    )


@pytest.mark.parametrize(
    ("language", "key", "caller", "agent", "pin", "target"),
    [
        ("de-DE", "4", "+4915112345678", "anna", "5173", ("Number", "+4930000000104")),
        ("en-US", "2", "+14155550100", "emma", "7310", ("Client", "emma")),
    ],
)
def test_a_call_from_the_menu_through_holding_to_an_agent_and_a_score(
    client: FlaskClient,
    database: Database,
    rest: FakeTwilioRest,
    clock: FrozenClock,
    language: str,
    key: str,
    caller: str,
    agent: str,
    pin: str,
    target: tuple[str, str],
) -> None:
    words = prompt_texts(language)
    call = phone(client, caller)
    queue_for_funds(call, key)
    assert words["no_agents"] in call.heard  # nobody logged in yet
    assert words["queue_next"] in call.heard

    clock.advance(75)
    assert log_in(client, agent, pin)["status"] == "busy"  # handed the waiting caller at once
    [moved] = rest.redirects()
    assert moved.url.endswith(f"/Calls/{call.sid}.json")
    assert moved.data["Url"].startswith(PUBLIC + "/voice/hold?")
    call.redirected_to(moved.path)
    assert words["connecting"] in call.heard
    assert call.twiml is not None
    dial = call.twiml.find("Dial")
    assert dial is not None and (dial[0].tag, dial[0].text) == target

    whisper = agent_answers(client, call)
    assert "funds" in whisper
    clock.advance(240)
    conversation_ends(call, 240)
    assert words["survey_question"] in call.heard
    call.press("4")
    assert words["survey_thanks"] in call.heard
    call.hang_up()

    ticket = ticket_of(database, call.sid)
    assert (ticket.outcome, ticket.agent, ticket.satisfaction) == ("answered", agent, 4)
    assert ticket.wait_seconds == 75
    assert ticket.answered_at == MONDAY_AFTERNOON + timedelta(seconds=75)
    with database.session() as session:
        logged = [(e.event, e.agent) for e in events_of(session, call.sid)]
    assert logged == [
        ("ENTERQUEUE", None),
        ("CONNECT", agent),
        ("COMPLETEAGENT", agent),
    ]
    with client.application.app_context():
        assert services().queue.agent_status(agent) == "available"


def test_without_rest_credentials_the_next_hold_round_connects(
    app_factory: Callable[..., Flask], database: Database
) -> None:
    client = app_factory().test_client()
    call = Phone(client)
    queue_for_funds(call, "2")
    log_in(client, "emma", "7310")
    call.wait_silently()  # the next round of hold music ends
    assert call.twiml is not None and call.twiml.find("Dial/Client") is not None


def test_the_agent_gets_the_highest_priority_longest_waiting_caller(
    client: FlaskClient, rest: FakeTwilioRest, clock: FrozenClock
) -> None:
    first = phone(client, "+14155550001")
    queue_for_funds(first, "2")  # funds, priority 30
    clock.advance(30)
    urgent = phone(client, "+14155550002")
    urgent.dial()
    urgent.press("2")
    urgent.press("0")  # operator: general queue, priority 10
    urgent.follow()
    log_in(client, "emma", "7310")  # serves both queues in English
    [moved] = rest.redirects()
    assert moved.url.endswith(f"/Calls/{first.sid}.json")


def test_an_agent_who_does_not_answer_is_logged_out_and_the_caller_keeps_the_front(
    client: FlaskClient, rest: FakeTwilioRest, database: Database
) -> None:
    call = phone(client)
    queue_for_funds(call, "2")
    behind = phone(client, "+14155550199")
    queue_for_funds(behind, "2")
    log_in(client, "emma", "7310")
    call.redirected_to(rest.redirects()[0].path)
    assert call.twiml is not None
    dial = call.twiml.find("Dial")
    assert dial is not None
    call._post(dial.attrib["action"], DialCallStatus="no-answer", CallStatus="in-progress")
    assert prompt_texts("en-US")["agent_unavailable"] in call.heard
    call.follow()
    assert "You are next in line." in call.heard[-5:]
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "offline"
    with database.session() as session:
        assert "RINGNOANSWER" in [e.event for e in events_of(session, call.sid)]


def test_callback_keeps_the_place_and_the_service_calls_back_when_it_comes_up(
    client: FlaskClient, rest: FakeTwilioRest, database: Database, clock: FrozenClock
) -> None:
    first = phone(client, "+14155550001")
    queue_for_funds(first, "2")
    waiting = phone(client, "+14155550002")
    queue_for_funds(waiting, "2")
    last = phone(client, "+14155550003")
    queue_for_funds(last, "2")
    assert "You are number 3 in line." in last.heard

    waiting.press("2")  # call me back, keep my place
    assert "You keep your place in line" in " ".join(waiting.heard)
    waiting.hang_up()
    last.wait_silently()
    assert "You are number 3 in line." in last.heard[-6:]  # the callback still holds place 2

    log_in(client, "emma", "7310")
    first.redirected_to(rest.redirects()[0].path)
    agent_answers(client, first)
    clock.advance(120)
    conversation_ends(first, 120)
    # Emma is free: the next in line is the callback, so the service calls that caller back.
    [placed] = rest.placed_calls()
    assert placed.data["To"] == "+14155550002" and placed.data["From"] == "+18005550199"
    assert placed.data["StatusCallback"].startswith(PUBLIC + "/voice/status?origin=")
    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    assert callback.twiml is not None and callback.twiml.find("Dial/Client") is not None
    agent_answers(client, callback)
    ticket = ticket_of(database, waiting.sid)
    assert (ticket.outcome, ticket.agent) == ("answered", "emma")
    with database.session() as session:
        logged = [e.event for e in events_of(session, waiting.sid)]
    assert logged[:3] == ["ENTERQUEUE", "CALLBACK", "CALLBACKDIAL"] and logged[-1] == "CONNECT"


def test_a_caller_who_hangs_up_before_the_agent_answers_frees_the_agent(
    client: FlaskClient, rest: FakeTwilioRest
) -> None:
    call = phone(client)
    queue_for_funds(call, "2")
    log_in(client, "emma", "7310")
    call.hang_up()
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "available"


def test_queue_events_give_the_queues_statistics(
    client: FlaskClient, rest: FakeTwilioRest, database: Database, clock: FrozenClock
) -> None:
    answered = phone(client, "+14155550001")
    queue_for_funds(answered, "2")
    gone = phone(client, "+14155550002")
    queue_for_funds(gone, "2")
    clock.advance(40)
    log_in(client, "emma", "7310")
    answered.redirected_to(rest.redirects()[0].path)
    agent_answers(client, answered)
    clock.advance(30)
    gone.hang_up()
    with database.session() as session:
        [funds] = queue_stats(
            session,
            since=MONDAY_AFTERNOON,
            until=MONDAY_AFTERNOON + timedelta(hours=1),
            queue="funds",
        )
    assert (funds.offered, funds.answered, funds.abandoned) == (2, 1, 1)
    assert funds.average_wait_seconds == 40 and funds.abandon_rate == 0.5


# --- logging in and out ----------------------------------------------------------------------


def test_agent_logs_in_and_out_on_the_agent_line(client: FlaskClient) -> None:
    line = phone(client, "+4930000000104")
    twiml = line._post("/agent/voice")
    assert "extension" in " ".join(line.heard)
    gather = twiml.find("Gather")
    assert gather is not None and gather.attrib["finishOnKey"] == "#"
    line._post(gather.attrib["action"], Digits="104")
    line.press("5173")
    assert "To log in, press 1." in line.heard[-1]
    line.press("1")
    assert "You are logged in and available for calls." in line.heard
    with client.application.app_context():
        assert services().queue.agent_status("anna") == "available"


def test_a_wrong_pin_on_the_agent_line_logs_nobody_in(client: FlaskClient) -> None:
    line = phone(client)
    line._post("/agent/voice")
    for _ in range(3):
        line.press("104")
        line.press("0000")
    assert "Sorry, that extension and PIN do not match." in line.heard
    assert line.twiml is not None and line.twiml.find("Hangup") is not None
    with client.application.app_context():
        assert services().queue.agent_status("anna") == "offline"


@pytest.mark.parametrize(
    ("agent", "auth", "status"),
    [("emma", ("emma", "0000"), 401), ("emma", None, 401), ("nobody", ("nobody", "1"), 404)],
)
def test_agent_api_refuses_wrong_credentials(
    client: FlaskClient, agent: str, auth: tuple[str, str] | None, status: int
) -> None:
    response = client.post(f"/api/agents/{agent}/login", auth=auth)
    assert response.status_code == status
    assert "error" in response.get_json()


def test_agent_api_logs_out_and_reports_the_status(client: FlaskClient) -> None:
    log_in(client, "lucas", "2964")
    response = client.post("/api/agents/lucas/logout", auth=("lucas", "2964"))
    assert response.get_json()["status"] == "offline"
    state = client.get("/api/agents/lucas", auth=("lucas", "2964")).get_json()
    assert state["status"] == "offline" and state["languages"] == ["fr-FR", "en-US"]


def test_repeated_wrong_pins_lock_the_agent_out_even_with_the_right_pin(
    client: FlaskClient,
) -> None:
    for _ in range(5):
        assert client.post("/api/agents/emma/login", auth=("emma", "0000")).status_code == 401
    locked = client.post("/api/agents/emma/login", auth=("emma", "7310"))
    assert locked.status_code == 429 and "15 minutes" in locked.get_json()["error"]
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "offline"


def test_a_right_pin_clears_earlier_mistakes(client: FlaskClient) -> None:
    for _ in range(4):
        client.post("/api/agents/emma/logout", auth=("emma", "0000"))
    assert client.get("/api/agents/emma", auth=("emma", "7310")).status_code == 200
    for _ in range(4):
        client.post("/api/agents/emma/logout", auth=("emma", "0000"))
    assert log_in(client, "emma", "7310")["status"] == "available"


def test_wrong_pins_on_the_agent_line_count_towards_the_lockout(client: FlaskClient) -> None:
    for _ in range(2):  # two calls to the agent line, three wrong PINs each
        line = phone(client)
        line._post("/agent/voice")
        for _ in range(3):
            line.press("104")
            line.press("0000")
    line = phone(client)
    line._post("/agent/voice")
    line.press("104")
    line.press("5173")  # Anna's right PIN, but she is locked out for now
    assert line.heard[-2:] == [
        "Sorry, that extension and PIN do not match.",
        "Please enter your extension, then press pound.",
    ]
    assert client.post("/api/agents/anna/login", auth=("anna", "5173")).status_code == 429
