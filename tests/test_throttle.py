"""One policy for every secret check: bounded at once, throttled per source, never unthrottled."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import NoReturn

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr.admin.accounts import AdminStore
from ivr.credentials import PinStore
from ivr.queue import CallQueue, connect
from ivr.services import Services
from ivr.throttle import (
    DELAYS,
    FREE_CHECKS,
    MAX_CONCURRENT_CHECKS,
    SecretCheck,
    admin_source,
    check_secret,
    client_source,
    delay_after,
    most_checks,
    phone_source,
)
from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER, create_admin, csrf_of
from tests.conftest import AGENT_PINS
from tests.faults import FaultProxy, RedisProcess
from tests.support import Phone, prompt_texts

DAY = 24 * 3600


class Hash:
    """A hash check that remembers it was asked."""

    def __init__(self, right: bool = True) -> None:
        self.right, self.asked = right, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.right


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["ivr"]
    return found


@pytest.fixture
def queue(app: Flask) -> CallQueue:
    return services_of(app).queue


@pytest.fixture
def checks_under_way(queue: CallQueue) -> Iterator[Callable[[], None]]:
    """Start as many secret checks as may run at once, each stuck in its hash until released."""
    release = threading.Event()
    started = threading.Semaphore(0)
    threads: list[threading.Thread] = []

    def slow_hash() -> bool:
        started.release()
        release.wait(10)
        return False

    def start() -> None:
        for n in range(MAX_CONCURRENT_CHECKS):
            thread = threading.Thread(target=check_secret, args=(queue, f"src:{n}", slow_hash))
            thread.start()
            threads.append(thread)
        for _ in threads:
            assert started.acquire(timeout=10)

    yield start
    release.set()
    for thread in threads:
        thread.join(10)


def test_a_check_that_would_wait_for_a_hash_is_answered_busy_at_once(
    queue: CallQueue, checks_under_way: Callable[[], None]
) -> None:
    checks_under_way()
    hashed = Hash()
    assert check_secret(queue, "src:flood", hashed) == SecretCheck("busy")
    assert hashed.asked == 0
    # Not counted against the source either: nothing was checked.
    assert queue.start_pin_check("src:flood", (60,), 3600) == 0


def test_no_secret_is_checked_without_the_throttle(
    queue: CallQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*args: object) -> NoReturn:
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(queue, "start_pin_check", away)
    hashed = Hash()
    assert check_secret(queue, "src:a", hashed).outcome == "unavailable"
    assert hashed.asked == 0


def test_wrong_secrets_make_the_source_wait_and_a_right_one_forgives(queue: CallQueue) -> None:
    for _ in range(FREE_CHECKS):
        assert check_secret(queue, "src:b", lambda: False).outcome == "wrong"
    waiting = check_secret(queue, "src:b", lambda: True)
    assert waiting.outcome == "throttled" and waiting.wait == 60
    assert check_secret(queue, "src:c", lambda: True).outcome == "right"  # another source


def test_the_agent_api_answers_503_at_once_while_the_checks_are_taken(
    app: Flask, agent_pins: dict[str, str], checks_under_way: Callable[[], None]
) -> None:
    checks_under_way()
    response = app.test_client().post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "too many PIN checks at once" in response.get_data(as_text=True)


def test_the_admin_login_answers_503_at_once_while_the_checks_are_taken(
    app: Flask, checks_under_way: Callable[[], None]
) -> None:
    create_admin(app)
    client = app.test_client()
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    checks_under_way()
    form = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrf": token}
    response = client.post("/admin/login", data=form)
    assert response.status_code == 503
    assert "Too many logins at once" in response.get_data(as_text=True)


def test_waits_grow_from_a_minute_to_an_hour_after_a_few_free_tries() -> None:
    assert [delay_after(n) for n in range(1, 13)] == [
        *(0, 0, 0, 0),
        *(60, 120, 240, 480, 960, 1920),
        *(3600, 3600),
    ]
    assert tuple(delay_after(n) for n in range(1, 12)) == DELAYS


def test_one_source_gets_33_pin_checks_on_its_first_day_and_24_a_day_after() -> None:
    # Eleven checks in the first 63 minutes (5 at once, then after 1+2+4+8+16+32 minutes), then one
    # an hour: 22 more before the day is over (the last at 23 h 03 min).
    assert sum(DELAYS[:10]) == 63 * 60
    assert most_checks(DAY) == 11 + (DAY - 63 * 60 - 1) // 3600 == 33
    assert most_checks(2 * DAY) - most_checks(DAY) == 24
    # Trying every 6-digit PIN takes one source 114 years (57 on average).
    year = most_checks(365 * DAY)
    assert year == 8769
    assert 10**6 // year == 114


def test_sources_are_numbers_and_addresses_an_ipv6_client_counts_as_its_network() -> None:
    assert phone_source("+4930000000104") == "phone:+4930000000104"
    assert phone_source(None) == "phone:anonymous"
    assert client_source("203.0.113.9") == "http:203.0.113.9"
    assert client_source("::ffff:203.0.113.9") == "http:203.0.113.9"
    assert client_source("2001:db8:1:2:aaaa::1") == client_source("2001:db8:1:2:bbbb::9")
    assert client_source("2001:db8:1:2::1") == "http:2001:db8:1:2::/64"
    assert client_source(None) == "http:unknown"


# --- Redis away: every check refuses the same way ------------------------------------------------


@pytest.fixture
def redis_switch() -> Iterator[FaultProxy]:
    """A private redis-server behind a fault proxy: the tests cut Redis off, never the machine's."""
    with RedisProcess() as server, FaultProxy(("127.0.0.1", server.port)) as proxy:
        yield proxy


