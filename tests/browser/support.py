"""Helpers of the browser tests: finding Chromium, the served app, logging in through the form,
simulated callers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page

from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER
from tests.support import Phone

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
"""Debian's real binary first (/usr/bin/chromium is a shell wrapper around it), then the PATH."""

Screenshot = Callable[[Page, str], None]
"""`screenshot(page, name)`: see the `screenshot` fixture."""


def find_chromium() -> str:
    """The Chromium executable (`IVR_CHROMIUM` overrides), or a failed test naming the package."""
    override = os.environ.get("IVR_CHROMIUM")
    for candidate in (override,) if override else CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(
        "the browser tests need Chromium: install Debian's `chromium` package "
        "(apt-get install chromium; .ci/run does) or point IVR_CHROMIUM at a Chromium binary",
        pytrace=False,
    )


@dataclass(frozen=True)
class LiveServer:
    """The app served over HTTP at `url`, with its own copy of the rules file at `rules`."""

    app: Flask
    url: str
    rules: Path


def log_in(page: Page, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login form, as an admin would."""
    page.goto("/admin/login")
    form = page.locator("form#login")
    form.locator("input[name=username]").fill(user)
    form.locator("input[name=password]").fill(password)
    form.get_by_role("button", name="Log in").click()


LANGUAGE_KEYS = {"zh-CN": "1", "en-US": "2", "fr-FR": "3", "de-DE": "4"}


def self_served_call(live_server: LiveServer, caller: str, language: str) -> str:
    """A whole call that asks for the support e-mail address and hangs up; its CallSid."""
    phone = Phone(live_server.app.test_client(), caller=caller)
    phone.dial()
    phone.press(LANGUAGE_KEYS[language])
    phone.press("6")  # self-service
    phone.press("2")  # the e-mail address
    phone.hang_up()
    return phone.sid


def holding_for_funds(live_server: LiveServer, caller: str) -> Phone:
    """A caller who asked about a deposit, in English, and now holds for the funds queue."""
    phone = Phone(live_server.app.test_client(), caller=caller)
    phone.dial()
    phone.press("2")  # English
    phone.press("2")  # deposits and withdrawals
    phone.press("1")  # a deposit
    return phone
