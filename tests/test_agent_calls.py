"""Callers reach a human: whole calls through holding to an agent, callbacks that keep the place,
agents logging in and out, with every Twilio REST call checked through the `twilio` library's own
HTTP client interface (`ivr.simulator.rest.TwilioRest`, which records them and refuses, as Twilio
does, to move a call that is not in progress)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError
from werkzeug.test import TestResponse

from ivr.cli import main
from ivr.clock import FrozenClock
from ivr.credentials import PinStore
from ivr.db import Database
from ivr.queue import CallQueue
from ivr.services import services
from ivr.simulator.rest import Kind, RestRequest, TwilioRest
from ivr.throttle import most_checks
from ivr.tickets.events import events_of, line_histories, queue_stats
from tests.conftest import AGENT_PINS, MONDAY_AFTERNOON
from tests.support import (
    PUBLIC,
    RULES,
    Phone,
    new_call_sid,
    prompt_texts,
    signed_post,
    ticket_of,
)

pytestmark = pytest.mark.usefixtures("agent_pins")


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials, so it moves and calls back callers itself."""
    return rest_app


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
        ("de-DE", "4", "+4915112345678", "anna", AGENT_PINS["anna"], ("Number", "+4930000000104")),
        ("en-US", "2", "+14155550100", "emma", AGENT_PINS["emma"], ("Client", "emma")),
    ],
)
def test_a_call_from_the_menu_through_holding_to_an_agent_and_a_score(
    client: FlaskClient,
    database: Database,
    rest: TwilioRest,
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
    assert prompt_texts(language)["queue_label_funds"] in whisper  # named, in the agent's language
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
    log_in(client, "emma", AGENT_PINS["emma"])
    call.wait_silently()  # the next round of hold music ends
    assert call.twiml is not None and call.twiml.find("Dial/Client") is not None


def test_the_agent_gets_the_highest_priority_longest_waiting_caller(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock
) -> None:
    first = phone(client, "+14155550001")
    queue_for_funds(first, "2")  # funds, priority 30
    clock.advance(30)
    urgent = phone(client, "+14155550002")
    urgent.dial()
    urgent.press("2")
    urgent.press("0")  # operator: general queue, priority 10
    urgent.follow()
    log_in(client, "emma", AGENT_PINS["emma"])  # serves both queues in English
    [moved] = rest.redirects()
    assert moved.url.endswith(f"/Calls/{first.sid}.json")


def test_an_agent_who_does_not_answer_is_logged_out_and_the_caller_keeps_the_front(
    client: FlaskClient, rest: TwilioRest, database: Database
) -> None:
    call = phone(client)
    queue_for_funds(call, "2")
    behind = phone(client, "+14155550199")
    queue_for_funds(behind, "2")
    log_in(client, "emma", AGENT_PINS["emma"])
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
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
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

    log_in(client, "emma", AGENT_PINS["emma"])
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


def callback_code_in(url: str) -> str:
    """The callback code the URL of a callback we place carries to its first webhook."""
    [code] = parse_qs(urlsplit(url).query)["code"]
    return code


def a_callback_asked_and_placed(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock, language_key: str = "2"
) -> tuple[Phone, RestRequest]:
    """A caller holds for withdrawals, asks to be called back and hangs up; an agent logs in and
    the service calls them back. The caller's call, and the call placed."""
    waiting = phone(client, "+14155550002")
    queue_for_funds(waiting, language_key)
    waiting.press("2")  # call me back, keep my place
    waiting.hang_up()
    clock.advance(60)
    log_in(client, "emma", AGENT_PINS["emma"])
    [placed] = rest.placed_calls()
    return waiting, placed


def test_a_callback_opens_with_the_code_the_caller_was_given_before_the_agent_is_rung(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    words = prompt_texts("en-US")
    waiting, placed = a_callback_asked_and_placed(client, rest, clock)
    [told] = [h for h in waiting.heard if h.startswith("Your callback code is ")]
    code = told.split(".")[0].removeprefix("Your callback code is ").replace(" ", "")
    assert len(code) == 4 and code.isdigit()
    ticket = ticket_of(database, waiting.sid)
    assert ticket.callback_code == code
    assert callback_code_in(placed.data["Url"]) == code  # it travelled with the request

    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    reference = " ".join(ticket.reference)
    assert callback.heard[:4] == [
        words["callback_opening"].format(brand="BitP", code=" ".join(code)),
        words["ticket_reference"].format(reference=reference),
        words["anti_fraud"].format(brand="BitP", website="www.bitp.example"),
        words["connecting"],
    ]
    assert callback.twiml is not None and callback.twiml.find("Dial/Client") is not None
    agent_answers(client, callback)  # the agent speaks only now
    assert (ticket_of(database, waiting.sid).outcome, ticket.callback_number) == (
        "answered",
        "+14155550002",
    )


def test_the_opening_is_said_once_not_again_when_the_agent_does_not_answer(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock
) -> None:
    _, placed = a_callback_asked_and_placed(client, rest, clock)
    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    opening = callback.heard[0]
    assert opening.startswith("Hello, this is BitP support, calling you back")
    assert callback.twiml is not None
    dial = callback.twiml.find("Dial")
    assert dial is not None
    callback._post(dial.attrib["action"], DialCallStatus="no-answer", DialCallDuration="0")
    callback.follow()  # back on hold
    assert callback.heard.count(opening) == 1
    assert "You keep your place in line" in " ".join(callback.heard)


def test_a_callback_asked_for_again_on_the_callback_calls_the_caller_not_our_own_number(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    # On a call we placed, Twilio's From is our number and To the caller's.
    waiting, placed = a_callback_asked_and_placed(client, rest, clock)
    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    assert callback.twiml is not None
    dial = callback.twiml.find("Dial")
    assert dial is not None
    callback._post(dial.attrib["action"], DialCallStatus="no-answer", DialCallDuration="0")
    callback.follow()
    callback.press("2")  # the agent did not answer: call me back again
    assert "1 4 1 5 5 5 5 0 0 0 2" in callback.last_heard()
    assert ticket_of(database, waiting.sid).callback_number == "+14155550002"
    log_in(client, "emma", AGENT_PINS["emma"])  # logged out for not answering; back again
    again = rest.placed_calls()[-1]
    assert again is not placed
    assert (again.data["To"], again.data["From"]) == ("+14155550002", "+18005550199")


def test_a_caller_who_hangs_up_before_the_agent_answers_frees_the_agent(
    client: FlaskClient, rest: TwilioRest
) -> None:
    call = phone(client)
    queue_for_funds(call, "2")
    log_in(client, "emma", AGENT_PINS["emma"])
    call.hang_up()
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "available"


def test_a_move_twilio_refuses_for_a_caller_just_gone_frees_the_agent_once_the_status_comes(
    client: FlaskClient, rest: TwilioRest, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller hangs up just as an agent is handed them, before Twilio's status callback
    arrives: Twilio refuses the move (21220, "Calls that have completed cannot be ... redirected",
    twilio.com/docs/api/errors/21220). The agent is free again once the status comes, for the
    caller behind, and the ticket says the caller abandoned."""
    call = phone(client)
    queue_for_funds(call, "2")
    behind = phone(client, "+14155550199")
    queue_for_funds(behind, "2")
    call.gone()
    with caplog.at_level(logging.ERROR, logger="ivr.telephony"):
        log_in(client, "emma", AGENT_PINS["emma"])
    [refused] = rest.redirects()
    assert refused.call_sid == call.sid
    assert f"could not redirect call {call.sid}" in caplog.text
    assert "Call is not in-progress. Cannot redirect." in caplog.text  # Twilio's 21220

    call.hang_up()
    [_, moved] = rest.redirects()  # emma is handed the caller behind, who is still there
    assert moved.call_sid == behind.sid
    behind.redirected_to(moved.path)
    assert behind.twiml is not None and behind.twiml.find("Dial/Client") is not None
    assert ticket_of(database, call.sid).outcome == "abandoned"


def test_a_caller_whose_move_twilio_fails_is_connected_by_the_next_hold_round(
    client: FlaskClient, rest: TwilioRest
) -> None:
    """Twilio's REST API fails (HTTP 500) when an agent is handed the caller: the caller, still
    holding, is not lost; the next round of hold music ends in the agent's ring."""
    call = phone(client)
    queue_for_funds(call, "2")
    rest.fail(Kind.MOVE)
    log_in(client, "emma", AGENT_PINS["emma"])
    assert len(rest.redirects()) == 1
    call.wait_silently()
    assert call.twiml is not None and call.twiml.find("Dial/Client") is not None


def test_a_caller_who_hangs_up_while_being_connected_abandoned_the_line(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    """Twilio's call statuses (twilio.com/help/faq/voice/what-do-the-call-statuses-mean):
    "After an answered call ends it has a completed status": the caller's own call (answered
    by the line) hangs up while the agent's phone rings, and its status callback says so."""
    call = phone(client)
    queue_for_funds(call, "2")
    clock.advance(50)
    log_in(client, "emma", AGENT_PINS["emma"])  # emma is assigned the caller at once
    call.redirected_to(rest.redirects()[0].path)
    assert call.twiml is not None and call.twiml.find("Dial/Client") is not None  # ringing
    clock.advance(8)
    call.hang_up()
    call.hang_up()  # Twilio's retry, or a replay: nothing more is journaled

    with database.session() as session:
        logged = events_of(session, call.sid)
        histories = line_histories(session, clock.now())
    assert [e.event for e in logged] == ["ENTERQUEUE", "ABANDON"]
    abandon = logged[1]
    assert (abandon.queue, abandon.language, abandon.agent) == ("funds", "en-US", "emma")
    assert (abandon.position, abandon.wait_seconds, abandon.data) == (
        None,
        58,
        {"stage": "connecting"},
    )
    assert ticket_of(database, call.sid).outcome == "abandoned"
    # One abandonment in 58 seconds waited: the wait estimate's abandonment rate counts it.
    assert histories[("funds", "en-US")].abandon_rate == pytest.approx(1 / 58)
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "available"


def test_a_callback_nobody_answers_is_no_abandonment(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    """Twilio's call statuses (twilio.com/help/faq/voice/what-do-the-call-statuses-mean):
    "no-answer: Twilio dialed the number but no one answered before the Timeout value elapsed";
    the status callback of the call we placed says so."""
    waiting, placed = a_callback_asked_and_placed(client, rest, clock)
    clock.advance(30)
    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    status_url = urlsplit(placed.data["StatusCallback"])
    path = f"{status_url.path}?{status_url.query}"
    form = callback.form(CallStatus="no-answer", CallDuration="0")
    assert signed_post(client, path, form, base_url=PUBLIC).status_code == 204

    with database.session() as session:
        logged = [
            (e.event, dict(e.data or {}).get("result")) for e in events_of(session, waiting.sid)
        ]
    assert ("CALLBACKDIAL", "no-answer") in logged
    assert "ABANDON" not in [event for event, _ in logged]
    with client.application.app_context():
        assert services().queue.agent_status("emma") == "available"


def test_the_line_remembers_how_long_agents_take_to_answer_callers_who_hold(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock
) -> None:
    call = phone(client)
    queue_for_funds(call, "2")
    clock.advance(40)
    log_in(client, "emma", AGENT_PINS["emma"])
    call.redirected_to(rest.redirects()[0].path)
    clock.advance(6)
    with client.application.app_context():
        ringing = services().queue.line_load("funds", "en-US")
    assert (ringing.busy_seconds, ringing.connecting_seconds) == ((0.0,), (6.0,))

    agent_answers(client, call)
    clock.advance(30)

    with client.application.app_context():
        talking = services().queue.line_load("funds", "en-US")
    assert talking.recent_connect_seconds == (6,)
    assert (talking.busy_seconds, talking.connecting_seconds) == ((30.0,), ())


def test_a_callback_answered_adds_nothing_to_the_connect_history(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock
) -> None:
    _, placed = a_callback_asked_and_placed(client, rest, clock)
    clock.advance(9)  # the caller's phone rings
    callback = Phone(client, caller="+18005550199", called="+14155550002", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    agent_answers(client, callback)
    with client.application.app_context():
        load = services().queue.line_load("funds", "en-US")
    assert load.recent_connect_seconds == ()
    assert load.recent_wait_seconds == ()  # as before: a callback's wait is not a hold


def test_queue_events_give_the_queues_statistics(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    answered = phone(client, "+14155550001")
    queue_for_funds(answered, "2")
    gone = phone(client, "+14155550002")
    queue_for_funds(gone, "2")
    clock.advance(40)
    log_in(client, "emma", AGENT_PINS["emma"])
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
    line.press(AGENT_PINS["anna"])
    assert "To log in, press 1." in line.heard[-1]
    line.press("1")
    assert "You are logged in and available for calls." in line.heard
    with client.application.app_context():
        assert services().queue.agent_status("anna") == "available"


def line_login(client: FlaskClient, caller: str, extension: str, pin: str) -> Phone:
    """Someone calls the agent line from `caller` and types an extension and a PIN."""
    line = phone(client, caller)
    line._post("/agent/voice")
    line.press(extension)
    line.press(pin)
    return line


def api_login(
    client: FlaskClient, agent: str, pin: str, address: str = "127.0.0.1"
) -> TestResponse:
    """An HTTP client at `address` asks to log `agent` in with `pin`."""
    return client.post(
        f"/api/agents/{agent}/login", auth=(agent, pin), environ_base={"REMOTE_ADDR": address}
    )


def status_of(client: FlaskClient, agent: str) -> str:
    with client.application.app_context():
        return services().queue.agent_status(agent)


def test_a_wrong_pin_on_the_agent_line_logs_nobody_in(client: FlaskClient) -> None:
    line = phone(client)
    line._post("/agent/voice")
    for _ in range(3):
        line.press("104")
        line.press("517395")
    assert "Sorry, that extension and PIN do not match." in line.heard
    assert line.twiml is not None and line.twiml.find("Hangup") is not None
    assert status_of(client, "anna") == "offline"


@pytest.mark.parametrize(
    ("agent", "auth"),
    [
        pytest.param("emma", ("emma", "730153"), id="wrong-pin"),
        pytest.param("emma", None, id="no-credentials"),
        pytest.param("emma", ("anna", AGENT_PINS["anna"]), id="another-agents-credentials"),
        pytest.param("nobody", ("nobody", AGENT_PINS["emma"]), id="an-agent-nobody-is"),
    ],
)
def test_agent_api_refuses_wrong_credentials(
    client: FlaskClient, agent: str, auth: tuple[str, str] | None
) -> None:
    response = client.post(f"/api/agents/{agent}/login", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="ivr agents"'
    assert response.get_json() == {"error": "give the agent id and PIN with HTTP Basic auth"}


def test_agent_api_logs_out_and_reports_the_status(client: FlaskClient) -> None:
    log_in(client, "lucas", AGENT_PINS["lucas"])
    response = client.post("/api/agents/lucas/logout", auth=("lucas", AGENT_PINS["lucas"]))
    assert response.get_json()["status"] == "offline"
    state = client.get("/api/agents/lucas", auth=("lucas", AGENT_PINS["lucas"])).get_json()
    assert state["status"] == "offline" and state["languages"] == ["fr-FR", "en-US"]


def test_a_pin_set_with_the_command_works_at_once_on_the_line_and_the_api(
    client: FlaskClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IVR_AGENT_PINS", str(tmp_path / "agent_pins.json"))  # the app's PIN file
    monkeypatch.setattr("sys.stdin", io.StringIO("604731\n"))
    assert main(["agents", "set-pin", "emma", "--rules", str(RULES), "--pin-stdin"]) == 0
    assert "PIN of emma set" in capsys.readouterr().out

    assert api_login(client, "emma", AGENT_PINS["emma"]).status_code == 401  # the old one is gone
    assert api_login(client, "emma", "604731").status_code == 200  # no restart needed
    line = line_login(client, "+14155550123", "102", "604731")
    assert "To log in, press 1." in line.heard[-1]


def test_a_strangers_wrong_pins_never_keep_the_agent_from_logging_in(client: FlaskClient) -> None:
    for _ in range(6):  # a stranger tries PINs on Anna's extension until throttled
        stranger = line_login(client, "+15550000666", "104", "000000")
    assert prompt_texts("en-US")["agent_pin_throttled"] in stranger.heard
    for _ in range(10):  # and her PINs on the API, from one address
        api_login(client, "anna", "000000", address="203.0.113.66")
    assert api_login(client, "anna", AGENT_PINS["anna"], "203.0.113.66").status_code == 429

    anna = line_login(client, "+4930000000104", "104", AGENT_PINS["anna"])  # her own phone
    anna.press("1")
    assert "You are logged in and available for calls." in anna.heard
    assert api_login(client, "anna", AGENT_PINS["anna"], address="198.51.100.4").status_code == 200
    assert status_of(client, "anna") == "available"


def test_each_wrong_pin_from_one_address_makes_it_wait_longer(
    client: FlaskClient, clock: FrozenClock
) -> None:
    for _ in range(5):  # a few mistakes cost nothing
        assert api_login(client, "emma", "000000").status_code == 401
    for wait in (60, 120, 240):
        refused = api_login(client, "emma", AGENT_PINS["emma"])  # not even checked while it waits
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(wait)
        assert refused.get_json()["error"] == (
            f"too many wrong PINs from this address: try again in {wait} seconds"
        )
        clock.advance(wait - 1)
        assert api_login(client, "emma", "000000").status_code == 429
        clock.advance(1)
        assert api_login(client, "emma", "000000").status_code == 401
    assert status_of(client, "emma") == "offline"

    clock.advance(480)
    assert api_login(client, "emma", AGENT_PINS["emma"]).status_code == 200
    for _ in range(5):  # the right PIN forgave the mistakes
        assert api_login(client, "emma", "000000").status_code == 401


def test_one_address_gets_at_most_33_pin_checks_a_day(
    client: FlaskClient, clock: FrozenClock
) -> None:
    checked, day_ends = 0, clock.now() + timedelta(days=1)
    while clock.now() < day_ends:
        response = api_login(client, "emma", f"{100000 + checked}")
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            assert response.status_code == 401
            checked += 1
    assert checked == most_checks(24 * 3600) == 33


def test_a_throttled_number_hears_so_on_the_agent_line_and_its_pin_is_not_checked(
    client: FlaskClient, clock: FrozenClock
) -> None:
    words = prompt_texts("en-US")
    line = phone(client, "+14155550123")
    line._post("/agent/voice")
    for _ in range(3):
        line.press("104")
        line.press("000000")
    line = line_login(client, "+14155550123", "104", "000000")
    line.press("104")
    line.press("000000")  # the fifth wrong PIN from this number: now it must wait a minute
    line = line_login(client, "+14155550123", "104", AGENT_PINS["anna"])
    assert line.heard[-2:] == [words["agent_pin_throttled"], "Thank you for calling BitP. Goodbye."]
    assert line.twiml is not None and line.twiml.find("Hangup") is not None
    assert status_of(client, "anna") == "offline"

    clock.advance(60)
    line = line_login(client, "+14155550123", "104", AGENT_PINS["anna"])
    assert "To log in, press 1." in line.heard[-1]


def test_while_redis_is_away_no_pin_is_checked(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*args: object) -> float:
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(CallQueue, "start_pin_check", away)
    monkeypatch.setattr(PinStore, "verify", lambda *args: pytest.fail("a PIN was checked"))
    response = api_login(client, "emma", AGENT_PINS["emma"])
    assert response.status_code == 503
    assert "cannot be checked now" in response.get_json()["error"]
    line = line_login(client, "+4930000000104", "104", AGENT_PINS["anna"])
    assert line.heard[-2:] == [
        prompt_texts("en-US")["agent_login_unavailable"],
        "Thank you for calling BitP. Goodbye.",
    ]
    assert line.twiml is not None and line.twiml.find("Hangup") is not None


def test_development_mode_skips_twilios_signature_but_never_the_pin(
    app_factory: Callable[..., Flask],
) -> None:
    client = app_factory(twilio_auth_token=None, dev_mode=True).test_client()
    assert client.post("/api/agents/emma/login").status_code == 401
    assert api_login(client, "emma", "000000").status_code == 401
    line = line_login(client, "+14155550123", "102", "000000")
    assert "Sorry, that extension and PIN do not match." in line.heard
    assert status_of(client, "emma") == "offline"
    assert api_login(client, "emma", AGENT_PINS["emma"]).status_code == 200


ANNAS_PHONE = "+4930000000104"
"""The phone the rules give Anna (extension 104)."""


def throttle_from(client: FlaskClient, number: str) -> None:
    """A stranger whose caller ID says `number` types Anna's extension and wrong PINs until that
    number is throttled (a caller ID costs nothing to spoof)."""
    for _ in range(3):
        line_login(client, number, "104", "000000").press("104")
        line_login(client, number, "104", "000000")


def test_a_spoofed_caller_id_does_not_lock_the_agent_out_the_line_calls_her_phone_back(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock
) -> None:
    words = prompt_texts("en-US")
    throttle_from(client, ANNAS_PHONE)
    anna = line_login(client, ANNAS_PHONE, "104", AGENT_PINS["anna"])
    assert words["agent_callback_coming"] in anna.heard
    assert anna.twiml is not None and anna.twiml.find("Hangup") is not None
    [placed] = rest.placed_calls()
    assert placed.data["To"] == ANNAS_PHONE and placed.data["From"] == anna.called
    # Only Anna's real phone gets that call; its PIN check is counted apart from the caller ID's.
    back = phone(client, anna.called)
    back.sid = new_call_sid()
    back._post(placed.path)
    assert words["agent_callback_enter_pin"].replace("{brand}", "BitP") in back.heard
    back.press(AGENT_PINS["anna"])
    back.press("1")
    assert "You are logged in and available for calls." in back.heard
    assert status_of(client, "anna") == "available"
    # The stranger goes on: no second call rings her phone within five minutes.
    for _ in range(3):
        clock.advance(20)
        line_login(client, ANNAS_PHONE, "104", "000000")
    assert len(rest.placed_calls()) == 1


def test_a_call_placed_to_the_agent_asks_for_her_pin_only_so_often(
    client: FlaskClient, rest: TwilioRest
) -> None:
    throttle_from(client, ANNAS_PHONE)
    line_login(client, ANNAS_PHONE, "104", "000000")
    [placed] = rest.placed_calls()
    back = phone(client, "+18005550199")
    back._post(placed.path)
    for _ in range(2):
        back.press("111111")
        assert "Sorry, that extension and PIN do not match." in back.heard[-2]
    back.press("111111")
    assert back.twiml is not None and back.twiml.find("Hangup") is not None
    assert status_of(client, "anna") == "offline"


def test_a_throttled_number_that_is_not_the_agents_own_gets_no_call(
    client: FlaskClient, rest: TwilioRest
) -> None:
    throttle_from(client, "+14155550123")
    line = line_login(client, "+14155550123", "104", AGENT_PINS["anna"])
    assert prompt_texts("en-US")["agent_pin_throttled"] in line.heard
    assert rest.placed_calls() == []
