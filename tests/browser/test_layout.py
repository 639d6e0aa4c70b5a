"""The dashboard's layout as an admin sees it, on a desktop and on a phone (390 px wide): nothing
overlaps, nothing pushes the page sideways, every page can be reached and read.

With IVR_SCREENSHOTS=1 the phone walk saves each page as docs/screenshots/<name>-phone.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from ivr.db import Database
from ivr.rules.store import RulesStore
from ivr.services import services
from tests.browser.support import (
    LiveServer,
    Screenshot,
    holding_for_funds,
    log_in,
    self_served_call,
)
from tests.support import ticket_of

PHONE = {"width": 390, "height": 844}
"""An iPhone 12-15's viewport in CSS pixels."""


def sideways_overflow(page: Page) -> list[str]:
    """What sticks out of the page sideways: the page's own extra width and the elements whose
    right edge passes the viewport's (empty when the page fits)."""
    found: list[str] = page.evaluate(
        """() => {
          const width = window.innerWidth;
          const out = [];
          const page = document.documentElement.scrollWidth;
          if (page > width) out.push(`the page is ${page} px wide in a ${width} px viewport`);
          for (const element of document.querySelectorAll("body *")) {
            // Inside a box that scrolls sideways on its own, sticking out is what it is for.
            const box = element.parentElement.closest(".table-scroll, #diagram, pre");
            if (box) continue;
            const right = element.getBoundingClientRect().right;
            if (right > width + 0.5 && element.getClientRects().length) {
              const name = element.id ? `#${element.id}` : element.className || "";
              out.push(`<${element.tagName.toLowerCase()}> ${name} ends at ${Math.round(right)} px`);
            }
          }
          return out;
        }"""
    )
    return found


def boxes_overlapping(page: Page, selector: str) -> list[str]:
    """The pairs of elements matching `selector` whose boxes intersect (empty when none do)."""
    boxes = page.locator(selector)
    named = []
    for index in range(boxes.count()):
        box = boxes.nth(index).bounding_box()
        assert box is not None, f"{selector} #{index} is not shown"
        named.append((boxes.nth(index).get_attribute("name") or str(index), box))
    found = []
    for i, (name, a) in enumerate(named):
        for other, b in named[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            if not apart:
                found.append(f"{name} and {other}")
    return found


def test_the_ticket_filters_do_not_overlap_at_any_width(
    admin_page: Page, live_server: LiveServer
) -> None:
    admin_page.goto("/admin/tickets")
    controls = "form#filters input, form#filters select, form#filters button"
    for width in (1280, 1024, 800, 390):
        admin_page.set_viewport_size({"width": width, "height": 800})
        assert boxes_overlapping(admin_page, controls) == [], f"at {width} px"
        assert sideways_overflow(admin_page) == [], f"at {width} px"


def test_every_page_fits_a_phone_screen(
    page: Page, live_server: LiveServer, database: Database, screenshot: Screenshot
) -> None:
    sid = self_served_call(live_server, "+4915112345678", "de-DE")
    reference = ticket_of(database, sid).reference
    self_served_call(live_server, "+33612345678", "fr-FR")
    holding_for_funds(live_server, "+14155550123")
    with live_server.app.app_context():
        services().rules.sync()  # the shipped file, published as the first version
        store: RulesStore | None = services().rules.store
        assert store is not None
        version = store.state().live_id

    page.set_viewport_size(PHONE)
    page.goto("/admin/login")
    assert sideways_overflow(page) == [], "login"
    screenshot(page, "login-phone")
    log_in(page)
    expect(page.locator("table#queues")).to_be_visible()

    pages = {
        "queues": "/admin/",
        "today": "/admin/today",
        "tickets": "/admin/tickets",
        "ticket": f"/admin/tickets/{reference}",
        "rules": "/admin/rules",
        "rules-version": f"/admin/rules/versions/{version}",
        "rules-diagram": "/admin/rules/diagram",
        "incident": "/admin/incident",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        assert sideways_overflow(page) == [], name
        # Every link of the navigation is on the screen, none hidden past its edge.
        links = page.locator("header nav a")
        for index in range(links.count()):
            expect(links.nth(index)).to_be_in_viewport()
        screenshot(page, f"{name}-phone")


READABLE_PX = 10
"""The smallest label height an admin can read without zooming (Graphviz draws 10-14 pt)."""


def smallest_label_px(page: Page) -> float:
    """The height of the smallest text label of the diagram as drawn on the screen."""
    height: float = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll("#diagram svg text"),
                                       (text) => text.getBoundingClientRect().height))"""
    )
    return height


def test_the_diagram_is_drawn_at_a_readable_size_on_the_rules_page_and_its_own(
    admin_page: Page, live_server: LiveServer, screenshot: Screenshot
) -> None:
    for size in ({"width": 1280, "height": 800}, PHONE):
        admin_page.set_viewport_size(size)
        admin_page.goto("/admin/rules?language=de-DE")
        expect(admin_page.locator("#diagram svg")).to_be_visible()
        assert smallest_label_px(admin_page) >= READABLE_PX, size
        assert sideways_overflow(admin_page) == [], size  # the diagram scrolls in its box

        admin_page.get_by_role("link", name="Open the diagram on its own page").click()
        expect(admin_page).to_have_url(f"{live_server.url}/admin/rules/diagram?language=de-DE")
        expect(admin_page.locator("#diagram svg")).to_contain_text("texts in Deutsch (de-DE)")
        assert smallest_label_px(admin_page) >= READABLE_PX, size
        assert sideways_overflow(admin_page) == [], size
    admin_page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(admin_page, "rules-diagram")


def diagram_width(page: Page) -> float:
    width: float = page.evaluate(
        """() => document.querySelector("#diagram svg").getBoundingClientRect().width"""
    )
    return width


def test_the_diagram_zooms_out_to_fit_its_box_and_back_to_full_size(
    admin_page: Page, screenshot: Screenshot
) -> None:
    admin_page.goto("/admin/rules/diagram?language=en-US")
    expect(admin_page.locator("#diagram-scale")).to_have_text("100 %")
    full = diagram_width(admin_page)
    box = admin_page.locator("#diagram").evaluate("(box) => box.clientWidth")
    assert full > box, "the shipped rules' diagram is wider than the box at full size"

    admin_page.get_by_role("button", name="Fit the whole diagram in the box").click()
    assert diagram_width(admin_page) <= box
    fitted = diagram_width(admin_page)
    admin_page.get_by_role("button", name="Zoom in").click()
    assert diagram_width(admin_page) == pytest.approx(fitted * 1.25, rel=0.02)
    screenshot(admin_page, "rules-diagram-fit")

    admin_page.get_by_role("button", name="Full size").click()
    expect(admin_page.locator("#diagram-scale")).to_have_text("100 %")
    assert diagram_width(admin_page) == pytest.approx(full, rel=0.01)
    assert smallest_label_px(admin_page) >= READABLE_PX
