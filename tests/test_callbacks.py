"""After-hours callbacks: a caller who asked while the team was closed is called back once it opens,
in the order asked, tried again when unanswered, given up after the configured tries; several
processes running the same round place each call once.

Twilio facts these tests model (support.twilio.com, "What are the Possible Call Statuses, and What
do They Mean?"): "no-answer: Twilio dialed the number but no one answered before the timeout
parameter value elapsed", and it is the final status the StatusCallback of the placed call carries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr import background
from ivr.callbacks import schedule_due
from ivr.cli import main
from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import Services
from ivr.simulator.rest import Kind, RestRequest, TwilioRest
from ivr.switchboard import Call
from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.events import events_of
from ivr.tickets.listing import timeline
from ivr.tickets.records import CallEnd
from tests.conftest import AGENT_PINS
from tests.support import (
    PUBLIC,
    Phone,
    journal_record,
    new_call_sid,
    signed_post,
    ticket_of,
    twilio_rest,
    write_records,
    write_rules,
)

OUR_NUMBER = "+18005550199"
# The americas team (funds, en-US) opens mon-fri 08:00-20:00 in New York (UTC-5 in November).
MONDAY_23_NY = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
TUESDAY_OPENS = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
TUESDAY_CLOSES = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
WEDNESDAY_OPENS = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("agent_pins")


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials, so that it can place calls."""
    return rest_app


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["ivr"]
    return found


def asked_after_hours(database: Database, number: str, asked: datetime) -> str:
    """A caller chose withdrawals in English while the team was closed, asked to be called back
    and hung up; returns the call's SID."""
    sid = new_call_sid()
    write_records(
        database,
        journal_record(sid, asked - timedelta(seconds=40), caller=number, called=OUR_NUMBER),
        journal_record(
            sid,
            asked - timedelta(seconds=20),
            language="en-US",
            queue="funds",
            team="americas",
            priority=30,
            outcome=Outcome.CLOSED_HOURS,
        ),
        journal_record(sid, asked, outcome=Outcome.CALLBACK, callback_number=number),
        journal_record(sid, asked + timedelta(seconds=5), end=CallEnd("completed", 70)),
    )
    return sid


def agent_free(s: Services, agent: str = "emma") -> None:
    rules = s.rules.get().rules
    s.switchboard.agent_status(agent, list(rules.lines_of(rules.agents[agent])), login=True)


def round_(s: Services) -> int:
    """One callback round, and the writer bringing what it journaled to the database."""
    put = schedule_due(s)
    s.writer.drain()
    return put


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def not_answered(client: FlaskClient, placed: RestRequest, status: str = "no-answer") -> None:
    """The placed call's final status callback: nobody picked up."""
    leg = Phone(client, caller=OUR_NUMBER, called=placed.data["To"], base_url=PUBLIC)
    form = leg.form(CallStatus=status, CallDuration="0", Direction="outbound-api")
    response = signed_post(client, path_of(placed.data["StatusCallback"]), form, base_url=PUBLIC)
    assert response.status_code in (200, 204), response.get_data(as_text=True)


def called(rest: TwilioRest) -> list[str]:
    return [r.data["To"] for r in rest.placed_calls()]


def story(database: Database, sid: str) -> list[str]:
    with database.session() as session:
        return [entry.text for entry in timeline(session, ticket_of(database, sid))]


# --- a whole call, through the webhooks -----------------------------------------------------------


