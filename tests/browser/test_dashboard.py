"""The admin dashboard in a real browser: what an admin sees and can do, page by page.

Simulated callers (`Phone`) walk the webhooks of the served app, so the pages show real calls: a
caller holding for the funds queue, tickets in several languages. Waits are Playwright's `expect`
with a timeout (the queues page polls every 2 s), never a fixed sleep.
"""

from __future__ import annotations

import csv
import io
import re
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.services import services
from ivr.tickets.listing import mask_number
from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER
from tests.browser.support import (
    LiveServer,
    Screenshot,
    holding_for_funds,
    log_in,
    self_served_call,
)
from tests.support import edit, ticket_of

LOGIN_URL = re.compile(r"/admin/login(\?.*)?$")
NAV = {
    "Queues": "/admin/",
    "Today": "/admin/today",
    "Tickets": "/admin/tickets",
    "Rules": "/admin/rules",
    "Incident": "/admin/incident",
}

# --- logging in -----------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_queues_page(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, ADMIN_USER, "not the password")
    expect(page.locator("body")).to_contain_text("Wrong user name or password")
    expect(page.locator("form#login")).to_be_visible()

    log_in(page, ADMIN_USER, ADMIN_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.locator("table#queues")).to_be_visible()
    expect(page.locator("form#logout").get_by_role("button", name="Log out")).to_be_visible()


def test_every_page_is_one_click_away_in_the_header(
    admin_page: Page, live_server: LiveServer, clock: FrozenClock, screenshot: Screenshot
) -> None:
    self_served_call(live_server, "+4915112345678", "de-DE")
    impatient = holding_for_funds(live_server, "+14155550123")
    clock.advance(40)
    impatient.hang_up()  # gave up after 40 seconds on hold

    landmarks = {
        "Queues": "table#agents",
        "Today": "table#figures",
        "Tickets": "form#filters",
        "Rules": "#rules-version",
        "Incident": "form#start-incident",
    }
    for label, path in NAV.items():
        admin_page.locator("nav").get_by_role("link", name=label, exact=True).click()
        expect(admin_page).to_have_url(live_server.url + path)
        expect(admin_page.locator(landmarks[label])).to_be_visible()
    admin_page.locator("nav").get_by_role("link", name="Today", exact=True).click()
    funds = admin_page.locator('table#figures tr[data-queue="funds"]')
    expect(funds.locator("td.offered")).to_have_text("1")
    expect(funds.locator("td.abandoned")).to_have_text("1")
    # (Waits count answered calls only, so this caller's 40 s are in neither wait column.)
    expect(admin_page.locator("svg#last-24h")).to_be_visible()
    screenshot(admin_page, "today")


# --- live queues ----------------------------------------------------------------------------------


def test_a_holding_caller_shows_in_their_line_and_leaves_it_when_they_hang_up(
    admin_page: Page, live_server: LiveServer, clock: FrozenClock, screenshot: Screenshot
) -> None:
    line = admin_page.locator('table#queues tr[data-queue="funds"][data-language="en-US"]')
    expect(line).to_have_count(0)  # nobody calls yet, and no agent is logged in
    expect(admin_page.locator('table#agents tr[data-agent="emma"] td.status')).to_have_text(
        "offline"
    )

    phone = holding_for_funds(live_server, "+14155550123")
    # No reload: the page updates itself from /admin/api/queues every 2 s.
    expect(line.locator("td.waiting")).to_have_text("1")
    expect(admin_page.locator("span#updated")).not_to_be_empty()
    clock.advance(95)
    phone.follow()  # a round of hold: still waiting, and for longer
    expect(line.locator("td.waiting")).to_have_text("1")
    expect(line.locator("td.longest-wait")).to_have_text("1 min 35 s")
    screenshot(admin_page, "queues")

    phone.hang_up()
    expect(line).to_have_count(0)


# --- tickets --------------------------------------------------------------------------------------


