"""Whole calls, from `/voice/incoming` to the queue, a self-service answer and the after-hours branch,
in each of the four languages, through the signed webhooks, with the tickets they leave behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import services
from ivr.tickets.listing import TicketFilter, find_tickets, timeline
from tests.support import Phone, prompt_texts, ticket_of

SATURDAY_NOON_UTC = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# language code, its key in the language menu, the voice Twilio should use, a caller from that country
LANGUAGES = [
    ("zh-CN", "1", "cmn-CN", "+8613800138000"),
    ("en-US", "2", "en-US", "+14155550100"),
    ("fr-FR", "3", "fr-FR", "+33612345678"),
    ("de-DE", "4", "de-DE", "+4915112345678"),
]


def says_in(phone: Phone, say_language: str) -> list[str]:
    assert phone.twiml is not None
    return [s.text or "" for s in phone.twiml.iter("Say") if s.attrib["language"] == say_language]


@pytest.mark.parametrize(("language", "key", "say_language", "number"), LANGUAGES)
def test_security_emergency_call_reaches_the_queue_and_hears_its_position(
    client: FlaskClient,
    app: Flask,
    database: Database,
    clock: FrozenClock,
    language: str,
    key: str,
    say_language: str,
    number: str,
) -> None:
    texts = prompt_texts(language)
    ahead = Phone(client, caller="+12025550123")  # someone already waiting for the security desk
    ahead.dial()
    ahead.press("2")
    ahead.press("3")
    ahead.press("3")  # "other security questions": priority 90
    ahead.follow()

    phone = Phone(client, caller=number)
    phone.dial()
    phone.press(key)
    assert texts["main_intro"] in says_in(phone, say_language)
    phone.press("3")  # security emergency
    assert texts["security_intro"] in says_in(phone, say_language)
    phone.press("2")  # a withdrawal I did not make: priority 100
    assert says_in(phone, say_language) == [texts["please_hold"]]
    phone.follow()
    # Nobody is logged in for the security desk yet: the caller is told, and still hears their place.
    assert says_in(phone, say_language)[:2] == [texts["no_agents"], texts["queue_next"]]
    if language == "en-US":
        # Higher priority goes ahead of the caller who was already waiting in English, who is
        # not told a place further back (position_only_down) but why they have not moved.
        ahead.wait_silently()
        assert texts["queue_urgent_first"] in says_in(ahead, "en-US")
        assert texts["queue_position"].format(position=2) not in says_in(ahead, "en-US")

    clock.advance(45)
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert ticket.language == language
    assert ticket.menu_path == [f"language:{key}", "main:3", "security:2"]
    assert ticket.issue == "suspicious_withdrawal"
    assert (ticket.queue, ticket.team, ticket.priority) == ("security", "security_desk", 100)
    assert ticket.outcome == "abandoned" and ticket.wait_seconds == 45
    with app.app_context():
        assert services().queue.place(phone.sid) is None


@pytest.mark.parametrize(("language", "key", "say_language", "number"), LANGUAGES)
def test_self_service_answer_then_back_to_the_menu(
    client: FlaskClient,
    database: Database,
    language: str,
    key: str,
    say_language: str,
    number: str,
) -> None:
    texts = prompt_texts(language)
    phone = Phone(client, caller=number)
    phone.dial()
    phone.press(key)
    phone.press("6")  # quick answers
    phone.press("2")  # email support
    spoken = says_in(phone, say_language)
    assert spoken[0] == texts["answer_email"].format(email="support@bitp.example")
    phone.press("#")  # back to the main menu
    assert texts["main_intro"] in says_in(phone, say_language)
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert ticket.outcome == "self_served" and ticket.issue == "faq_email"
    assert ticket.menu_path == [f"language:{key}", "main:6", "self_service:2"]


@pytest.mark.parametrize(("language", "key", "say_language", "number"), LANGUAGES)
def test_after_hours_voicemail_is_kept_with_the_ticket_number_read_back(
    client: FlaskClient,
    database: Database,
    clock: FrozenClock,
    language: str,
    key: str,
    say_language: str,
    number: str,
) -> None:
    clock.set(SATURDAY_NOON_UTC)
    texts = prompt_texts(language)
    phone = Phone(client, caller=number)
    phone.dial()
    phone.press(key)
    phone.press("2")  # deposits and withdrawals
    phone.press("2")  # a withdrawal
    closed = says_in(phone, say_language)
    assert closed[0].startswith(texts["team_closed"].split("{")[0])
    assert closed[1:] == [texts["offer_voicemail"], texts["offer_callback"], texts["offer_back"]]
    phone.press("1")
    assert says_in(phone, say_language)[0] == texts["voicemail_instructions"]
    phone.record("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", 23)
    ticket = ticket_of(database, phone.sid)
    spoken_reference = " ".join(ticket.reference)
    assert texts["ticket_reference"].format(reference=spoken_reference) in says_in(
        phone, say_language
    )
    assert phone.twiml is not None and phone.twiml.find("Hangup") is not None
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert ticket.outcome == "voicemail"
    assert ticket.recording_duration == 23 and ticket.recording_url is not None
    assert ticket.issue == "withdrawal" and ticket.queue == "funds"


def test_after_hours_callback_request_keeps_the_callers_number(
    client: FlaskClient, database: Database, clock: FrozenClock
) -> None:
    clock.set(SATURDAY_NOON_UTC)
    phone = Phone(client, caller="+4915112345678")
    phone.dial()
    phone.press("4")
    phone.press("1")
    phone.press("1")
    phone.press("2")
    assert any("4 9 1 5 1 1 2 3 4 5 6 7 8" in text for text in phone.heard)
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert ticket.outcome == "callback" and ticket.callback_number == "+4915112345678"


def test_a_caller_who_never_presses_anything_is_not_dropped(
    client: FlaskClient, database: Database
) -> None:
    phone = Phone(client, caller="+99955501")  # no country language known
    phone.dial()
    for _ in range(3):
        phone.wait_silently()  # language menu: 3 silences, then the default language
    for _ in range(3):
        phone.wait_silently()  # main menu: 3 silences, then the fallback queue
    assert "Let us find someone who can help you." in phone.heard
    phone.follow()
    assert "You are next in line." in phone.last_heard()
    ticket = ticket_of(database, phone.sid)
    assert ticket.queue == "general" and ticket.outcome == "queued"


def test_a_caller_silent_after_hours_is_let_go_and_the_ticket_says_why(
    client: FlaskClient, database: Database, clock: FrozenClock
) -> None:
    # An answering machine picks up where a person pressed 2, 2, 2: at the weekend the team is
    # closed, and the silence went round the offer and an empty voicemail until Twilio's limit.
    clock.set(SATURDAY_NOON_UTC)
    phone = Phone(client)
    phone.dial()
    for key in ("2", "2", "2"):
        phone.press(key)
    rounds = phone.say_nothing(100, lambda: clock.advance(30))
    # silence_limit is 300 s: let go at the first silence once it has passed.
    assert rounds == 10
    assert prompt_texts("en-US")["silence_goodbye"] in phone.last_heard()
    assert phone.twiml is not None and phone.twiml.find("Hangup") is not None
    phone.hang_up(duration=380)
    ticket = ticket_of(database, phone.sid)
    assert (ticket.outcome, ticket.issue, ticket.call_status) == (
        "no_input",
        "withdrawal",
        "completed",
    )
    with database.session() as session:
        found = find_tickets(session, TicketFilter.from_args({"outcome": "no_input"}))
        assert [t.reference for t in found] == [ticket.reference]
        story = [f"{e.kind}: {e.text}" for e in timeline(session, ticket)]
    assert "outcome: outcome no_input" in story


def test_zero_at_the_language_menu_keeps_the_greeting_language_on_the_ticket(
    client: FlaskClient, database: Database
) -> None:
    phone = Phone(client, caller="+4915112345678")  # greeted in German
    phone.dial()
    phone.press("0")
    assert says_in(phone, "de-DE")[0] == prompt_texts("de-DE")["please_hold"]
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert (ticket.language, ticket.queue, ticket.issue) == ("de-DE", "general", "operator")
    assert ticket.menu_path == ["language:0"]


def test_after_hours_a_caller_is_offered_the_open_team_of_another_language_and_joins_it(
    app_factory: Callable[..., Flask], database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    # Monday 15:00 UTC (the `clock`): 23:00 in Shanghai, the Chinese team is closed; 10:00 in New
    # York, the English team is open.
    client = app_factory().test_client()  # the shipped rules offer it
    chinese, english = prompt_texts("zh-CN"), prompt_texts("en-US")
    phone = Phone(client, caller="+8613800138000")
    phone.dial()
    phone.press("1")  # 中文
    phone.press("2")  # deposits and withdrawals
    phone.press("2")  # a withdrawal
    assert says_in(phone, "cmn-CN")[0].startswith(chinese["team_closed"].split("{")[0])
    assert says_in(phone, "en-US") == [english["offer_other_language"]]
    assert says_in(phone, "cmn-CN")[1:] == [
        chinese["offer_voicemail"],
        chinese["offer_callback"],
        chinese["offer_back"],
    ]
    phone.press("3")
    assert says_in(phone, "en-US") == [english["please_hold"]]
    phone.follow()
    assert english["queue_next"] in says_in(phone, "en-US")
    clock.advance(30)
    phone.hang_up()
    ticket = ticket_of(database, phone.sid)
    assert (ticket.language, ticket.queue, ticket.team) == ("en-US", "funds", "americas")
    assert ticket.menu_path == ["language:1", "main:2", "funds:2", "closed:3"]
    assert ticket.issue == "withdrawal" and ticket.outcome == "abandoned"
