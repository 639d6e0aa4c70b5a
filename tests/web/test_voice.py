"""The webhooks as Twilio sees them: signed form posts in, TwiML out, tickets and queue updated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import Services, services
from ivr.tickets.models import Ticket
from tests.faults import free_port
from tests.support import (
    AUTH_TOKEN,
    Phone,
    new_call_sid,
    parse,
    reference_in,
    sealed,
    signed_post,
    spoken,
    ticket_of,
)


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["ivr"]
    return found


def ticket_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def test_incoming_call_gets_the_language_menu_and_a_ticket(
    client: FlaskClient, database: Database
) -> None:
    phone = Phone(client)
    twiml = phone.dial()
    gather = twiml.find("Gather")
    assert gather is not None
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["finishOnKey"] == ""
    assert gather.attrib["action"].startswith("/voice/input?step=language")
    says = gather.findall("Say")
    assert says[0].attrib == {"voice": "Polly.Joanna", "language": "en-US"}
    chinese = [s for s in says if s.attrib["language"] == "cmn-CN"]
    assert chinese and chinese[0].attrib["voice"] == "Polly.Zhiyu"
    # Silence falls through the Gather to a Redirect back to the same step.
    redirect = twiml.find("Redirect")
    assert redirect is not None and redirect.text == gather.attrib["action"]
    ticket = ticket_of(database, phone.sid)
    assert ticket.caller == "+14155550100" and len(ticket.reference) == 7


def test_a_retried_incoming_webhook_keeps_one_ticket(
    client: FlaskClient, database: Database
) -> None:
    phone = Phone(client)
    phone.dial()
    phone.dial()
    assert ticket_count(database) == 1


def test_a_retried_incoming_webhook_keeps_the_reference_it_was_given_first(
    app_factory: Callable[..., Flask], database: Database
) -> None:
    # Twilio (Webhook connection overrides) lets a number ask for "HTTP callback connection
    # retries on failures/timeouts"; a retry may reach another instance. Every try hands out the
    # same reference, and the ticket keeps it.
    first_instance, second_instance = app_factory().test_client(), app_factory().test_client()
    phone = Phone(first_instance)
    heard = reference_in(phone.dial())
    phone.client = second_instance
    assert reference_in(phone.dial()) == heard
    phone.client = first_instance
    assert reference_in(phone.dial()) == heard
    assert reference_in(phone.press("2")) == heard
    assert ticket_of(database, phone.sid).reference == heard
    other = Phone(second_instance)
    assert reference_in(other.dial()) not in (None, heard)


def test_a_retried_incoming_webhook_keeps_its_reference_while_redis_is_away(
    app: Flask, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def redis_away(*args: object, **kwargs: object) -> str:
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(services_of(app).queue, "claim_reference", redis_away)
    phone = Phone(app.test_client())
    heard = reference_in(phone.dial())
    assert heard is not None and reference_in(phone.dial()) == heard
    assert reference_in(phone.press("2")) == heard
    assert ticket_of(database, phone.sid).reference == heard


def test_a_retried_keypress_is_recorded_once(client: FlaskClient, database: Database) -> None:
    phone = Phone(client)
    phone.dial()
    action = phone._gather().attrib["action"]
    headers = {"I-Twilio-Idempotency-Token": "retry-token-1"}
    for _ in range(2):
        signed_post(client, action, phone.form(Digits="2"), headers=headers)
    assert ticket_of(database, phone.sid).menu_path == ["language:2"]


@pytest.mark.parametrize(
    "signature",
    ["", "forged", "bm90IGEgcmVhbCBzaWduYXR1cmU="],
)
def test_requests_without_a_valid_signature_are_refused_and_change_nothing(
    client: FlaskClient, database: Database, signature: str
) -> None:
    response = client.post(
        "/voice/incoming",
        data={"CallSid": new_call_sid(), "From": "+14155550100"},
        headers={"X-Twilio-Signature": signature} if signature else {},
    )
    assert response.status_code == 403
    assert ticket_count(database) == 0


def test_a_signature_for_other_parameters_is_refused(client: FlaskClient) -> None:
    from twilio.request_validator import RequestValidator

    form = {"CallSid": new_call_sid(), "From": "+14155550100"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "http://localhost/voice/incoming", {**form, "From": "+10000000000"}
    )
    response = client.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_signatures_are_checked_against_the_public_url_behind_a_proxy(client: FlaskClient) -> None:
    form = {"CallSid": new_call_sid(), "From": "+14155550100"}
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}
    ok = signed_post(
        client, "/voice/incoming", form, base_url="https://ivr.example.com", headers=proxy
    )
    assert ok.status_code == 200
    wrong = signed_post(client, "/voice/incoming", form, headers=proxy)  # signed for localhost
    assert wrong.status_code == 403


def test_a_configured_public_base_url_wins(app_factory: object) -> None:
    app: Flask = app_factory(public_base_url="https://support.example.com/ivr")  # type: ignore[operator]
    client = app.test_client()
    form = {"CallSid": new_call_sid(), "From": "+14155550100"}
    # Twilio requested https://support.example.com/ivr/voice/incoming; the proxy strips /ivr.
    good = signed_post(client, "/voice/incoming", form, base_url="https://support.example.com/ivr")
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({}, 400),
        ({"CallSid": ""}, 400),
        ({"CallSid": "CA' OR 1=1 --"}, 400),
        ({"CallSid": "CA" + "f" * 100}, 400),
    ],
)
def test_malformed_call_sid_is_a_clear_400(
    client: FlaskClient, form: dict[str, str], status: int
) -> None:
    response = signed_post(client, "/voice/incoming", form)
    assert response.status_code == status
    assert "CallSid" in response.get_data(as_text=True)


def test_a_huge_body_is_refused_with_413(client: FlaskClient) -> None:
    form = {"CallSid": new_call_sid(), "Padding": "x" * 200_000}
    response = signed_post(client, "/voice/incoming", form)
    assert response.status_code == 413


@pytest.mark.parametrize("digits", ["abc", "12", "٣", "%00"])
def test_digits_that_are_not_a_key_are_answered_and_the_menu_repeats(
    client: FlaskClient, digits: str
) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press("2")
    twiml = phone.press(digits)
    assert spoken(twiml)[0] == "Sorry, that is not an option."
    gather = twiml.find("Gather")
    assert gather is not None and "tries=1" in gather.attrib["action"]


def test_unknown_call_sid_mid_call_still_gets_a_ticket(
    client: FlaskClient, database: Database
) -> None:
    sid = new_call_sid()
    response = signed_post(
        client,
        sealed(client, "/voice/input?step=language&tries=0", sid),
        {"CallSid": sid, "From": "+33612345678", "Digits": "3"},
    )
    assert "tapez 1" in " ".join(spoken(parse(response)))
    assert ticket_of(database, sid).language == "fr-FR"


def test_a_garbled_state_in_the_url_restarts_at_the_language_menu(client: FlaskClient) -> None:
    response = signed_post(
        client, "/voice/input?step=menu&menu=%3Cx%3E", {"CallSid": new_call_sid(), "Digits": "5"}
    )
    gather = parse(response).find("Gather")
    assert gather is not None and "step=language" in gather.attrib["action"]


def test_the_call_goes_on_when_the_database_is_down_and_its_ticket_is_written_later(
    client: FlaskClient, app: Flask, database: Database
) -> None:
    with app.app_context():
        writer = services().writer
    writer.db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    phone = Phone(client)
    phone.dial()
    twiml = phone.press("2")
    assert "For account and login, press 1." in spoken(twiml)
    assert ticket_count(database) == 0  # nothing could be written ...

    writer.db = database
    phone.press("1")  # ... until the database answers: the next write brings all of it
    ticket = ticket_of(database, phone.sid)
    assert ticket.menu_path == ["language:2", "main:1"]
    assert ticket.reference == reference_in(phone.twiml)


def test_every_url_carries_the_reference_the_caller_was_given_at_once(
    client: FlaskClient, database: Database
) -> None:
    phone = Phone(client)
    first = phone.dial()
    reference = reference_in(first)
    assert reference is not None and len(reference) == 7
    phone.press("2")
    assert reference_in(phone.twiml) == reference
    assert ticket_of(database, phone.sid).reference == reference


def test_an_unexpected_error_apologises_and_queues_for_a_person(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr import flow

    def explode(*args: object, **kwargs: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(flow.Flow, "on_input", explode)
    phone = Phone(client)
    phone.dial()
    twiml = phone.press("2")
    assert spoken(twiml)[0] == "We are sorry, something went wrong on our side."
    redirect = twiml.find("Redirect")
    assert redirect is not None and "step=hold" in (redirect.text or "")


def test_hanging_up_in_the_queue_frees_the_place_and_closes_the_ticket(
    client: FlaskClient, app: Flask, database: Database, clock: FrozenClock
) -> None:
    first, second, third = Phone(client), Phone(client), Phone(client)
    for phone in (first, second, third):
        phone.dial()
        phone.press("2")
        phone.press("0")
        phone.follow()  # please hold -> first hold round
    assert "You are number 3 in line." in third.heard
    clock.advance(90)
    second.hang_up()
    third.follow()  # next hold round
    assert "You are number 2 in line." in third.last_heard()
    ticket = ticket_of(database, second.sid)
    assert ticket.outcome == "abandoned"
    assert ticket.wait_seconds == 90
    assert ticket.ended_at == datetime(2026, 11, 23, 15, 1, 30, tzinfo=UTC)
    with app.app_context():
        assert services().queue.place(second.sid) is None


def test_status_callback_for_an_unknown_call_still_leaves_a_ticket(
    client: FlaskClient, database: Database
) -> None:
    sid = new_call_sid()
    response = signed_post(
        client, "/voice/status", {"CallSid": sid, "CallStatus": "no-answer", "From": "+4930123"}
    )
    assert response.status_code == 204
    ticket = ticket_of(database, sid)
    assert ticket.call_status == "no-answer" and ticket.ended_at is not None


def test_a_caller_lost_from_redis_rejoins_the_queue_on_the_next_hold_round(
    client: FlaskClient, app: Flask
) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press("2")
    phone.press("0")
    phone.follow()
    with app.app_context():
        services().queue.leave(phone.sid)  # as if Redis had been flushed
    phone.follow()
    with app.app_context():
        place = services().queue.place(phone.sid)
    assert place is not None and place.queue == "general"


def test_recorded_prompt_replaces_the_spoken_text(app_factory: object, tmp_path: object) -> None:
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    prompts = Path(str(tmp_path)) / "voice_prompts"
    shutil.copytree(root / "voice_prompts", prompts)
    (prompts / "audio" / "en-US").mkdir(parents=True)
    (prompts / "audio" / "en-US" / "greeting.mp3").write_bytes(b"ID3fake")
    app: Flask = app_factory(voice_prompts=prompts)  # type: ignore[operator]
    client = app.test_client()
    twiml = Phone(client).dial()
    play = twiml.find("Gather/Play")
    assert play is not None and play.text == "/voice/audio/en-US/greeting.mp3"
    assert client.get("/voice/audio/en-US/greeting.mp3").data == b"ID3fake"
    assert client.get("/voice/audio/en-US/..%2Fsecret.mp3").status_code == 404


def test_healthz_reports_database_redis_and_rules(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert body["rules"]["state"] == "ok" and body["rules"]["problems"] == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("+1415\u2028555", "+1415\u2028555"),  # a line separator: no line break in the journal
        ("+1415\u0085555", "+1415\u0085555"),  # a next-line character
        ("+1415\x00555", "+1415\ufffd555"),  # NUL: PostgreSQL holds no such character
        ("+1415\r\n555", "+1415\r\n555"),
    ],
)
def test_any_caller_id_twilio_could_send_leaves_a_complete_ticket(
    client: FlaskClient, database: Database, sent: str, kept: str
) -> None:
    phone = Phone(client, caller=sent, called=sent)
    phone.dial()
    phone.press("2")
    ticket = ticket_of(database, phone.sid)
    assert (ticket.caller, ticket.called) == (kept, kept)
    assert ticket.menu_path == ["language:2"] and ticket.language == "en-US"
