"""Finding, telling and exporting tickets (`ivr.tickets.listing`) on tickets left by simulated calls:
each call goes through the signed webhooks, and the test app writes its ticket inline."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.simulator.rest import TwilioRest
from ivr.tickets.listing import (
    TicketFilter,
    count_tickets,
    csv_of,
    find_tickets,
    json_of,
    mask_number,
    spreadsheet_cell,
    ticket_row,
    timeline,
)
from ivr.tickets.models import Ticket
from tests.conftest import AGENT_PINS
from tests.support import PUBLIC, Phone, new_call_sid, signed_post, ticket_of

GERMAN = "+4915112345678"
AMERICAN = "+14155550100"
FRENCH = "+33612345678"
MONDAY_15 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
MONDAY_16 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
TUESDAY_15 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# Twilio hands us the recording's URL; one with a comma and a quote shows the CSV quoting.
ODD_RECORDING = 'https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1?note=a,"b"'

pytestmark = pytest.mark.usefixtures("agent_pins")


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials, so it moves a waiting caller to an agent itself."""
    return rest_app


# --- simulated calls (also used by tests/test_tickets_cli.py) -----------------------------------


def abandoned_call(client: FlaskClient, clock: FrozenClock, caller: str = GERMAN) -> Phone:
    """German, deposits and withdrawals, a withdrawal; holds 45 s with no agent and hangs up."""
    phone = Phone(client, caller=caller, base_url=PUBLIC)
    phone.dial()
    for key in ("4", "2", "2"):
        phone.press(key)
    phone.follow()
    clock.advance(45)
    phone.hang_up()
    return phone


def self_served_call(client: FlaskClient, caller: str = AMERICAN) -> Phone:
    """English, quick answers, the support e-mail address; then hangs up."""
    phone = Phone(client, caller=caller, base_url=PUBLIC)
    phone.dial()
    for key in ("2", "6", "2"):
        phone.press(key)
    phone.hang_up()
    return phone


def voicemail_call(
    client: FlaskClient, caller: str = FRENCH, recording: str = ODD_RECORDING
) -> Phone:
    """French, a withdrawal while the team is closed (call it at a closed hour): leaves 23 s."""
    phone = Phone(client, caller=caller, base_url=PUBLIC)
    phone.dial()
    for key in ("3", "2", "2", "1"):
        phone.press(key)
    phone.record(recording, 23)
    phone.hang_up()
    return phone


def answered_call(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock, caller: str = GERMAN
) -> Phone:
    """German withdrawal; Anna logs in after 75 s, talks 240 s; the caller scores 4 of 5."""
    phone = Phone(client, caller=caller, base_url=PUBLIC)
    phone.dial()
    for key in ("4", "2", "2"):
        phone.press(key)
    phone.follow()
    clock.advance(75)
    login = client.post("/api/agents/anna/login", auth=("anna", AGENT_PINS["anna"]))
    assert login.status_code == 200, login.get_data(as_text=True)
    [moved] = rest.redirects()
    phone.redirected_to(moved.path)
    assert phone.twiml is not None
    dial = phone.twiml.find("Dial")
    assert dial is not None, "the caller is not put through to Anna"
    whisper = {"CallSid": new_call_sid(), "ParentCallSid": phone.sid, "From": caller}
    assert signed_post(client, dial[0].attrib["url"], whisper, base_url=PUBLIC).status_code == 200
    clock.advance(240)
    phone._post(
        dial.attrib["action"],
        DialCallStatus="completed",
        DialCallDuration="240",
        CallStatus="in-progress",
    )
    phone.press("4")
    phone.hang_up(duration=360)
    return phone


def fill(client: FlaskClient, clock: FrozenClock, database: Database) -> dict[str, Ticket]:
    """Four calls on three days, by name: abandoned, self_served, other_german, voicemail."""
    placed: dict[str, Phone] = {}
    clock.set(MONDAY_15)
    placed["abandoned"] = abandoned_call(client, clock)
    clock.set(MONDAY_16)
    placed["self_served"] = self_served_call(client)
    clock.set(TUESDAY_15)
    placed["other_german"] = self_served_call(client, caller="+4930901820")
    clock.set(SATURDAY_NOON)
    placed["voicemail"] = voicemail_call(client)
    return {name: ticket_of(database, phone.sid) for name, phone in placed.items()}


@pytest.fixture
def tickets(client: FlaskClient, clock: FrozenClock, database: Database) -> dict[str, Ticket]:
    return fill(client, clock, database)


def references(found: list[Ticket]) -> list[str]:
    return [t.reference for t in found]


