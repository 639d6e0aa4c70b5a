"""Whole calls in which the caller speaks at the main menu (a menu that listens), through the signed
webhooks: the ticket keeps what was said, where it led and whether the line asked; a number read
out to the menu is never kept."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from ivr.cli import main
from ivr.db import Database
from ivr.tickets.models import TicketChangeRow
from tests.support import Phone, parse, signed_post, spoken, ticket_of

CARD = "4111 1111 1111 1111"


def speak(phone: Phone, text: str, confidence: float) -> ET.Element:
    """Say `text` at the menu the caller is at: Twilio posts what it heard to the Gather's action."""
    assert phone.twiml is not None
    gather = phone.twiml.find("Gather")
    assert gather is not None, "the caller is not at a menu"
    assert "speech" in gather.attrib["input"].split(), "this menu does not listen"
    form = phone.form(SpeechResult=text, Confidence=str(confidence))
    phone.twiml = parse(signed_post(phone.client, gather.attrib["action"], form))
    phone.heard += spoken(phone.twiml)
    return phone.twiml


def english_caller_at_the_main_menu(client: FlaskClient) -> Phone:
    phone = Phone(client, caller="+14155550100")
    phone.dial()
    phone.press("2")  # English
    return phone


def test_a_caller_who_says_what_happened_is_queued_for_it_and_the_ticket_says_what_they_said(
    client: FlaskClient, database: Database
) -> None:
    phone = english_caller_at_the_main_menu(client)
    speak(phone, "my withdrawal never arrived", 0.9)
    phone.follow()  # into the hold queue
    phone.hang_up()

    ticket = ticket_of(database, phone.sid)
    assert (ticket.issue, ticket.queue) == ("withdrawal", "funds")
    assert "main:said" in ticket.menu_path
    assert (ticket.said, ticket.said_to, ticket.said_checked) == (
        "my withdrawal never arrived",
        "withdrawal",
        False,
    )


def test_a_card_number_read_out_to_the_menu_is_kept_masked_everywhere(
    client: FlaskClient, database: Database
) -> None:
    phone = english_caller_at_the_main_menu(client)
    speak(phone, f"my withdrawal to card {CARD} never arrived", 0.9)
    phone.hang_up()

    ticket = ticket_of(database, phone.sid)
    assert ticket.said == f"my withdrawal to card {'#' * len(CARD)} never arrived"
    assert ticket.said_to == "withdrawal"
    with database.session() as session:
        bodies = session.scalars(
            select(TicketChangeRow.body).where(TicketChangeRow.call_sid == phone.sid)
        ).all()
    assert bodies and not any("4111" in body for body in bodies)  # nor in the ticket's history


def test_an_unsure_match_is_asked_once_and_show_prints_the_words_harmlessly(
    client: FlaskClient,
    database: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone = english_caller_at_the_main_menu(client)
    # Low confidence: the line asks "did you mean ...?"; the words carry a terminal escape
    # sequence (clear the screen) that must reach nobody's terminal.
    speak(phone, "my withdrawal never arrived \x1b[2J", 0.5)
    phone.press("1")  # yes
    phone.hang_up()

    ticket = ticket_of(database, phone.sid)
    assert (ticket.issue, ticket.said_to, ticket.said_checked) == ("withdrawal", "withdrawal", True)
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    assert main(["tickets", "show", ticket.reference]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    fields, story = out.split("\ntimeline:\n")
    assert (
        'said:             "my withdrawal never arrived \\u001b[2J" -> withdrawal (asked once)'
        in fields.splitlines()
    )
    steps = [line.split(None, 3)[2:] for line in story.splitlines()]
    assert ["menu", 'menu main: said "my withdrawal never arrived \\u001b[2J"'] in steps
    assert ["speech", "unsure what the words meant: the line asked once"] in steps
    assert ["speech", "the words led to withdrawal"] in steps