@pytest.fixture
def redis_client(redis_switch: FaultProxy) -> redis.Redis:
    """The app's Redis is the one behind the switch (overrides conftest's for this module)."""
    return connect(f"redis://127.0.0.1:{redis_switch.port}/0")


@pytest.fixture
def no_hash_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any PIN or password is hashed: a check that cannot be counted is not made."""
    monkeypatch.setattr(PinStore, "verify", lambda *args: pytest.fail("a PIN was checked"))
    monkeypatch.setattr(AdminStore, "verify", lambda *args: pytest.fail("a password was checked"))


def agent_line(client: FlaskClient, extension: str) -> Phone:
    """Someone calls the agent line and types an extension; the PIN is asked next."""
    line = Phone(client, caller="+14155550123")
    line._post("/agent/voice")
    line.press(extension)
    return line


@pytest.mark.parametrize("fault", ["refuse", "stall"])
@pytest.mark.usefixtures("agent_pins", "no_hash_made")
def test_with_redis_away_the_agent_pin_and_the_admin_password_both_refuse_and_say_try_later(
    app: Flask, redis_switch: FaultProxy, fault: str
) -> None:
    create_admin(app)
    admin = app.test_client()
    token = csrf_of(admin.get("/admin/login").get_data(as_text=True))
    line = agent_line(app.test_client(), "102")  # Emma's extension; Redis still up so far

    getattr(redis_switch, fault)()

    # The agent on the phone hears "try later", then goodbye, and the call ends.
    line.press(AGENT_PINS["emma"])
    words = prompt_texts("en-US")
    assert line.heard[-2:] == [
        words["agent_login_unavailable"],
        "Thank you for calling BitP. Goodbye.",
    ]
    assert line.twiml is not None and line.twiml.find("Hangup") is not None

    # The agent API and the admin (form and HTTP Basic) get a 503 that says to try again shortly.
    api = app.test_client().post("/api/agents/emma/login", auth=("emma", AGENT_PINS["emma"]))
    assert api.status_code == 503
    assert "cannot be checked now" in api.get_json()["error"]
    form = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrf": token}
    page = admin.post("/admin/login", data=form)
    assert page.status_code == 503
    assert "Logging in is not possible now" in page.get_data(as_text=True)
    assert "Try again shortly" in page.get_data(as_text=True)
    basic = app.test_client().get("/admin/api/incident", auth=(ADMIN_USER, ADMIN_PASSWORD))
    assert basic.status_code == 503
    assert "try again shortly" in basic.get_json()["error"]


def test_the_policy_is_one_for_every_source(redis_switch: FaultProxy, queue: CallQueue) -> None:
    """Agent PINs (phone and API) and admin passwords: the same free tries, the same waits, the
    same refusal while Redis is away."""
    sources = [
        phone_source("+14155550123"),
        client_source("203.0.113.9"),
        admin_source("203.0.113.9"),
    ]
    for source in sources:
        outcomes = [check_secret(queue, source, lambda: False) for _ in range(FREE_CHECKS)]
        assert {found.outcome for found in outcomes} == {"wrong"}
        assert check_secret(queue, source, lambda: True) == SecretCheck("throttled", DELAYS[4])
    redis_switch.refuse()
    for source in sources:
        assert check_secret(queue, source, Hash()).outcome == "unavailable"
