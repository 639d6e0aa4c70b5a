"""Who may see the dashboard: login against `AdminStore`, a signed session that times out, CSRF tokens.

The session is Flask's signed cookie, keyed with `session_key` (an HMAC of the server key with a
fixed label, so the cookie never shares a key with the sealed webhook URLs). It holds the user, a
random CSRF token and the time of the last request (the injected clock's): a session with no request
for `admin_session_minutes` is over, whatever the cookie says. Every POST carries the token (form
field `csrf` or header `X-CSRF-Token`); the login form too, so a page elsewhere cannot log a browser
in as someone else.

Wrong passwords are throttled per client address with the agents' PIN schedule (`ivr.credentials`:
a few free tries, then waits doubling from a minute to an hour), counted in Redis by the queue
package under a source of their own (`admin:` + the address).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Final

from flask import request, session
from redis.exceptions import RedisError

from ivr.admin.accounts import AdminFileError, AdminStore
from ivr.credentials import PIN_DELAYS, WINDOW_SECONDS, client_source
from ivr.services import services

SESSION_KEY_LABEL: Final = b"ivr admin session cookie v1"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger(__name__)


def session_key(server_key: str) -> bytes:
    """The key that signs admin session cookies, derived from the server key (never the key itself)."""
    return hmac.new(server_key.encode(), SESSION_KEY_LABEL, hashlib.sha256).digest()


def _now() -> float:
    return services().clock.now().timestamp()


def current_user() -> str | None:
    """The logged-in admin of this request, or None (no session, forged, or timed out).

    A live session is refreshed: its timeout starts again from now."""
    user = session.get("user")
    seen = session.get("seen")
    if not isinstance(user, str) or not isinstance(seen, int | float):
        return None
    now = _now()
    if now - seen > services().settings.admin_session_minutes * 60 or now < seen - 60:
        session.clear()  # over: the next response drops it from the browser too
        return None
    if not _still_an_account(user):
        session.clear()  # removed with `ivr admins remove`: its open sessions end with it
        return None
    session["seen"] = int(now)
    return user


def _still_an_account(user: str) -> bool:
    try:
        return user in AdminStore(services().settings.admins).users()
    except AdminFileError:
        return False  # a broken accounts file lets nobody in


def csrf_token() -> str:
    """This session's CSRF token (made on first use), for the forms of the page."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_ok() -> bool:
    """True when a safe request, or when the request carries this session's CSRF token."""
    if request.method in SAFE_METHODS:
        return True
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), sent.encode())


def log_in(user: str) -> None:
    """Start a fresh session for `user`: nothing of the anonymous one is kept, a new CSRF token."""
    session.clear()
    session["user"] = user
    session["seen"] = int(_now())
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def log_out() -> None:
    session.clear()


def _source() -> str:
    return f"admin:{client_source(request.remote_addr)}"


def wait_before_login() -> float:
    """Seconds this client must wait before its password is checked (0: go ahead; counted as wrong
    until `login_succeeded`). Without Redis the check goes ahead unthrottled (argon2 still slows it)."""
    try:
        return services().queue.start_pin_check(_source(), PIN_DELAYS, WINDOW_SECONDS)
    except RedisError:
        log.warning("admin login throttle unavailable (Redis); checking the password anyway")
        return 0.0


def login_succeeded() -> None:
    """A right password: this client's count of wrong ones starts afresh."""
    try:
        services().queue.pin_right(_source())
    except RedisError:
        log.warning("admin login throttle unavailable (Redis)")
