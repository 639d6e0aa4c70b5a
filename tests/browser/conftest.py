"""Fixtures for the browser tests: the app served over real HTTP, and a real headless Chromium.

The server is the test app (same database, same in-process Redis, same frozen clock as the other
tests) behind werkzeug's threaded server on a free port; a test's simulated callers (`Phone`) walk
the webhooks of the *same* app object through Flask's test client, so what they do shows up on the
pages the browser sees. The browser is Debian's `chromium` package driven by Playwright (no browser
download); without it the tests fail, naming the package, and never skip.

`IVR_SCREENSHOTS=1` makes the tests save a 1280x800 picture of each page to docs/screenshots/.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from tests.admin_support import create_admin
from tests.browser.support import LiveServer, Screenshot, find_chromium, log_in
from tests.support import copy_project

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PAGE_TIMEOUT_MS = 5_000
"""Longest wait for anything on a page: two rounds of the queues page's 2-second polling and more."""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session (each test gets its own context)."""
    executable = find_chromium()
    with sync_playwright() as playwright:
        # CI runs as root, where Chromium refuses to start with its sandbox.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def live_server(app_factory: Callable[..., Flask], tmp_path: Path) -> Iterator[LiveServer]:
    """The test app on a free port, on a copy of the shipped rules that the test may break.

    `rules_reload_seconds=0`: every request that asks for the rules looks at the files, so a page
    loaded after an edit shows its outcome without waiting for a timer."""
    project = tmp_path / "project"
    project.mkdir()
    rules, prompts = copy_project(project)
    app = app_factory(routing_rules=rules, voice_prompts=prompts, rules_reload_seconds=0)
    create_admin(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}", rules)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser tab (no cookies) at 1280x800, with URLs relative to the live server."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Screenshot:
    """`screenshot(page, name)` saves the page as docs/screenshots/<name>.png, only when
    IVR_SCREENSHOTS=1 (so ordinary runs leave the tree alone)."""

    def save(page: Page, name: str) -> None:
        if os.environ.get("IVR_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    return save


@pytest.fixture
def admin_page(page: Page, live_server: LiveServer, screenshot: Screenshot) -> Page:
    """A tab logged in as the test admin, on the queues page."""
    page.goto("/admin/login")
    screenshot(page, "login")
    log_in(page)
    expect(page).to_have_url(f"{live_server.url}/admin/")
    return page
