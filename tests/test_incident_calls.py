"""Whole calls through the webhooks while an incident notice is on: what a caller hears, what each
key does, what the ticket keeps. The incident is handed to every webhook's flow here by replacing
`ivr.webhooks.current_flow` (the lead's `LiveRules.incident()` will hand it over in the service)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr import webhooks
from ivr.db import Database
from ivr.flow import Flow
from ivr.incidents import Incident
from ivr.services import services
from ivr.switchboard import Call
from ivr.tickets.events import events_of
from tests.support import PUBLIC, Phone, ticket_of

OUTAGE = Incident(
    7, frozenset({"withdrawal", "deposit"}), eta=datetime(2026, 11, 23, 18, tzinfo=UTC)
)


@pytest.fixture
def app(rest_app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app with Twilio REST credentials (it can place callbacks), an incident notice on."""

    live = webhooks.current_flow

    def with_incident(call: Call | None = None) -> Flow:
        flow = live(call)
        flow.incident = OUTAGE
        return flow

    monkeypatch.setattr(webhooks, "current_flow", with_incident)
    return rest_app


def to_withdrawal(client: FlaskClient, caller: str, country: str | None = "US") -> Phone:
    """An English caller who chose withdrawals (funds team open: Monday 10:00 in New York)."""
    phone = Phone(client, caller=caller, country=country, base_url=PUBLIC)
    phone.dial()
    phone.press("2")  # English
    phone.press("2")  # deposits and withdrawals
    phone.press("2")  # withdrawals
    return phone


def hears_the_notice(phone: Phone) -> str:
    assert phone.twiml is not None and phone.twiml.find("Redirect") is not None
    phone.follow()
    return phone.last_heard()


def query_of(phone: Phone, verb: str) -> dict[str, list[str]]:
    assert phone.twiml is not None
    element = phone.twiml.find(verb)
    assert element is not None
    url = element.attrib.get("action") or element.text or ""
    return parse_qs(urlsplit(url).query)


def test_a_withdrawal_caller_hears_the_notice_in_their_zone_and_silence_keeps_them_waiting(
    client: FlaskClient, database: Database
) -> None:
    phone = to_withdrawal(client, "+14155550101")
    notice = hears_the_notice(phone)
    assert "We expect it to be resolved today at 1:00 PM EST." in notice
    assert "official announcements" in notice
    assert "To keep your place in line and be called back" in notice
    assert query_of(phone, "Gather")["notice"] == ["7"]

    phone.wait_silently()  # nothing pressed: they keep waiting
    phone.follow()
    assert "in line" in phone.last_heard()
    assert query_of(phone, "Gather")["notice"] == ["7"]  # carried on: not asked again this call

    ticket = ticket_of(database, phone.sid)
    assert (ticket.incident, ticket.issue, ticket.queue) == (7, "withdrawal", "funds")
    assert ticket.queued_at is not None
    with database.session() as session:
        assert [e.event for e in events_of(session, phone.sid)] == ["ENTERQUEUE"]


def test_the_callback_key_keeps_the_place_and_promises_a_call_back(
    client: FlaskClient, database: Database
) -> None:
    phone = to_withdrawal(client, "+14155550102")
    hears_the_notice(phone)
    phone.press("2")
    phone.follow()  # the first hold round takes the callback key
    assert "You keep your place in line" in phone.last_heard()
    assert phone.twiml is not None and phone.twiml.find("Hangup") is not None
    phone.hang_up()

    ticket = ticket_of(database, phone.sid)
    assert (ticket.incident, ticket.outcome, ticket.callback_number) == (
        7,
        "callback",
        "+14155550102",
    )
    with database.session() as session:
        assert [e.event for e in events_of(session, phone.sid)] == ["ENTERQUEUE", "CALLBACK"]
    with client.application.app_context():
        assert services().queue.line_load("funds", "en-US").waiting == 1  # the place is kept


def test_a_german_caller_from_germany_hears_german_and_central_european_time(
    client: FlaskClient,
) -> None:
    phone = Phone(client, caller="+4930123456", country="DE", base_url=PUBLIC)
    phone.dial()
    phone.press("4")  # Deutsch
    phone.press("2")
    phone.press("1")  # deposits
    assert "heute um 19:00 MEZ behoben" in hears_the_notice(phone)


def test_a_login_caller_queues_without_the_notice(client: FlaskClient, database: Database) -> None:
    phone = Phone(client, caller="+14155550103", country="US", base_url=PUBLIC)
    phone.dial()
    phone.press("2")
    phone.press("1")  # account
    phone.press("1")  # login
    phone.follow()
    assert "in line" in phone.last_heard()
    assert ticket_of(database, phone.sid).incident is None