# --- finding tickets -----------------------------------------------------------------------------


def test_tickets_come_newest_first_and_a_page_at_a_time(
    database: Database, tickets: dict[str, Ticket]
) -> None:
    newest_first = [tickets[n].reference for n in ("voicemail", "other_german", "self_served")]
    newest_first.append(tickets["abandoned"].reference)
    with database.session() as session:
        assert references(find_tickets(session, TicketFilter())) == newest_first
        assert references(find_tickets(session, TicketFilter(), limit=2)) == newest_first[:2]
        assert (
            references(find_tickets(session, TicketFilter(), limit=2, offset=2)) == newest_first[2:]
        )
        assert count_tickets(session, TicketFilter()) == 4


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"language": "de-DE"}, ["abandoned"]),  # +4930... chose English at the language menu
        ({"language": "en-US"}, ["other_german", "self_served"]),
        ({"issue": "faq_email"}, ["other_german", "self_served"]),
        ({"queue": "funds"}, ["voicemail", "abandoned"]),
        ({"outcome": "abandoned"}, ["abandoned"]),
        ({"outcome": "VOICEMAIL"}, ["voicemail"]),
        ({"caller": "5678"}, ["voicemail", "abandoned"]),  # +33612345678 and +4915112345678
        ({"caller": "+49 151"}, ["abandoned"]),
        ({"since": "2026-11-24"}, ["voicemail", "other_german"]),
        ({"until": "2026-11-23"}, ["self_served", "abandoned"]),  # the whole day, UTC
        ({"since": "2026-11-23T16:00+01:00", "until": "2026-11-23T15:00:01Z"}, ["abandoned"]),
        ({"since": "2026-11-23T16:00Z", "until": "2026-11-24T15:00Z"}, ["self_served"]),
        ({"queue": "funds", "since": "", "outcome": " "}, ["voicemail", "abandoned"]),  # blank form
    ],
)
def test_each_filter_keeps_the_tickets_an_admin_asked_for(
    database: Database,
    tickets: dict[str, Ticket],
    args: dict[str, str],
    expected: list[str],
) -> None:
    filter = TicketFilter.from_args(args)
    with database.session() as session:
        assert references(find_tickets(session, filter)) == [tickets[n].reference for n in expected]
        assert count_tickets(session, filter) == len(expected)


def test_a_reference_finds_its_ticket_also_as_it_was_read_out(
    database: Database, tickets: dict[str, Ticket]
) -> None:
    reference = tickets["self_served"].reference
    spoken = " ".join(reference)  # "2 0 0 0 0 1 3": how the caller heard it
    with database.session() as session:
        assert references(find_tickets(session, TicketFilter.from_args({"reference": spoken}))) == [
            reference
        ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"since": "yesterday"}, "since 'yesterday' is not a date or time"),
        ({"until": "2026-11-23T15:00"}, "until '2026-11-23T15:00' has no time zone"),
        ({"since": "2026-02-30"}, "is not a date or time"),
        ({"outcome": "lost"}, "unknown outcome 'lost' (one of: self_served, queued, answered"),
        ({"since": "2026-11-24", "until": "2026-11-23"}, "must be before until"),
        ({"caller": "abc"}, "caller 'abc' has no digits"),
    ],
)
def test_a_bad_filter_value_is_refused_saying_what_to_write(
    args: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        TicketFilter.from_args(args)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_filter_round_trips_through_its_query_string_form() -> None:
    filter = TicketFilter.from_args({"since": "2026-11-23", "outcome": "answered", "caller": "+49"})
    assert TicketFilter.from_args(filter.as_args()) == filter
    assert filter.since == datetime(2026, 11, 23, tzinfo=UTC)


# --- masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+4915112345678", "+49 *** *** 678"),
        ("+14155550100", "+1 *** *** 100"),
        ("+8613800138000", "+86 *** *** 000"),
        ("+33612345678", "+33 *** *** 678"),
        ("+2348031234567", "+234 *** *** 567"),  # Nigeria: a three-digit code
        ("+4930123", "+49 *** ***"),  # too short to show 3 digits and hide enough
        ("015112345678", "*** *** 678"),  # no country code to show
        ("anonymous", "anonymous"),  # nothing to hide
        (None, ""),
    ],
)
def test_a_masked_number_shows_only_its_country_code_and_last_digits(
    number: str | None, masked: str
) -> None:
    assert mask_number(number) == masked


# --- a ticket's story ----------------------------------------------------------------------------


