"""The one fake of Twilio's REST API, through the `twilio` library's own client, as the app calls it:
it answers as Twilio does, and the failures tests inject are Twilio's."""

from __future__ import annotations

import threading

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.simulator.rest import Kind, TwilioRest
from tests.support import PUBLIC, REST_ACCOUNT_SID, Calls, new_call_sid

CALLER = "+14155550100"
OUR_NUMBER = "+18005550199"


def client_of(rest: TwilioRest) -> Client:
    return Client(REST_ACCOUNT_SID, "token", http_client=rest)


def test_a_call_in_progress_is_moved_and_one_that_ended_is_refused_with_21220() -> None:
    calls = Calls()
    rest = TwilioRest(calls)
    live, ended = new_call_sid(), new_call_sid()
    calls.in_progress.add(live)
    client_of(rest).calls(live).update(url=PUBLIC + "/voice/hold", method="POST")
    with pytest.raises(TwilioRestException) as refused:
        client_of(rest).calls(ended).update(url=PUBLIC + "/voice/hold", method="POST")
    assert (refused.value.status, refused.value.code) == (400, 21220)
    assert calls.moved == [(live, PUBLIC + "/voice/hold")]
    assert [r.call_sid for r in rest.redirects()] == [live, ended]


def test_a_call_the_app_places_exists_at_once_and_can_be_moved() -> None:
    rest = TwilioRest(Calls())
    placed = client_of(rest).calls.create(to=CALLER, from_=OUR_NUMBER, url=PUBLIC + "/voice/hold")
    assert placed.status == "queued"
    client_of(rest).calls(placed.sid).update(url=PUBLIC + "/voice/moved", method="POST")
    [request] = rest.placed_calls()
    assert request.data["To"] == CALLER and request.path == "/voice/hold"


def test_a_text_is_queued_without_any_calls() -> None:
    rest = TwilioRest()
    message = client_of(rest).messages.create(to=CALLER, from_=OUR_NUMBER, body="ref 1234")
    assert message.status == "queued" and message.sid.startswith("SM")
    assert [r.data["Body"] for r in rest.texts()] == ["ref 1234"]


def test_a_failure_injected_for_one_kind_leaves_the_others_alone() -> None:
    rest = TwilioRest(Calls())
    rest.fail(Kind.TEXT)
    with pytest.raises(TwilioRestException) as failed:
        client_of(rest).messages.create(to=CALLER, from_=OUR_NUMBER, body="lost")
    assert (failed.value.status, failed.value.code) == (500, 20500)
    assert client_of(rest).calls.create(to=CALLER, from_=OUR_NUMBER, url=PUBLIC + "/voice/hold")


def test_a_held_request_is_answered_once_let_go_and_can_be_waited_for() -> None:
    rest = TwilioRest()
    answer = rest.hold(Kind.TEXT)
    sent: list[str] = []

    def send() -> None:
        sent.append(client_of(rest).messages.create(to=CALLER, from_=OUR_NUMBER, body="x").sid)

    thread = threading.Thread(target=send)
    thread.start()
    assert len(rest.wait_for(Kind.TEXT, timeout=10)) == 1  # made, not yet answered
    assert sent == []
    answer.set()
    thread.join(10)
    assert len(sent) == 1
    assert rest.wait_for(Kind.MOVE, timeout=0.05) == []  # none made: nothing to wait for
