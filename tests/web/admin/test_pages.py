"""What a logged-in admin sees: live queues, today's figures, tickets (masked), rules."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.flow import Flow
from ivr.incidents import Incident
from ivr.services import services
from ivr.switchboard import Call
from ivr.web import inbound, voice
from tests.admin_support import create_admin, login
from tests.support import Phone, reference_in
from tests.test_spoken_calls import speak

CALLER = "+12025550123"


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    create_admin(app)
    client = app.test_client()
    login(client)
    return client


def wait_in_security_queue(app: Flask, caller: str = CALLER) -> Phone:
    """An English caller holding for the security desk ("other security questions")."""
    phone = Phone(app.test_client(), caller=caller)
    phone.dial()
    phone.press("2")  # English
    phone.press("3")  # security
    phone.press("3")  # other security questions
    phone.follow()
    return phone


def row_of(html: str, attributes: str) -> str:
    found = re.search(rf"<tr {re.escape(attributes)}>(.*?)</tr>", html, re.S)
    assert found is not None, f"no row {attributes}"
    return found.group(1)


def cell(row: str, name: str) -> str:
    found = re.search(rf'<td class="{name}[^"]*"[^>]*>(.*?)</td>', row, re.S)
    assert found is not None, f"no cell {name}"
    return found.group(1).strip()


def test_every_page_has_the_navigation_and_the_logout_form(admin: FlaskClient) -> None:
    for path in ("/admin/", "/admin/today", "/admin/tickets", "/admin/rules"):
        html = admin.get(path).get_data(as_text=True)
        assert 'href="#main"' in html  # the skip link
        for label, href in (
            ("Queues", "/admin/"),
            ("Today", "/admin/today"),
            ("Tickets", "/admin/tickets"),
            ("Rules", "/admin/rules"),
        ):
            assert f'href="{href}"' in html and f">{label}</a>" in html
        assert '<form id="logout" method="post" action="/admin/logout">' in html


def test_live_queues_show_the_waiting_caller_and_the_agents(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    wait_in_security_queue(app)
    with app.app_context():
        rules = services().rules.get().rules
        serving = rules.agents_serving("security", "en-US")
        services().queue.agent_available(serving[0], [("security", "en-US")])
    clock.advance(75)
    html = admin.get("/admin/").get_data(as_text=True)
    line = row_of(html, 'data-queue="security" data-language="en-US"')
    assert cell(line, "waiting") == "1"
    assert cell(line, "longest-wait") == "1 min 15 s"
    assert cell(line, "estimated-wait") != "–"  # an agent is logged in: there is an estimate
    agent = row_of(html, f'data-agent="{serving[0]}"')
    assert cell(agent, "status") == "available"
    others = [a for a in rules.agents if a != serving[0]]
    assert cell(row_of(html, f'data-agent="{others[0]}"'), "status") == "offline"
    assert 'id="updated"' in html and "live.js" in html

    data = admin.get("/admin/api/queues").get_json()
    assert {
        "queue": "security",
        "language": "en-US",
        "waiting": 1,
        "longest_wait_seconds": 75,
    }.items() <= next(
        x for x in data["lines"] if (x["queue"], x["language"]) == ("security", "en-US")
    ).items()
    assert {"agent": serving[0], "status": "available"}.items() <= next(
        a for a in data["agents"] if a["agent"] == serving[0]
    ).items()
    assert data["at"] == clock.now().isoformat()


def test_callers_waiting_with_no_agent_logged_in_are_named_on_every_page(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    assert admin.get("/admin/api/queues").get_json()["unattended"] == []
    assert '<div id="unattended" class="banner" role="alert" hidden>' in admin.get(
        "/admin/tickets"
    ).get_data(as_text=True)

    arrived = clock.now()
    wait_in_security_queue(app)
    clock.advance(20)
    assert admin.get("/admin/api/queues").get_json()["unattended"] == [
        {"queue": "security", "language": "en-US", "waiting": 1, "since": arrived.isoformat()}
    ]
    for path in ("/admin/", "/admin/today", "/admin/tickets", "/admin/rules", "/admin/incident"):
        html = admin.get(path).get_data(as_text=True)
        banner = re.search(r'<div id="unattended"[^>]*>(.*?)</div>', html, re.S)
        assert banner is not None and "hidden" not in html[banner.start() : banner.start() + 60]
        assert "queue <strong>security</strong> (en-US): 1 waiting" in banner.group(1), path
        assert f'datetime="{arrived.isoformat()}"' in banner.group(1), path

    with app.app_context():
        agent = services().rules.get().rules.agents_serving("security", "en-US")[0]
        services().queue.agent_available(agent, [("security", "en-US")])
    assert admin.get("/admin/api/queues").get_json()["unattended"] == []
    assert 'role="alert" hidden>' in admin.get("/admin/today").get_data(as_text=True)


def test_the_live_page_script_is_served_to_a_logged_in_admin(admin: FlaskClient) -> None:
    script = admin.get("/admin/static/live.js")
    assert script.status_code == 200
    assert "textContent" in script.get_data(as_text=True)


def test_a_line_nobody_waits_in_or_serves_is_not_listed(admin: FlaskClient) -> None:
    data = admin.get("/admin/api/queues").get_json()
    assert data["lines"] == []
    assert "Nobody is waiting" in admin.get("/admin/").get_data(as_text=True)


def test_today_counts_an_abandoned_call_and_charts_it(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    phone = wait_in_security_queue(app)
    clock.advance(40)
    phone.hang_up()
    html = admin.get("/admin/today").get_data(as_text=True)
    row = row_of(html, 'data-queue="security"')
    assert cell(row, "offered") == "1"
    assert cell(row, "answered") == "0"
    assert cell(row, "abandoned") == "1"
    assert cell(row, "abandon-rate") == "100 %"
    assert cell(row, "service-level") == "0 %"
    assert '<svg id="last-24h"' in html
    assert "1 in all" in html
    data = admin.get("/admin/api/today").get_json()
    security = next(q for q in data["queues"] if q["queue"] == "security")
    assert (security["offered"], security["abandoned"], security["abandon_rate"]) == (1, 1, 1.0)
    assert len(data["last_24h"]) == 24 and data["last_24h"][-1]["calls"] == 1
    assert sum(h["calls"] for h in data["last_24h"]) == 1


def test_tickets_list_masks_numbers_filters_pages_and_exports(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    for i in range(3):
        phone = wait_in_security_queue(app, caller=f"+1202555012{i}")
        clock.advance(10)
        phone.hang_up()
    html = admin.get("/admin/tickets").get_data(as_text=True)
    assert '<form id="filters" method="get"' in html
    assert len(re.findall(r'<tr data-reference="\d+">', html)) == 3
    assert "+12025550120" not in html and "5550120" not in html
    filtered = admin.get("/admin/tickets?caller=5550121").get_data(as_text=True)
    assert len(re.findall(r'<tr data-reference="\d+">', filtered)) == 1
    assert 'href="/admin/tickets.csv?caller=5550121"' in filtered
    export = admin.get("/admin/tickets.csv?caller=5550121")
    assert export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 1 and "5550121" not in rows[0]["caller"]
    bad = admin.get("/admin/tickets?since=yesterday-ish")
    assert bad.status_code == 400
    api = admin.get("/admin/api/tickets").get_json()
    assert api["total"] == 3 and len(api["tickets"]) == 3


def test_a_caller_let_go_for_silence_is_found_by_its_outcome_and_exported(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    silent = Phone(app.test_client(), caller="+8613800138000")
    silent.dial()
    for key in ("1", "2", "2"):  # 中文, a withdrawal: 23:00 in Shanghai, the team is closed
        silent.press(key)
    assert silent.say_nothing(100, lambda: clock.advance(30)) < 100
    silent.hang_up()
    wait_in_security_queue(app).hang_up()
    html = admin.get("/admin/tickets").get_data(as_text=True)
    assert '<option value="no_input">no_input</option>' in html
    filtered = admin.get("/admin/tickets?outcome=no_input").get_data(as_text=True)
    assert '<option value="no_input" selected>no_input</option>' in filtered
    assert len(re.findall(r'<tr data-reference="\d+">', filtered)) == 1
    export = admin.get("/admin/tickets.csv?outcome=no_input")
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [(row["outcome"], row["issue"]) for row in rows] == [("no_input", "withdrawal")]


def test_tickets_are_paged(
    app: Flask, admin: FlaskClient, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.web.admin.views.PAGE_SIZE", 2)
    for i in range(3):
        phone = wait_in_security_queue(app, caller=f"+1202555013{i}")
        clock.advance(10)
        phone.hang_up()
    first = admin.get("/admin/tickets").get_data(as_text=True)
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = admin.get("/admin/tickets?page=2").get_data(as_text=True)
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert len(re.findall(r'<tr data-reference="\d+">', second)) == 1


def test_a_ticket_shows_its_timeline_and_recording_link(
    app: Flask, admin: FlaskClient, clock: FrozenClock, database: object
) -> None:
    phone = wait_in_security_queue(app)
    clock.advance(30)
    phone.hang_up()
    reference = re.findall(
        r'<tr data-reference="(\d+)">', admin.get("/admin/tickets").get_data(as_text=True)
    )[0]
    with app.app_context(), services().db.sessions() as session:
        from ivr.tickets.reads import find_by_reference

        ticket = find_by_reference(session, reference)
        assert ticket is not None
        ticket.recording_url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
        session.commit()
    page = admin.get(f"/admin/tickets/{reference}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<ol id="timeline">' in html and html.count("<li>") >= 3
    assert 'class="recording" href="https://api.twilio.com/' in html
    assert CALLER not in html
    assert admin.get("/admin/tickets/999999999").status_code == 404


def test_rules_page_shows_the_version_the_problem_and_the_diagram(admin: FlaskClient) -> None:
    html = admin.get("/admin/rules").get_data(as_text=True)
    assert '<dl id="rules-version">' in html
    assert re.search(r"<code>[0-9a-f]{64}</code>", html)
    assert "routing_rules.yaml" in html
    problem = re.search(r'<div id="rules-problem">(.*?)</div>', html, re.S)
    assert problem is not None and "No problem" in problem.group(1)
    assert '<div id="diagram">' in html
    diagram = html.split('<div id="diagram">', 1)[1]
    assert diagram.lstrip().startswith("<svg")  # CI and this machine have Graphviz


def test_rules_page_says_so_when_graphviz_is_missing(
    admin: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr import diagram

    def missing(*args: object) -> str:
        raise diagram.DiagramUnavailable("Graphviz's dot is not installed")

    monkeypatch.setattr(diagram, "diagram_svg", missing)
    html = admin.get("/admin/rules").get_data(as_text=True)
    assert "No diagram: Graphviz&#39;s dot is not installed" in html


def test_rules_page_shows_the_problem_of_a_broken_edit(
    app_factory: object, tmp_path: object
) -> None:
    from pathlib import Path

    from tests.support import copy_project

    rules_file, prompts = copy_project(Path(str(tmp_path)))
    app = app_factory(routing_rules=rules_file, voice_prompts=prompts, rules_reload_seconds=0)  # type: ignore[operator]
    create_admin(app)
    client = app.test_client()
    login(client)
    rules_file.write_text(rules_file.read_text() + "\nnonsense: [\n")
    html = client.get("/admin/rules").get_data(as_text=True)
    problem = re.search(r'<div id="rules-problem">(.*?)</div>', html, re.S)
    assert problem is not None
    assert re.search(rf"{re.escape(str(rules_file))}:\d+:\d+: ", problem.group(1))


def test_a_caller_number_is_escaped_and_masked_on_the_ticket_page(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    phone = wait_in_security_queue(app, caller="<script>alert(1)</script>")
    clock.advance(5)
    phone.hang_up()
    html = admin.get("/admin/tickets").get_data(as_text=True)
    assert "<script>alert" not in html
    for reference in re.findall(r'<tr data-reference="(\d+)">', html):
        assert "<script>alert" not in admin.get(f"/admin/tickets/{reference}").get_data(
            as_text=True
        )


def test_today_starts_at_midnight(app: Flask, admin: FlaskClient, clock: FrozenClock) -> None:
    phone = wait_in_security_queue(app)
    phone.hang_up()
    clock.advance(timedelta(days=1).total_seconds())
    login(admin)  # the session timed out meanwhile
    data = admin.get("/admin/api/today").get_json()
    assert all(q["offered"] == 0 for q in data["queues"])
    assert sum(h["calls"] for h in data["last_24h"]) == 0


def test_today_shows_the_speech_share_and_the_clarification_rate_with_their_counts(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    html = admin.get("/admin/today").get_data(as_text=True)
    assert speech_figure(html, "speech-share") == "–"  # nobody reached the main menu yet
    assert speech_figure(html, "clarification-rate") == "–"

    wait_in_security_queue(app, caller="+12025550120").hang_up()  # keys at the main menu
    sure = at_the_main_menu(app, "+12025550121")
    speak(sure, "my withdrawal never arrived", 0.9)
    sure.hang_up()
    unsure = at_the_main_menu(app, "+12025550122")
    speak(unsure, "my withdrawal never arrived", 0.5)  # asked once: "did you mean ...?"
    unsure.press("1")
    unsure.hang_up()
    gone = Phone(app.test_client(), caller="+12025550123")
    gone.dial()
    gone.hang_up()  # never reached the main menu: not counted

    html = admin.get("/admin/today").get_data(as_text=True)
    assert speech_figure(html, "speech-share") == "67 % (2 of 3)"
    assert speech_figure(html, "clarification-rate") == "50 % (1 of 2)"
    speech = admin.get("/admin/api/today").get_json()["speech"]
    assert speech["menus"] == ["main"]
    assert speech["speech_share"] == {"part": 2, "whole": 3, "ratio": 2 / 3}
    assert speech["clarification_rate"] == {"part": 1, "whole": 2, "ratio": 0.5}

    clock.advance(timedelta(days=1).total_seconds())  # a new day: nobody yet
    login(admin)
    speech = admin.get("/admin/api/today").get_json()["speech"]
    assert speech["speech_share"] == {"part": 0, "whole": 0, "ratio": None}
    assert speech["clarification_rate"] == {"part": 0, "whole": 0, "ratio": None}


def test_today_counts_the_callers_who_heard_an_incident_notice_and_the_calls_it_saved(
    app: Flask, admin: FlaskClient, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    outage = Incident(7, frozenset({"withdrawal"}))

    live = inbound.current_flow

    def with_incident(call: Call | None = None) -> Flow:
        flow = live(call)
        flow.incident = outage
        return flow

    monkeypatch.setattr(inbound, "current_flow", with_incident)  # the webhooks at a step
    monkeypatch.setattr(voice, "current_flow", with_incident)  # the first webhook
    html = admin.get("/admin/today").get_data(as_text=True)
    assert speech_figure(html, "incident-heard") == "0"
    assert speech_figure(html, "incident-saved") == "–"

    def to_withdrawal(caller: str) -> Phone:
        phone = at_the_main_menu(app, caller)
        phone.press("2")  # deposits and withdrawals
        phone.press("2")  # withdrawals
        phone.follow()  # the notice
        assert "official announcements" in phone.last_heard()
        return phone

    to_withdrawal("+12025550131").hang_up()  # the notice told them enough: a call saved
    waited = to_withdrawal("+12025550132")
    waited.press("1")  # keep waiting
    waited.follow()
    waited.hang_up()  # gave up in the queue: not saved
    wait_in_security_queue(app, caller="+12025550133").hang_up()  # not concerned

    html = admin.get("/admin/today").get_data(as_text=True)
    assert speech_figure(html, "incident-heard") == "2"
    assert speech_figure(html, "incident-saved") == "50 % (1 of 2)"
    figures = admin.get("/admin/api/today").get_json()["incident_notices"]
    assert figures == {"heard": 2, "calls_saved": {"part": 1, "whole": 2, "ratio": 0.5}}

    clock.advance(timedelta(days=1).total_seconds())  # a new day: nobody yet
    login(admin)
    figures = admin.get("/admin/api/today").get_json()["incident_notices"]
    assert figures == {"heard": 0, "calls_saved": {"part": 0, "whole": 0, "ratio": None}}


def test_the_ticket_page_shows_what_the_caller_said_escaped(app: Flask, admin: FlaskClient) -> None:
    phone = at_the_main_menu(app, CALLER)
    speak(phone, '<script>alert(1)</script> "my withdrawal" never arrived', 0.9)
    phone.hang_up()
    reference = reference_in(phone.twiml)
    assert reference is not None
    html = admin.get(f"/admin/tickets/{reference}").get_data(as_text=True)
    assert "<script>alert" not in html
    found = re.search(r'<dt>said</dt><dd class="said">(.*?)</dd>', html)
    assert found is not None
    assert unescape(found.group(1)) == (
        '"<script>alert(1)</script> \\"my withdrawal\\" never arrived" -> withdrawal'
    )


def at_the_main_menu(app: Flask, caller: str) -> Phone:
    phone = Phone(app.test_client(), caller=caller)
    phone.dial()
    phone.press("2")  # English
    return phone


def speech_figure(html: str, name: str) -> str:
    found = re.search(rf'<dd class="{name}">(.*?)</dd>', html, re.S)
    assert found is not None, f"no figure {name}"
    return found.group(1).strip()
