"""Whole calls through the webhooks while an incident notice is on: what a caller hears, what each
key does, what the ticket keeps. The incident is started in the rules store, as `ivr incident
start` does, and the app takes it up as every instance does (`LiveRules.sync`)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.db import Database
from ivr.services import services
from ivr.simulator.rest import TwilioRest
from ivr.tickets.events import events_of
from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER, create_admin, login
from tests.conftest import MONDAY_AFTERNOON
from tests.support import (
    PUBLIC,
    REST_ACCOUNT_SID,
    Phone,
    prompt_texts,
    ticket_of,
)

OUTAGE = frozenset({"withdrawal", "deposit"}), datetime(2026, 11, 23, 18, tzinfo=UTC)
"""The issues and the ETA of the incident notice that is on."""


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials (it can place callbacks), an incident notice on."""
    rules = rest_app.extensions["ivr"].rules
    rules.sync()  # the shipped rules, published
    issues, eta = OUTAGE
    incident = rules.store.start_incident(issues, eta, None, "cli:test", MONDAY_AFTERNOON)
    assert incident.id == 1  # numbered from 1 in every test
    rules.sync()
    assert rules.incident() == incident
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
    assert query_of(phone, "Gather")["notice"] == ["1"]

    phone.wait_silently()  # nothing pressed: they keep waiting
    phone.follow()
    assert "in line" in phone.last_heard()
    assert query_of(phone, "Gather")["notice"] == ["1"]  # carried on: not asked again this call

    ticket = ticket_of(database, phone.sid)
    assert (ticket.incident, ticket.issue, ticket.queue) == (1, "withdrawal", "funds")
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
        1,
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


def test_an_incident_started_on_one_instance_is_heard_on_the_other_within_5_s_and_counted(
    app_factory: Callable[..., Flask], rest: TwilioRest, database: Database
) -> None:
    """A paging system starts the notice on instance A; a German caller on instance B hears it in
    German, with the ETA in Berlin's time, and hangs up after it: A's Today page counts both."""
    first, second = (
        app_factory(
            twilio_http_client=rest,
            twilio_account_sid=REST_ACCOUNT_SID,
            public_base_url=PUBLIC,
            rules_reload_seconds=0.5,
        )
        for _ in range(2)
    )
    watchers = [instance.extensions["ivr"].rules for instance in (first, second)]
    for watcher in watchers:
        watcher.sync()
    create_admin(first)
    body = {"issues": ["withdrawal"], "eta": "2026-11-23 18:00 UTC"}
    for watcher in watchers:
        watcher.start()  # each process's own thread, as `ivr serve` runs it
    try:
        response = first.test_client().post("/admin/api/incident", json=body, headers=basic())
        assert response.status_code == 201, response.get_data(as_text=True)
        started = time.monotonic()
        while watchers[1].incident() is None and time.monotonic() - started < 5:
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        for watcher in watchers:
            watcher.stop()
    assert watchers[1].incident() is not None, f"not on the other instance after {took:.1f} s"

    phone = Phone(second.test_client(), caller="+4915112345678", country="DE", base_url=PUBLIC)
    phone.dial()
    phone.press("4")  # Deutsch
    phone.press("2")  # Ein- und Auszahlungen
    phone.press("2")  # Auszahlungen
    notice = hears_the_notice(phone)
    assert "19:00 MEZ" in notice  # 18:00 UTC, said in Berlin's winter time
    assert prompt_texts("de-DE")["incident_notice"].split("{")[0] in notice
    phone.hang_up()

    admin = first.test_client()
    login(admin)
    html = admin.get("/admin/today").get_data(as_text=True)
    assert figure(html, "incident-heard") == "1"
    assert figure(html, "incident-saved") == "100 % (1 of 1)"


def figure(html: str, name: str) -> str:
    found = re.search(rf'<dd class="{name}">(.*?)</dd>', html, re.S)
    assert found is not None, f"no figure {name}"
    return found.group(1).strip()


def basic() -> dict[str, str]:
    token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