def test_a_request_at_23_is_not_called_at_23_30_and_is_called_once_the_team_opens_and_an_agent_is_free(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    clock.set(MONDAY_23_NY)
    caller = Phone(client, caller="+14155550123", called=OUR_NUMBER, base_url=PUBLIC)
    caller.dial()
    caller.press("2")  # English
    caller.press("2")  # deposits and withdrawals
    caller.press("2")  # a withdrawal: the team is closed
    assert "closed" in caller.last_heard().lower()
    caller.press("2")  # call me back
    assert "We will call you back at 1 4 1 5 5 5 5 0 1 2 3" in caller.last_heard()
    caller.hang_up()
    ticket = ticket_of(database, caller.sid)
    assert (ticket.outcome, ticket.callback_number) == ("callback", "+14155550123")

    clock.set(MONDAY_23_NY + timedelta(minutes=30))
    agent_free(s, "li_wei")  # someone is even logged in: still, the team is closed
    assert round_(s) == 0 and rest.placed_calls() == []
    s.switchboard.agent_status("li_wei", [], login=False)

    clock.set(TUESDAY_OPENS + timedelta(seconds=30))
    assert round_(s) == 1  # in line for an agent: nobody is logged in yet
    assert rest.placed_calls() == []
    response = client.post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert response.get_json()["status"] == "busy"  # handed the callback at once
    [placed] = rest.placed_calls()
    assert (placed.data["To"], placed.data["From"]) == ("+14155550123", OUR_NUMBER)

    callback = Phone(client, caller=OUR_NUMBER, called="+14155550123", base_url=PUBLIC)
    callback.redirected_to(placed.path)  # the caller picks up: put through to emma, who answers
    assert callback.twiml is not None
    target = callback.twiml.find("Dial/Client")
    assert target is not None and target.text == "emma"
    form = {"CallSid": new_call_sid(), "ParentCallSid": callback.sid, "From": OUR_NUMBER}
    assert signed_post(client, target.attrib["url"], form, base_url=PUBLIC).status_code == 200
    assert ticket_of(database, caller.sid).outcome == "answered"
    # The night it waited is on the ticket, but not in the wait callers on hold are told about.
    assert s.queue.line_load("funds", "en-US").recent_wait_seconds == ()

    clock.set(TUESDAY_OPENS + timedelta(hours=2))
    assert round_(s) == 0 and len(rest.placed_calls()) == 1  # answered: never called again
    told = story(database, caller.sid)
    assert "CALLBACKQUEUED, funds (en-US), callback try 1 of 3: waiting for an agent" in told
    assert any(t.startswith("CALLBACKDIAL") and "+1 *** *** 123" in t for t in told)


def test_the_callback_the_next_morning_opens_with_the_code_told_the_night_before(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    clock.set(MONDAY_23_NY)
    caller = Phone(client, caller="+4915112345678", called=OUR_NUMBER, base_url=PUBLIC)
    caller.dial()
    caller.press("4")  # Deutsch
    caller.press("2")  # deposits and withdrawals
    caller.press("2")  # a withdrawal: the European team is closed at 5:00 in Berlin
    caller.press("2")  # call me back
    [told] = [h for h in caller.heard if h.startswith("Ihr Rückrufcode lautet ")]
    code = told.split(".")[0].removeprefix("Ihr Rückrufcode lautet ").replace(" ", "")
    caller.hang_up()
    assert ticket_of(database, caller.sid).callback_code == code  # kept on the ticket overnight

    clock.set(datetime(2026, 11, 24, 7, 30, tzinfo=UTC))  # 8:30 in Berlin: the team is open
    assert round_(s) == 1
    agent_free(s, "anna")
    [placed] = rest.placed_calls()
    callback = Phone(client, caller=OUR_NUMBER, called="+4915112345678", base_url=PUBLIC)
    callback.redirected_to(placed.path)
    assert callback.heard[0] == (
        "Guten Tag, hier ist der Kundenservice von BitP. Wir rufen Sie zurück, wie Sie es "
        f"gewünscht haben. Ihr Rückrufcode lautet {' '.join(code)}."
    )
    assert callback.heard[2].startswith("Zu Ihrer Sicherheit: Mitarbeiter von BitP werden Sie")
    assert callback.twiml is not None and callback.twiml.find("Dial/Number") is not None


# --- order, retries, giving up --------------------------------------------------------------------


def test_requests_are_called_back_in_the_order_they_were_asked(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    later = asked_after_hours(database, "+14155550002", MONDAY_23_NY)
    earlier = asked_after_hours(database, "+14155550001", MONDAY_23_NY - timedelta(hours=2))
    clock.set(TUESDAY_OPENS + timedelta(minutes=1))
    agent_free(s)

    assert round_(s) == 2
    assert called(rest) == ["+14155550001"]  # one agent: the earlier request first
    clock.advance(45)
    not_answered(client, rest.placed_calls()[0])  # emma is free again: the next in line
    assert called(rest) == ["+14155550001", "+14155550002"]
    assert ticket_of(database, earlier).outcome == ticket_of(database, later).outcome == "callback"


def test_an_unanswered_callback_is_tried_again_after_the_retry_minutes_and_only_in_hours(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    clock.set(TUESDAY_CLOSES - timedelta(minutes=20))  # 19:40 in New York
    agent_free(s)
    assert round_(s) == 1 and len(rest.placed_calls()) == 1
    clock.advance(40)
    not_answered(client, rest.placed_calls()[-1])

    clock.advance(14 * 60)  # 14 minutes after the try ended
    assert round_(s) == 0 and len(rest.placed_calls()) == 1
    clock.advance(60)  # 15 minutes: tried again
    assert round_(s) == 1 and len(rest.placed_calls()) == 2
    clock.advance(40)
    not_answered(client, rest.placed_calls()[-1], status="busy")

    clock.set(TUESDAY_CLOSES + timedelta(minutes=20))  # 20:20: due, but closed
    assert round_(s) == 0 and len(rest.placed_calls()) == 2
    clock.set(WEDNESDAY_OPENS + timedelta(seconds=30))
    agent_free(s)
    assert round_(s) == 1 and called(rest) == ["+14155550001"] * 3


def test_after_the_configured_tries_it_stops_and_the_ticket_says_so(
    client: FlaskClient,
    rest: TwilioRest,
    database: Database,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = services_of(client.application)
    sid = asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    clock.set(TUESDAY_OPENS)
    for _ in range(3):
        agent_free(s)
        assert round_(s) == 1
        clock.advance(30)
        not_answered(client, rest.placed_calls()[-1])
        clock.advance(15 * 60)
    assert len(rest.placed_calls()) == 3

    assert round_(s) == 0
    clock.advance(3600)
    assert round_(s) == 0 and len(rest.placed_calls()) == 3
    with database.session() as session:
        gave_up = [e for e in events_of(session, sid) if e.event == QueueEvent.CALLBACKGIVEUP]
    assert len(gave_up) == 1  # said once, not every round

    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    assert main(["tickets", "show", ticket_of(database, sid).reference]) == 0
    out = capsys.readouterr().out
    assert "outcome:          callback" in out.splitlines()
    assert out.count("callback try ") == 3
    assert "callback given up after 3 unanswered tries" in out


def test_a_request_older_than_the_keep_window_is_given_up_uncalled(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    sid = asked_after_hours(database, "+14155550001", MONDAY_23_NY - timedelta(days=3))
    clock.set(TUESDAY_OPENS)
    agent_free(s)
    assert round_(s) == 0 and rest.placed_calls() == []
    assert any("given up: not reached in time (0 tries)" in t for t in story(database, sid))


# --- several processes, and Redis away ------------------------------------------------------------


def test_two_processes_running_the_round_at_the_same_moment_place_one_call(
    app_factory: Callable[..., Flask],
    rest: TwilioRest,
    database: Database,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    other_rest = twilio_rest()
    credentials = {"twilio_account_sid": "AC" + "1" * 32, "public_base_url": PUBLIC}
    one = services_of(app_factory(twilio_http_client=rest, **credentials))
    two = services_of(
        app_factory(twilio_http_client=other_rest, spool_dir=tmp_path / "two", **credentials)
    )
    owner = asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    clock.set(TUESDAY_OPENS + timedelta(minutes=1))
    agent_free(one)

    assert schedule_due(one) == 1 and len(rest.placed_calls()) == 1
    # The call went unanswered before any writer brought the try to the database: the other
    # process still sees a request without tries, and must not take try 1 again.
    leg = Call(new_call_sid(), OUR_NUMBER, "+14155550001", token="t-1", ticket_sid=owner)
    one.switchboard.end(leg, "no-answer", 0)
    assert schedule_due(two) == 0 and other_rest.placed_calls() == []

    one.writer.drain()
    two.writer.drain()
    clock.advance(16 * 60)
    assert schedule_due(two) + schedule_due(one) == 1  # try 2, by one of them
    assert len(rest.placed_calls()) + len(other_rest.placed_calls()) == 2


def test_a_redis_error_skips_the_round_and_the_next_round_calls(
    client: FlaskClient,
    rest: TwilioRest,
    database: Database,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = services_of(client.application)
    asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    asked_after_hours(database, "+14155550002", MONDAY_23_NY)
    clock.set(TUESDAY_OPENS)
    agent_free(s)

    def away(*args: object, **kwargs: object) -> bool:
        raise RedisConnectionError("Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(s.queue, "claim_callback_step", away)
        with caplog.at_level(logging.WARNING, logger="ivr.callbacks"):
            assert schedule_due(s) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "ivr.callbacks"] == [
        "after-hours callbacks: Redis unavailable, round skipped (Connection refused)"
    ]
    assert rest.placed_calls() == []
    assert round_(s) == 2 and called(rest) == ["+14155550001"]


def test_a_place_nobody_reached_before_closing_is_not_called_after_closing(
    client: FlaskClient, rest: TwilioRest, database: Database, clock: FrozenClock
) -> None:
    s = services_of(client.application)
    sid = asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    clock.set(TUESDAY_CLOSES - timedelta(minutes=10))
    assert round_(s) == 1  # in line, but no agent is logged in

    clock.set(TUESDAY_CLOSES + timedelta(minutes=1))
    s.queue.sweep()
    agent_free(s)  # an agent logs in after closing: the place is gone
    assert round_(s) == 0 and rest.placed_calls() == []
    clock.set(WEDNESDAY_OPENS + timedelta(minutes=1))
    assert round_(s) == 1 and called(rest) == ["+14155550001"]  # still try 1 of 3
    assert (
        story(database, sid).count(
            "CALLBACKQUEUED, funds (en-US), callback try 1 of 3: waiting for an agent"
        )
        == 2
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "callback_tries: 3",
            "callback_tries: 11",
            "callback_tries: Input should be less than or equal to 10",
        ),
        (
            "callback_retry_minutes: 15",
            "callback_retry_minutes: 0",
            "callback_retry_minutes: Input should be greater than or equal to 1",
        ),
    ],
)
def test_callback_settings_out_of_range_are_refused_by_ivr_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, problem: str
) -> None:
    rules, _ = write_rules(tmp_path, (f"  {old}\n", f"  {new}\n"))
    assert main(["check", str(rules)]) != 0
    assert f"after_hours.{problem}" in capsys.readouterr().out


def test_the_background_threads_of_every_process_run_the_round(
    client: FlaskClient,
    rest: TwilioRest,
    database: Database,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = services_of(client.application)
    asked_after_hours(database, "+14155550001", MONDAY_23_NY)
    clock.set(TUESDAY_OPENS)
    agent_free(s)
    monkeypatch.setattr(background, "CALLBACKS_EVERY_SECONDS", 0.05)
    threads = background.Background(s, writer=False)
    threads.ensure_started()
    try:
        rest.wait_for(Kind.PLACE, timeout=10)
    finally:
        threads.stop()
    assert called(rest) == ["+14155550001"]
