"""Admin dashboard test helpers: one account, and logging a test client in with it."""

from __future__ import annotations

import re

from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient

from ivr.admin.accounts import AdminStore

ADMIN_USER = "ada"
ADMIN_PASSWORD = "correct horse battery"


def create_admin(app: Flask, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
    """Write the account into the app's accounts file (`IVR_ADMINS`), at argon2's cheapest cost."""
    path = app.extensions["ivr"].settings.admins
    AdminStore(path, PasswordHasher.from_parameters(profiles.CHEAPEST)).set_password(user, password)


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    if found is None:
        raise AssertionError("no CSRF field on the page")
    return found.group(1)


def login(client: FlaskClient, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """Log in through the login form (the account must exist); returns the session's CSRF token."""
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    response = client.post(
        "/admin/login", data={"username": user, "password": password, "csrf": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/admin/")
    return csrf_of(client.get("/admin/").get_data(as_text=True))
