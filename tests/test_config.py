"""Settings from the environment, the start-up refusal without a token, development mode, the clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_network
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr import create_app
from ivr.clock import FrozenClock, OffsetClock
from ivr.config import ConfigError, Settings
from ivr.db import Database
from tests.support import STATE_SECRET, Phone, signed_post

ROOT = Path(__file__).resolve().parents[1]
WARNING = "X-IVR-Warning"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///instance/ivr.sqlite3"
    assert settings.redis_url == "embedded://"
    assert settings.twilio_auth_token is None
    assert settings.twilio_account_sid is None
    assert settings.routing_rules == Path("routing_rules.yaml")
    assert settings.voice_prompts == Path("voice_prompts")
    assert settings.public_base_url is None
    assert settings.clock_start is None
    assert settings.dev_mode is False


@pytest.mark.parametrize(
    ("env", "attribute", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://ivr@db.internal/ivr"},
            "database_url",
            "postgresql://ivr@db.internal/ivr",
        ),
        ({"DATABASE_URL": ""}, "database_url", "sqlite:///instance/ivr.sqlite3"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis_url", "redis://127.0.0.1:6379/0"),
        ({"REDIS_URL": ""}, "redis_url", "embedded://"),
        ({"TWILIO_AUTH_TOKEN": "s3cret"}, "twilio_auth_token", "s3cret"),
        ({"TWILIO_AUTH_TOKEN": ""}, "twilio_auth_token", None),
        ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32}, "twilio_account_sid", "AC" + "1" * 32),
        ({"ROUTING_RULES": "/etc/ivr/rules.yaml"}, "routing_rules", Path("/etc/ivr/rules.yaml")),
        ({"VOICE_PROMPTS": "/srv/prompts"}, "voice_prompts", Path("/srv/prompts")),
        (
            {"PUBLIC_BASE_URL": "https://support.example.com/ivr/"},
            "public_base_url",
            "https://support.example.com/ivr",
        ),
        (
            {"PUBLIC_BASE_URL": " http://127.0.0.1:8000 "},
            "public_base_url",
            "http://127.0.0.1:8000",
        ),
        ({"PUBLIC_BASE_URL": ""}, "public_base_url", None),
        (
            {"IVR_CLOCK": "2026-12-25T09:00:00+01:00"},
            "clock_start",
            datetime(2026, 12, 25, 8, 0, tzinfo=UTC),
        ),
        (
            {"IVR_CLOCK": "2026-12-25T08:00:00Z"},
            "clock_start",
            datetime(2026, 12, 25, 8, 0, tzinfo=UTC),
        ),
        ({"IVR_CLOCK": ""}, "clock_start", None),
        (
            {"IVR_CLOCK": "2026-12-25T09:00:00+01:00@2026-12-02T01:50:00Z"},
            "clock_anchor",
            datetime(2026, 12, 2, 1, 50, tzinfo=UTC),
        ),
        ({"IVR_CLOCK": "2026-12-25T09:00:00+01:00"}, "clock_anchor", None),
        (
            {"IVR_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8 ,::1"},
            "trusted_proxies",
            tuple(ip_network(n) for n in ("127.0.0.1/32", "10.0.0.0/8", "::1/128")),
        ),
        ({"IVR_TRUSTED_PROXIES": ""}, "trusted_proxies", ()),
        ({}, "ticket_changes_retention_days", 30),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": ""}, "ticket_changes_retention_days", 30),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": " 90 "}, "ticket_changes_retention_days", 90),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": "0"}, "ticket_changes_retention_days", 0),
        ({"IVR_RULES_RELOAD_SECONDS": ""}, "rules_reload_seconds", 2.0),
        ({"IVR_RULES_RELOAD_SECONDS": "0.5"}, "rules_reload_seconds", 0.5),
        ({"IVR_DRAIN_SECONDS": ""}, "drain_seconds", 10.0),
        ({"IVR_DRAIN_SECONDS": "0"}, "drain_seconds", 0.0),
        ({"IVR_DRAIN_SECONDS": "2.5"}, "drain_seconds", 2.5),
    ],
)
def test_each_variable_is_read(env: dict[str, str], attribute: str, expected: object) -> None:
    value = getattr(Settings.from_env(env), attribute)
    assert value == expected
    if isinstance(value, datetime):
        assert value.tzinfo == UTC  # aware and in UTC, as the rest of the code expects


@pytest.mark.parametrize(
    ("value", "dev_mode"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        (" On ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
        ("2", False),
    ],
)
def test_dev_mode_flag(value: str, dev_mode: bool) -> None:
    assert Settings.from_env({"IVR_DEV_MODE": value}).dev_mode is dev_mode


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IVR_CLOCK": "next tuesday"}, "IVR_CLOCK"),
        ({"IVR_CLOCK": "2026-12-25T09:00:00"}, "IVR_CLOCK"),  # no offset: which 09:00?
        ({"IVR_CLOCK": "2026-13-25T09:00:00+01:00"}, "IVR_CLOCK"),
        ({"IVR_CLOCK": "2026-12-25T09:00:00+01:00@yesterday"}, "IVR_CLOCK"),
        ({"PUBLIC_BASE_URL": "support.example.com"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "ftp://support.example.com"}, "PUBLIC_BASE_URL"),
        ({"IVR_TRUSTED_PROXIES": "1"}, "IVR_TRUSTED_PROXIES"),  # it counted proxies once
        ({"IVR_TRUSTED_PROXIES": "nginx.internal"}, "IVR_TRUSTED_PROXIES"),
        ({"IVR_TRUSTED_PROXIES": "10.0.0.0/33"}, "IVR_TRUSTED_PROXIES"),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": "-1"}, "IVR_TICKET_CHANGES_RETENTION_DAYS"),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": "30d"}, "IVR_TICKET_CHANGES_RETENTION_DAYS"),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": "1.5"}, "IVR_TICKET_CHANGES_RETENTION_DAYS"),
        ({"IVR_TICKET_CHANGES_RETENTION_DAYS": "3651"}, "IVR_TICKET_CHANGES_RETENTION_DAYS"),
        ({"IVR_RULES_RELOAD_SECONDS": "0"}, "IVR_RULES_RELOAD_SECONDS"),
        ({"IVR_RULES_RELOAD_SECONDS": "nan"}, "IVR_RULES_RELOAD_SECONDS"),
        ({"IVR_RULES_RELOAD_SECONDS": "2s"}, "IVR_RULES_RELOAD_SECONDS"),
        ({"IVR_DRAIN_SECONDS": "-1"}, "IVR_DRAIN_SECONDS"),
        ({"IVR_DRAIN_SECONDS": "301"}, "IVR_DRAIN_SECONDS"),
        ({"IVR_DRAIN_SECONDS": "nan"}, "IVR_DRAIN_SECONDS"),
        ({"IVR_DRAIN_SECONDS": "10s"}, "IVR_DRAIN_SECONDS"),
    ],
)
def test_a_malformed_setting_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable} "):
        Settings.from_env(env)


def test_a_bad_retention_says_what_to_write() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"IVR_TICKET_CHANGES_RETENTION_DAYS": "30d"})
    assert str(refused.value) == (
        "IVR_TICKET_CHANGES_RETENTION_DAYS must be whole days from 1 to 3650, or 0 to keep "
        "ticket changes forever, got '30d'"
    )


@pytest.mark.parametrize(
    ("token", "dev_mode", "refused"),
    [
        (None, False, True),
        (None, True, False),
        ("s3cret", False, False),
        ("s3cret", True, False),
    ],
)
def test_validate_refuses_to_run_without_a_token_outside_dev_mode(
    token: str | None, dev_mode: bool, refused: bool
) -> None:
    settings = Settings(twilio_auth_token=token, dev_mode=dev_mode, state_secrets=("k" * 32,))
    if refused:
        with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
            settings.validate()
    else:
        settings.validate()


def test_the_app_does_not_start_without_a_token_outside_dev_mode(
    app_factory: Callable[..., Flask],
) -> None:
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        app_factory(twilio_auth_token=None)


# --- development mode -----------------------------------------------------------------------------


@pytest.fixture
def dev_client(app_factory: Callable[..., Flask]) -> FlaskClient:
    return app_factory(twilio_auth_token=None, dev_mode=True).test_client()


REQUESTS = [
    pytest.param(
        "POST",
        "/voice/incoming",
        {"CallSid": "CA1", "From": "+14155550100"},
        200,
        id="incoming-call",
    ),
    pytest.param(
        "POST",
        "/voice/input?step=language&tries=0",
        {"CallSid": "CA1", "Digits": "2"},
        200,
        id="keypress",
    ),
    pytest.param(
        "POST",
        "/voice/status",
        {"CallSid": "CA1", "CallStatus": "completed"},
        204,
        id="status-callback",
    ),
    pytest.param("POST", "/voice/incoming", {}, 400, id="bad-request"),
    pytest.param(
        "GET",
        "/healthz",
        {},
        200,
        id="healthz",
    ),
]


@pytest.mark.parametrize(("method", "path", "form", "status"), REQUESTS)
def test_dev_mode_serves_unsigned_requests_but_every_response_warns(
    dev_client: FlaskClient, method: str, path: str, form: dict[str, str], status: int
) -> None:
    response = dev_client.open(path, method=method, data=form)
    assert response.status_code == status
    assert "signatures are not checked" in response.headers.get(WARNING, "")


def test_dev_mode_callers_hear_the_greeting(dev_client: FlaskClient) -> None:
    response = dev_client.post("/voice/incoming", data={"CallSid": "CA1", "From": "+14155550100"})
    assert "Welcome to BitP customer support." in response.get_data(as_text=True)


def test_with_a_token_responses_carry_no_warning(client: FlaskClient) -> None:
    phone = Phone(client)
    response = signed_post(client, "/voice/incoming", phone.form())
    assert response.status_code == 200
    assert WARNING not in response.headers
    assert client.post("/voice/incoming", data=phone.form()).status_code == 403


# --- clocks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 12, 25, 9, 0, tzinfo=timezone(timedelta(hours=1))),
        datetime(2020, 2, 29, 23, 59, tzinfo=UTC),
    ],
)
def test_offset_clock_starts_at_the_chosen_instant_and_runs(start: datetime) -> None:
    clock = OffsetClock(start)
    first = clock.now()
    assert first.tzinfo == UTC
    assert timedelta(0) <= first - start < timedelta(seconds=5)
    time.sleep(0.01)
    assert clock.now() > first


def test_processes_started_apart_with_the_same_anchored_ivr_clock_keep_the_same_time() -> None:
    # Several QA instances: each started at its own moment, all on IVR_CLOCK=START@REAL.
    start, real = datetime(2026, 11, 23, 15, 0, tzinfo=UTC), datetime.now(UTC)
    first = OffsetClock(start, at=real)
    time.sleep(0.05)
    second = OffsetClock(start, at=real)
    assert abs(second.now() - first.now()) < timedelta(milliseconds=20)
    # Without the anchor each clock starts from its own start-up: they differ by the delay.
    assert OffsetClock(start).now() - first.now() < timedelta(seconds=-0.04)


def test_the_app_uses_ivr_clock(
    database: Database, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "IVR_CLOCK": "2026-12-25T09:00:00+01:00",
            "TWILIO_AUTH_TOKEN": "s3cret",
            "IVR_SECRET": STATE_SECRET,
            "ROUTING_RULES": str(ROOT / "routing_rules.yaml"),
            "VOICE_PROMPTS": str(ROOT / "voice_prompts"),
        }
    )
    app = create_app(
        settings,
        database=database,
        redis_client=redis_client,
        background=False,
        spool_dir=tmp_path,
    )
    now = datetime.fromisoformat(app.test_client().get("/healthz").get_json()["time"])
    assert timedelta(0) <= now - datetime(2026, 12, 25, 8, 0, tzinfo=UTC) < timedelta(seconds=5)


@pytest.mark.parametrize("make", [FrozenClock, OffsetClock])
def test_clocks_refuse_a_naive_datetime(make: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="aware"):
        make(datetime(2026, 12, 25, 9, 0))


def test_frozen_clock_stands_still_until_moved() -> None:
    clock = FrozenClock(datetime(2026, 12, 25, 9, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 12, 25, 8, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    clock.advance(90)
    assert clock.now() == datetime(2026, 12, 25, 8, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 12, 25, 9, 0))
    assert clock.now() == datetime(2026, 12, 25, 8, 1, 30, tzinfo=UTC)


# --- the exchange hook ------------------------------------------------------------------------

EXCHANGE_SECRET = "exchange-secret-0123456789abcdef0123"


@pytest.mark.parametrize(
    ("env", "url", "secret"),
    [
        ({}, None, None),
        ({"IVR_EXCHANGE_URL": ""}, None, None),
        ({"IVR_EXCHANGE_URL": "embedded://"}, "embedded://", None),
        (
            {
                "IVR_EXCHANGE_URL": " https://bo.exchange.example/hooks/ ",
                "IVR_EXCHANGE_SECRET": EXCHANGE_SECRET,
            },
            "https://bo.exchange.example/hooks",
            EXCHANGE_SECRET,
        ),
        (
            {"IVR_EXCHANGE_URL": "http://127.0.0.1:8099", "IVR_EXCHANGE_SECRET": EXCHANGE_SECRET},
            "http://127.0.0.1:8099",
            EXCHANGE_SECRET,
        ),
        (
            {"IVR_EXCHANGE_URL": "embedded://", "IVR_EXCHANGE_SECRET": EXCHANGE_SECRET},
            "embedded://",
            EXCHANGE_SECRET,
        ),
    ],
)
def test_the_exchange_hook_settings_are_read(
    env: dict[str, str], url: str | None, secret: str | None
) -> None:
    settings = Settings.from_env(env)
    assert (settings.exchange_url, settings.exchange_secret) == (url, secret)


def with_secret(url: str) -> dict[str, str]:
    return {"IVR_EXCHANGE_URL": url, "IVR_EXCHANGE_SECRET": EXCHANGE_SECRET}


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"IVR_EXCHANGE_URL": "https://bo.exchange.example"}, "IVR_EXCHANGE_SECRET", "is not set"),
        (
            {"IVR_EXCHANGE_URL": "https://bo.exchange.example", "IVR_EXCHANGE_SECRET": "short"},
            "IVR_EXCHANGE_SECRET",
            "at least 32 characters",
        ),
        (
            {"IVR_EXCHANGE_URL": "embedded://", "IVR_EXCHANGE_SECRET": "short"},
            "IVR_EXCHANGE_SECRET",
            "at least 32 characters",
        ),
        (with_secret("bo.exchange.example"), "IVR_EXCHANGE_URL", "http:// or https://"),
        (with_secret("ftp://bo.exchange.example"), "IVR_EXCHANGE_URL", "http://"),
        (with_secret("https://"), "IVR_EXCHANGE_URL", "names no host"),
        (with_secret("https://bo:99999"), "IVR_EXCHANGE_URL", "port"),
        (with_secret("https://bo.example/?x=1"), "IVR_EXCHANGE_URL", "query"),
    ],
)
def test_a_bad_exchange_hook_setting_is_refused_naming_its_variable(
    env: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{variable} ") as refused:
        Settings.from_env(env)
    assert says in str(refused.value)


def test_a_password_in_the_exchange_url_is_refused_without_being_repeated() -> None:
    with pytest.raises(
        ConfigError, match=r"^IVR_EXCHANGE_URL must not hold credentials"
    ) as refused:
        Settings.from_env(with_secret("https://bo:hunter2@bo.example"))
    assert "hunter2" not in str(refused.value)


def test_an_exchange_url_without_a_secret_is_refused_at_start_up_too() -> None:
    # Settings made in code (the tests, the simulator) are checked by create_app's validate().
    settings = Settings(
        twilio_auth_token="t", state_secrets=("k" * 32,), exchange_url="https://bo.example"
    )
    with pytest.raises(ConfigError, match=r"^IVR_EXCHANGE_SECRET is not set"):
        settings.validate()
    settings.with_overrides(exchange_url="embedded://").validate()  # makes one up
