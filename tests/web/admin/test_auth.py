"""Nobody sees the dashboard without logging in: sessions, their timeout, CSRF, the login throttle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr.admin.accounts import AdminStore
from ivr.cli import main
from ivr.clock import FrozenClock
from ivr.throttle import FREE_CHECKS
from ivr.web.admin.views import OPEN_ENDPOINTS
from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER, create_admin, csrf_of, login
from tests.support import STATE_SECRET


@pytest.fixture
def admin_app(app: Flask) -> Flask:
    create_admin(app)
    return app


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def admin_urls(app: Flask) -> Iterator[tuple[str, str]]:
    """(method, path) of every admin URL but the login page, with made-up path arguments."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in OPEN_ENDPOINTS:
            continue
        values = {"reference": "1234567", "filename": "live.js", "version_id": 1}
        path = rule.build({k: values[k] for k in rule.arguments})[1]  # type: ignore[index]
        methods = rule.methods or set()
        method = next(m for m in ("GET", "POST", "DELETE") if m in methods)
        yield method, path


def assert_refused(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    if path.startswith("/admin/api/"):
        assert response.status_code == 401, path
        assert "error" in response.get_json()
    else:
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith("/admin/login"), path


def test_the_dashboard_has_the_pages_the_spec_names(admin_app: Flask) -> None:
    paths = {path for _, path in admin_urls(admin_app)}
    for path in (
        "/admin/",
        "/admin/today",
        "/admin/tickets",
        "/admin/tickets.csv",
        "/admin/tickets/1234567",
        "/admin/rules",
        "/admin/rules/versions/1",
        "/admin/rules/rollback",
        "/admin/rules/draft",
        "/admin/rules/promote",
        "/admin/rules/discard-draft",
        "/admin/incident",
        "/admin/incident/end",
        "/admin/logout",
        "/admin/api/incident",
        "/admin/api/queues",
        "/admin/api/today",
        "/admin/api/tickets",
    ):
        assert path in paths


def test_every_admin_url_refuses_an_anonymous_request(admin: FlaskClient) -> None:
    urls = list(admin_urls(admin.application))
    for method, path in urls:
        assert_refused(admin, method, path)


def forged_cookie(app: Flask, key: str | bytes, **values: object) -> str:
    """A session cookie as Flask would sign it with `key`."""
    other = Flask("forger")
    other.secret_key = key
    serializer = SecureCookieSessionInterface().get_signing_serializer(other)
    assert serializer is not None
    return serializer.dumps(values)


@pytest.mark.parametrize(
    "key",
    [
        "someone else's key that is long enough to pass",
        STATE_SECRET,  # the raw server key is never the cookie key
    ],
)
def test_every_admin_url_refuses_a_forged_session(
    admin: FlaskClient, clock: FrozenClock, key: str
) -> None:
    now = int(clock.now().timestamp())
    admin.set_cookie(
        "ivr_admin", forged_cookie(admin.application, key, user=ADMIN_USER, seen=now), path="/admin"
    )
    for method, path in admin_urls(admin.application):
        assert_refused(admin, method, path)


def test_a_session_expires_after_the_timeout_without_a_request(
    admin: FlaskClient, clock: FrozenClock
) -> None:
    login(admin)
    minutes = admin.application.extensions["ivr"].settings.admin_session_minutes
    clock.advance(minutes * 60 - 5)
    assert admin.get("/admin/today").status_code == 200  # still in time: and the clock restarts
    clock.advance(minutes * 60 - 5)
    assert admin.get("/admin/rules").status_code == 200
    clock.advance(minutes * 60 + 1)
    for method, path in admin_urls(admin.application):
        assert_refused(admin, method, path)


def test_right_password_logs_in_and_wrong_one_does_not(admin: FlaskClient) -> None:
    page = admin.get("/admin/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for part in (
        '<form id="login" method="post"',
        'name="username"',
        'type="password"',
        'name="csrf"',
        "Log in</button>",
    ):
        assert part in html
    wrong = admin.post(
        "/admin/login",
        data={"username": ADMIN_USER, "password": "incorrect horse", "csrf": csrf_of(html)},
    )
    assert wrong.status_code == 401
    assert "Wrong user name or password" in wrong.get_data(as_text=True)
    unknown = admin.post(
        "/admin/login",
        data={"username": "mallory", "password": ADMIN_PASSWORD, "csrf": csrf_of(html)},
    )
    assert unknown.status_code == 401
    assert admin.get("/admin/").status_code == 302
    login(admin)
    page = admin.get("/admin/")
    assert page.status_code == 200
    assert f">{ADMIN_USER}<" in page.get_data(as_text=True)


def test_login_without_the_csrf_token_is_refused(admin: FlaskClient) -> None:
    admin.get("/admin/login")
    for data in (
        {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrf": "made-up"},
    ):
        response = admin.post("/admin/login", data=data)
        assert response.status_code == 400
        assert "CSRF" in response.get_data(as_text=True)
    assert admin.get("/admin/").status_code == 302  # not logged in


def test_logout_needs_the_csrf_token_and_ends_the_session(admin: FlaskClient) -> None:
    token = login(admin)
    refused = admin.post("/admin/logout")
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    assert admin.post("/admin/logout", data={"csrf": "x" + token}).status_code == 400
    assert admin.get("/admin/").status_code == 200  # still logged in
    out = admin.post("/admin/logout", headers={"X-CSRF-Token": token})
    assert out.status_code == 302
    assert out.headers["Location"].endswith("/admin/login")
    assert_refused(admin, "GET", "/admin/")


def test_a_new_login_gets_a_new_csrf_token(admin: FlaskClient) -> None:
    before = csrf_of(admin.get("/admin/login").get_data(as_text=True))
    after = login(admin)
    assert before != after


def test_wrong_passwords_are_throttled_per_client_address(admin: FlaskClient) -> None:
    token = csrf_of(admin.get("/admin/login").get_data(as_text=True))
    for _ in range(FREE_CHECKS):
        wrong = admin.post(
            "/admin/login", data={"username": ADMIN_USER, "password": "guess", "csrf": token}
        )
        assert wrong.status_code == 401
    right = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrf": token}
    blocked = admin.post("/admin/login", data=right)
    assert blocked.status_code == 429
    assert "try again in" in blocked.get_data(as_text=True)
    elsewhere = admin.application.test_client()
    other_token = csrf_of(
        elsewhere.get("/admin/login", environ_base={"REMOTE_ADDR": "198.51.100.7"}).get_data(
            as_text=True
        )
    )
    response = elsewhere.post(
        "/admin/login",
        data={**right, "csrf": other_token},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 302  # another address is not slowed by these guesses


def test_the_session_cookie_is_httponly_strict_and_for_admin_only(admin: FlaskClient) -> None:
    login(admin)
    cookie = admin.get_cookie("ivr_admin", path="/admin")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Strict"
    assert cookie.path == "/admin"
    assert not cookie.secure  # http test app
    assert STATE_SECRET not in cookie.value


def test_the_session_cookie_is_secure_behind_https(app_factory: object) -> None:
    app = app_factory(public_base_url="https://ivr.example.com")  # type: ignore[operator]
    create_admin(app)
    client = app.test_client()
    response = client.get("/admin/login", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_admin_responses_carry_the_security_headers(admin: FlaskClient) -> None:
    for response in (admin.get("/admin/login"), admin.get("/admin/")):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"


def test_accounts_are_stored_hashed_and_owner_readable(tmp_path: Path) -> None:
    path = tmp_path / "admins.json"
    store = AdminStore(path)
    store.set_password("grace", "a long enough password")
    assert "a long enough password" not in path.read_text()
    assert "$argon2id$" in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    assert store.verify("grace", "a long enough password")
    assert not store.verify("grace", "a long enough passwort")
    assert not store.verify("nobody", "a long enough password")
    with pytest.raises(ValueError, match="at least 12"):
        store.set_password("grace", "short")
    assert store.users() == ["grace"]
    assert store.remove("grace")
    assert not store.verify("grace", "a long enough password")


def test_ivr_admins_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "admins.json"
    monkeypatch.setenv("IVR_ADMINS", str(path))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("correct horse battery\n"))
    assert main(["admins", "set-password", "ada", "--password-stdin"]) == 0
    assert AdminStore(path).verify("ada", "correct horse battery")
    assert main(["admins", "list"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ada"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    assert main(["admins", "set-password", "bob", "--password-stdin"]) == 1
    assert main(["admins", "remove", "ada"]) == 0
    assert main(["admins", "remove", "ada"]) == 1
    assert AdminStore(path).users() == []


def test_removing_an_account_ends_its_open_sessions(admin: FlaskClient, admin_app: Flask) -> None:
    login(admin)
    assert admin.get("/admin/").status_code == 200
    AdminStore(admin_app.extensions["ivr"].settings.admins).remove(ADMIN_USER)
    response = admin.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/login")


def copy_of_session(admin: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of `admin`'s session cookie (taken from the wire or disk)."""
    cookie = admin.get_cookie("ivr_admin", path="/admin")
    assert cookie is not None
    thief = admin.application.test_client()
    thief.set_cookie("ivr_admin", cookie.value, path="/admin")
    return thief


def test_a_cookie_copied_before_logout_opens_nothing_after_it(admin: FlaskClient) -> None:
    token = login(admin)
    thief = copy_of_session(admin)
    assert thief.get("/admin/").status_code == 200  # a copy works while the session lives
    assert admin.post("/admin/logout", data={"csrf": token}).status_code == 302
    for method, path in admin_urls(admin.application):
        assert_refused(thief, method, path)


def test_a_password_change_ends_the_sessions_opened_with_the_old_one(
    admin: FlaskClient, admin_app: Flask
) -> None:
    login(admin)
    create_admin(admin_app, password="a brand new passphrase")  # `ivr admins set-password ada`
    assert_refused(admin, "GET", "/admin/")
    login(admin, password="a brand new passphrase")
    assert admin.get("/admin/").status_code == 200


def test_a_session_in_constant_use_still_ends_after_twelve_hours(
    admin: FlaskClient, clock: FrozenClock
) -> None:
    login(admin)
    for _ in range(12 * 60 // 20):
        clock.advance(20 * 60)  # a request every 20 minutes keeps the idle timeout away
        assert admin.get("/admin/").status_code == 200
    clock.advance(20 * 60)
    assert_refused(admin, "GET", "/admin/")


def redis_away(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = app.extensions["ivr"].queue

    def fail(*args: object, **kwargs: object) -> NoReturn:
        raise RedisConnectionError("Redis is down")

    for method in ("start_pin_check", "pin_right", "session_ended", "end_session"):
        monkeypatch.setattr(queue, method, fail)


def test_while_redis_is_away_no_password_is_checked_and_no_session_trusted(
    admin: FlaskClient, admin_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(admin)
    redis_away(admin_app, monkeypatch)
    # One policy with the agents' PINs: wrong guesses cannot be counted, so none is checked.
    stranger = admin.application.test_client()
    token = csrf_of(stranger.get("/admin/login").get_data(as_text=True))
    right = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrf": token}
    refused = stranger.post("/admin/login", data=right)
    assert refused.status_code == 503
    assert "queue store (Redis) is away" in refused.get_data(as_text=True)
    # Whether a session was logged out cannot be asked either: it is not trusted meanwhile.
    assert_refused(admin, "GET", "/admin/")


def test_every_response_under_admin_carries_the_security_headers_even_a_404(
    admin: FlaskClient,
) -> None:
    for response in (admin.get("/admin/no-such-page"), admin.get("/admin/api/nothing")):
        assert response.status_code == 404
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_admin_slash_redirect_never_takes_its_host_from_the_request(
    admin: FlaskClient,
) -> None:
    response = admin.get("/admin", headers={"Host": "evil.example"})
    assert response.status_code == 308
    assert response.headers["Location"] == "/admin/"