def test_tickets_filtered_by_language_list_and_export_only_that_language(
    admin_page: Page, live_server: LiveServer, database: Database, screenshot: Screenshot
) -> None:
    calls = {
        "+4915112345678": "de-DE",
        "+4930123456789": "de-DE",
        "+33612345678": "fr-FR",
        "+14155550123": "en-US",
    }
    references = {}
    for caller, language in calls.items():
        sid = self_served_call(live_server, caller, language)
        references[caller] = ticket_of(database, sid).reference
    german = {references[c] for c, language in calls.items() if language == "de-DE"}

    admin_page.goto("/admin/tickets")
    rows = admin_page.locator("table#tickets tr[data-reference]")
    expect(rows).to_have_count(len(calls))
    screenshot(admin_page, "tickets")

    admin_page.locator("form#filters input[name=language]").fill("de-DE")
    admin_page.locator("form#filters").get_by_role("button", name="Filter").click()
    expect(admin_page).to_have_url(re.compile(r"[?&]language=de-DE"))
    expect(rows).to_have_count(len(german))
    shown = {rows.nth(i).get_attribute("data-reference") for i in range(rows.count())}
    assert shown == german
    table = admin_page.locator("table#tickets").inner_text()
    assert "+4915112345678" not in table, "caller numbers are masked on the page"
    assert mask_number("+4915112345678") in table

    with admin_page.expect_download() as download_info:
        admin_page.locator("a#export-csv").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = download.path().read_text(encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert {row["reference"] for row in exported} == german
    assert {row["language"] for row in exported} == {"de-DE"}
    assert "+4915112345678" not in text, "and in the export"

    reference = references["+4915112345678"]
    admin_page.goto(f"/admin/tickets/{reference}")
    timeline = admin_page.locator("ol#timeline li")
    expect(timeline.first).to_be_visible()
    assert timeline.count() >= 2, "a call has at least a start and an end"
    expect(admin_page.locator("body")).to_contain_text(reference)
    screenshot(admin_page, "ticket")


# --- rules ----------------------------------------------------------------------------------------


def test_a_broken_rules_edit_is_reported_with_file_line_and_column_and_not_served(
    admin_page: Page, live_server: LiveServer, screenshot: Screenshot
) -> None:
    admin_page.goto("/admin/rules")
    problem = admin_page.locator("#rules-problem")
    expect(problem).to_contain_text("No problem")
    version = admin_page.locator("dl#rules-version").inner_text()
    expect(admin_page.locator("#diagram")).not_to_be_empty()

    [(line, column)] = edit(
        live_server.rules,
        ("{label: opt_deposit, queue: funds,", "{label: opt_deposit, queue: ‸fundz,"),
    )
    admin_page.reload()
    expect(problem).to_contain_text(
        f"{live_server.rules}:{line}:{column}: queue 'fundz' is not defined"
    )
    # The last good rules are still the live ones.
    assert admin_page.locator("dl#rules-version").inner_text() == version
    expect(admin_page.locator("#diagram")).not_to_be_empty()
    screenshot(admin_page, "rules")


# --- logging out ----------------------------------------------------------------------------------


def test_after_logging_out_every_admin_page_sends_the_browser_to_the_login_page(
    admin_page: Page, live_server: LiveServer, database: Database
) -> None:
    reference = ticket_of(
        database, self_served_call(live_server, "+4915112345678", "de-DE")
    ).reference
    pages = [*NAV.values(), f"/admin/tickets/{reference}", "/admin/tickets.csv"]
    for path in pages:  # all open while logged in
        response = admin_page.request.get(path, max_redirects=0)
        assert response.status == 200, path

    admin_page.locator("form#logout").get_by_role("button", name="Log out").click()
    expect(admin_page).to_have_url(LOGIN_URL)

    for path in pages:
        response = admin_page.request.get(path, max_redirects=0)
        assert response.status == 302, path
        assert LOGIN_URL.search(response.headers["location"]), path
    admin_page.goto("/admin/")
    expect(admin_page).to_have_url(LOGIN_URL)
    expect(admin_page.locator("form#login")).to_be_visible()
    for api in ("/admin/api/queues", "/admin/api/today", "/admin/api/tickets"):
        response = admin_page.request.get(api)
        assert response.status == 401, api
        assert "error" in response.json(), api


# --- times ----------------------------------------------------------------------------------------


def test_times_show_in_the_browsers_time_zone_and_in_utc_without_scripts(
    browser: Browser, live_server: LiveServer, clock: FrozenClock, database: Database
) -> None:
    reference = ticket_of(
        database, self_served_call(live_server, "+4915112345678", "de-DE")
    ).reference
    arrived = clock.now().replace(second=0, microsecond=0)
    in_shanghai = f"{arrived.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M} GMT+8"
    in_utc = f"{arrived:%Y-%m-%d %H:%M} UTC"

    for scripts, shown in ((True, in_shanghai), (False, in_utc)):
        context = browser.new_context(
            base_url=live_server.url,
            timezone_id="Asia/Shanghai",
            locale="en-US",
            java_script_enabled=scripts,
        )
        try:
            tab = context.new_page()
            log_in(tab)
            tab.goto("/admin/tickets")
            when = tab.locator(f'tr[data-reference="{reference}"] time')
            expect(when).to_have_text(shown)
            expect(when).to_have_attribute("title", in_utc)  # the UTC instant on hover
            tab.goto(f"/admin/tickets/{reference}")
            timeline = tab.locator("ol#timeline time").first
            expect(timeline).to_have_text(re.compile(r"^\d\d:\d\d:\d\d (GMT\+8|UTC)$"))
            assert timeline.inner_text().endswith("GMT+8" if scripts else "UTC")
            body = tab.locator("main").inner_text()
            assert not re.search(r"\d\d:\d\d:\d\d\.\d", body), "no microseconds anywhere"
        finally:
            context.close()


# --- callers nobody can answer --------------------------------------------------------------------


def test_a_banner_names_the_queue_where_callers_wait_with_no_agent_logged_in(
    admin_page: Page, live_server: LiveServer, clock: FrozenClock
) -> None:
    banner = admin_page.locator("#unattended")
    expect(banner).to_be_hidden()  # nobody waits

    holding_for_funds(live_server, "+14155550123")
    clock.advance(30)
    holding_for_funds(live_server, "+4930123456789")  # a second English caller for funds
    # No reload: the queues page raises the banner from its 2-second update.
    line = banner.locator('li[data-queue="funds"][data-language="en-US"]')
    expect(banner).to_be_visible()
    expect(line).to_contain_text("funds (en-US): 2 waiting, the first since")
    expect(banner.locator("li")).to_have_count(1)
    for path in ("/admin/today", "/admin/tickets", "/admin/rules", "/admin/incident"):
        admin_page.goto(path)
        expect(line).to_contain_text("2 waiting")

    with live_server.app.app_context():
        agent = services().rules.get().rules.agents_serving("funds", "en-US")[0]
        services().queue.agent_available(agent, [("funds", "en-US")])
    admin_page.reload()
    expect(banner).to_be_hidden()  # an agent is there to answer them
    admin_page.goto("/admin/")
    expect(banner).to_be_hidden()
