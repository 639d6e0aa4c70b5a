"""Releasing a change in a real browser: a rollback from the Rules page, an incident notice started
and ended with its form. Each change shows on the page the admin lands on, and in what the served
app (the same object) hears."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ivr.clock import FrozenClock
from ivr.rules.store import RulesStore, Sources
from ivr.services import services
from tests.browser.support import LiveServer, Screenshot

TO_GENERAL = (
    '"5": {label: opt_app, queue: tech, issue: app_problem}',
    '"5": {label: opt_app, queue: general, issue: app_problem}',
)


def store_of(live_server: LiveServer) -> RulesStore:
    store: RulesStore | None = live_server.app.extensions["ivr"].rules.store
    assert store is not None
    return store


def test_a_click_on_roll_back_makes_the_earlier_version_live(
    admin_page: Page, live_server: LiveServer, clock: FrozenClock, screenshot: Screenshot
) -> None:
    store = store_of(live_server)
    with live_server.app.app_context():
        services().rules.sync()  # the shipped file, published as the first version
    first = store.state().live_id
    assert first is not None
    shipped = store.sources(first)
    old, new = TO_GENERAL
    clock.advance(60)
    edited, _ = store.publish(
        Sources(shipped.rules_text.replace(old, new), shipped.catalogs), "cli:root", clock.now()
    )

    admin_page.locator("nav").get_by_role("link", name="Rules", exact=True).click()
    versions = admin_page.locator("table#versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_have_attribute("data-version", str(edited.id))
    expect(versions.first.locator(".badge.live")).to_be_visible()
    admin_page.get_by_role("link", name="Changes from live").click()
    expect(admin_page.locator("ul#changes")).to_have_text(
        "main menu: option 5 now goes to queue tech (was general)"
    )
    admin_page.go_back()
    screenshot(admin_page, "rules-history")

    admin_page.get_by_role("button", name=f"Roll back to version {first}").click()

    expect(admin_page.locator("#messages")).to_contain_text(
        f"(rollback to version {first}) is live on every instance within 0 s"
    )
    expect(versions).to_have_count(3)
    newest = versions.first
    expect(newest.locator(".badge.live")).to_be_visible()
    expect(newest).to_contain_text(f"rollback to version {first}")
    expect(newest).to_contain_text("admin:ada")
    rolled_back = store.state().live_id
    assert rolled_back is not None and rolled_back > edited.id
    assert store.version(rolled_back).based_on == first
    assert live_server.rules.read_text() == shipped.rules_text  # the file on disk follows
    with live_server.app.app_context():
        assert services().rules.status().version == rolled_back


def test_an_incident_is_started_with_the_form_and_ended_with_its_button(
    admin_page: Page, live_server: LiveServer, screenshot: Screenshot
) -> None:
    admin_page.locator("nav").get_by_role("link", name="Incident", exact=True).click()
    expect(admin_page.locator("#incident-on")).to_contain_text("No incident notice is on.")
    form = admin_page.locator("form#start-incident")
    form.get_by_label("withdrawal", exact=True).check()
    form.get_by_label("deposit", exact=True).check()
    form.get_by_label("Expected fix").fill("2026-12-07 18:00 UTC")
    form.get_by_label("de-DE").check()
    form.get_by_role("button", name="Start the incident").click()

    expect(admin_page.locator("#messages")).to_contain_text("is on: callers hear it")
    expect(admin_page.locator("#incident-on")).to_contain_text(
        "issues deposit, withdrawal, ETA 2026-12-07 18:00 UTC, languages de-DE"
    )
    with live_server.app.app_context():
        on = services().rules.status().incident
    assert on is not None and on.issues == {"deposit", "withdrawal"}
    screenshot(admin_page, "incident")

    admin_page.get_by_role("button", name="End the incident").click()
    expect(admin_page.locator("#messages")).to_contain_text("is off: callers no longer hear it")
    expect(admin_page.locator("#incident-on")).to_contain_text("No incident notice is on.")
    expect(admin_page.locator("table#incident-history tbody tr")).to_have_count(2)
    with live_server.app.app_context():
        assert services().rules.status().incident is None
