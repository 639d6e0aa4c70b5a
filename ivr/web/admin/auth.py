"""Who may see the dashboard: login against `AdminStore`, a signed session that ends, CSRF tokens.

The session is Flask's signed cookie, keyed with `session_key` (an HMAC of the server key with a
fixed label, so the cookie never shares a key with the sealed webhook URLs). It holds the user, a
random session id, a stamp of the account's password hash, a random CSRF token, when it began and
the time of the last request (the injected clock's). A session is over, whatever the cookie says:

- after `admin_session_minutes` without a request, or `MAX_SESSION_HOURS` after it began;
- once it was logged out: its id is remembered in Redis until it would have ended anyway, so a copy
  of the cookie taken before "Log out" opens nothing afterwards;
- once the account's password changed or the account was removed (`ivr admins`);
- while Redis cannot be asked whether it was logged out (a session that cannot be checked is not
  trusted).

Every POST carries the token (form field `csrf` or header `X-CSRF-Token`); the login form too, so a
page elsewhere cannot log a browser in as someone else. Passwords are checked through `ivr.throttle`,
with the agents' PINs' policy: per client address, refused when Redis is away or too many checks are
under way.
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
from ivr.services import services
from ivr.throttle import SecretCheck, admin_source, check_secret

SESSION_KEY_LABEL: Final = b"ivr admin session cookie v1"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSION_HOURS: Final = 12
"""The longest a session lasts, however busy: a copied cookie is not good for longer."""

log = logging.getLogger("ivr.admin.auth")  # the name its log lines have always carried


def session_key(server_key: str) -> bytes:
    """The key that signs admin session cookies, derived from the server key (never the key itself)."""
    return hmac.new(server_key.encode(), SESSION_KEY_LABEL, hashlib.sha256).digest()


def _now() -> float:
    return services().clock.now().timestamp()


def current_user() -> str | None:
    """The logged-in admin of this request, or None (no session, forged, over, or not checkable).

    A live session is refreshed: its idle timeout starts again from now."""
    user, seen, began = session.get("user"), session.get("seen"), session.get("began")
    if not isinstance(user, str) or not all(isinstance(t, int | float) for t in (seen, began)):
        return None
    assert isinstance(seen, int | float) and isinstance(began, int | float)
    now = _now()
    idle = now - seen > services().settings.admin_session_minutes * 60
    if idle or now - began > MAX_SESSION_HOURS * 3600 or now < seen - 60:
        session.clear()  # over: the next response drops it from the browser too
        return None
    if session.get("stamp") != _stamp(user):
        session.clear()  # its password changed, or it was removed with `ivr admins remove`
        return None
    if _logged_out(str(session.get("sid", ""))):
        session.clear()
        return None
    session["seen"] = int(now)
    return user


def _stamp(user: str) -> str | None:
    try:
        return AdminStore(services().settings.admins).stamp(user)
    except AdminFileError:
        return None  # a broken accounts file lets nobody in


def _logged_out(session_id: str) -> bool:
    try:
        return not session_id or services().queue.session_ended(session_id)
    except RedisError:
        log.warning("admin session not checked: Redis is unavailable; logged out meanwhile")
        return True


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
    session["sid"] = secrets.token_urlsafe(24)
    session["stamp"] = _stamp(user)
    session["began"] = session["seen"] = int(_now())
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def log_out() -> bool:
    """End this session, on the server too; False when the server could not remember that (Redis
    away): the browser forgets it all the same."""
    session_id = session.get("sid")
    session.clear()
    if not isinstance(session_id, str):
        return True
    try:
        services().queue.end_session(session_id, MAX_SESSION_HOURS * 3600)
    except RedisError:
        log.error("admin logout: Redis is unavailable, a copy of the session cookie stays valid")
        return False
    return True


def check_password(user: str, password: str) -> SecretCheck:
    """Whether `password` is `user`'s, checked through `ivr.throttle` for this client address;
    `AdminFileError` when the accounts file cannot be read."""
    store = AdminStore(services().settings.admins)
    source = admin_source(request.remote_addr)
    return check_secret(services().queue, source, lambda: store.verify(user, password))