def test_the_timeline_of_an_answered_call_tells_it_from_the_menu_to_the_survey(
    client: FlaskClient, rest: TwilioRest, clock: FrozenClock, database: Database
) -> None:
    clock.set(MONDAY_15)
    ticket = ticket_of(database, answered_call(client, rest, clock).sid)
    with database.session() as session:
        story = timeline(session, ticket)
    texts = [f"{e.kind}: {e.text}" for e in story]
    assert texts[0] == "call: call from +49 *** *** 678 to +18005550199"
    menus = [t for t in texts if t.startswith("menu:")]
    assert menus == [
        "menu: menu language: pressed 4",
        "menu: menu main: pressed 2",
        "menu: menu funds: pressed 2",
    ]
    assert "issue: issue withdrawal" in texts
    assert "route: routed to queue funds (team europe, priority 30)" in texts
    queue_events = [e.text.split(",")[0] for e in story if e.kind == "queue"]
    assert queue_events == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    assert "queue: CONNECT, funds (de-DE), agent anna, waited 75 s" in texts
    assert texts.count("agent: agent anna") == 1  # both legs name her: told once
    assert [t for t in texts if t.startswith("outcome:")] == [
        "outcome: outcome queued",
        "outcome: outcome answered",
    ]
    assert "survey: survey score 4 of 5" in texts
    assert texts[-1] == "end: call ended: completed after 360 s"
    assert [e.at for e in story] == sorted(e.at for e in story)
    assert story[-1].at == MONDAY_15.replace(minute=5, second=15)  # 75 s holding + 240 s talking
    assert GERMAN not in " ".join(texts)


def test_the_timeline_of_a_voicemail_links_the_recording_and_shows_numbers_only_when_asked(
    client: FlaskClient, clock: FrozenClock, database: Database
) -> None:
    clock.set(SATURDAY_NOON)
    ticket = ticket_of(database, voicemail_call(client).sid)
    with database.session() as session:
        masked = timeline(session, ticket)
        full = timeline(session, ticket, full_numbers=True)
    assert f"recording {ODD_RECORDING} (23 s)" in [e.text for e in masked if e.kind == "recording"]
    assert "outcome voicemail" in [e.text for e in masked]
    assert FRENCH not in " ".join(e.text for e in masked)
    assert full[0].text == f"call from {FRENCH} to +18005550199"


# --- exports -------------------------------------------------------------------------------------


def test_the_csv_reads_back_as_written_with_a_comma_and_a_quote_and_no_full_number(
    database: Database, tickets: dict[str, Ticket]
) -> None:
    with database.session() as session:
        found = find_tickets(session, TicketFilter())
    text = csv_of(found)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    expected = [
        {k: "" if v is None else str(spreadsheet_cell(v)) for k, v in ticket_row(t).items()}
        for t in found
    ]
    assert rows == expected
    voicemail = rows[0]
    assert voicemail["recording_url"] == ODD_RECORDING  # the comma and the quotes survive
    assert voicemail["caller"] == "'+33 *** *** 678"  # text, not a formula, in a spreadsheet
    assert voicemail["arrived_at"] == "2026-11-28T12:00:00+00:00"
    assert voicemail["menu_path"] == "language:3 > main:2 > funds:2"
    assert text.startswith("reference,arrived_at,language,")
    assert '"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1?note=a,""b"""' in text
    assert text.endswith("\r\n")  # RFC 4180 line ends
    for number in (GERMAN, AMERICAN, FRENCH, "+4930901820"):
        assert number.removeprefix("+") not in text
    assert FRENCH in csv_of(found, full_numbers=True)


def test_the_json_export_holds_the_same_rows(
    database: Database, tickets: dict[str, Ticket]
) -> None:
    with database.session() as session:
        found = find_tickets(session, TicketFilter.from_args({"queue": "funds"}))
    rows = json.loads(json_of(found))
    assert rows == [ticket_row(t) for t in found]
    assert [r["outcome"] for r in rows] == ["voicemail", "abandoned"]
    assert rows[1]["wait_seconds"] == 45 and rows[1]["caller"] == "+49 *** *** 678"
    assert GERMAN.removeprefix("+") not in json_of(found)
    assert json.loads(json_of(found, full_numbers=True))[1]["caller"] == GERMAN


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("+49 *** *** 678", "'+49 *** *** 678"),
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("language:2 > main:2", "language:2 > main:2"),
        (42, 42),
        (None, None),
    ],
)
def test_no_cell_of_the_csv_runs_as_a_formula_in_a_spreadsheet(
    value: str | int | None, cell: str | int | None
) -> None:
    assert spreadsheet_cell(value) == cell
