"""The client's address behind reverse proxies: `X-Forwarded-For` counts only when a proxy sent it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.proxies import client_address, is_loopback, parse_networks
from tests.conftest import AGENT_PINS, ROOT

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        # A client that reaches the instance directly says what it likes: not believed.
        ("203.0.113.9", "127.0.0.1", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1, 10.0.0.5", "203.0.113.9"),
        # Through the proxy: the address the proxy saw, whatever the client put before it.
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "127.0.0.1, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.5", "198.51.100.7"),  # two proxies
        ("127.0.0.1", "not-an-address", "not-an-address"),  # never a trusted one
        ("127.0.0.1", "10.0.0.5, 10.0.0.6", "10.0.0.5"),  # all proxies: the farthest
        ("127.0.0.1", None, "127.0.0.1"),  # the proxy asking for itself
    ],
)
def test_the_client_is_the_nearest_address_no_trusted_proxy_vouches_for(
    remote: str, forwarded: str | None, client: str
) -> None:
    assert client_address(remote, forwarded, PROXIES) == client


def test_without_trusted_proxies_forwarded_for_is_never_read() -> None:
    assert client_address("127.0.0.1", "198.51.100.7", ()) == "127.0.0.1"


@pytest.mark.parametrize("text", ["1", "nginx.internal", "10.0.0.0/33", "127.0.0.1,,x"])
def test_anything_but_addresses_and_networks_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or network"):
        parse_networks(text)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        (None, False),
        ("", False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.fixture
def proxied(app_factory: Callable[..., Flask], agent_pins: dict[str, str]) -> FlaskClient:
    """The app behind nginx on this machine (IVR_TRUSTED_PROXIES=127.0.0.1)."""
    return app_factory(trusted_proxies=parse_networks("127.0.0.1")).test_client()


def from_(address: str, forwarded: str | None = None) -> dict[str, object]:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return {"environ_base": {"REMOTE_ADDR": address}, "headers": headers}


def test_a_client_reaching_an_instance_directly_cannot_pass_for_loopback_at_metrics(
    proxied: FlaskClient,
) -> None:
    assert proxied.get("/metrics", **from_("203.0.113.9", "127.0.0.1")).status_code == 403
    assert proxied.get("/metrics", **from_("127.0.0.1", "203.0.113.9")).status_code == 403
    assert proxied.get("/metrics", **from_("127.0.0.1")).status_code == 200


def test_a_client_reaching_an_instance_directly_cannot_escape_the_pin_throttle(
    proxied: FlaskClient,
) -> None:
    statuses = [
        proxied.post(
            "/api/agents/emma/login",
            auth=("emma", "000000"),
            **from_("203.0.113.9", f"198.51.100.{n}"),  # a new made-up address each time
        ).status_code
        for n in range(12)
    ]
    assert statuses[:5] == [401] * 5 and 429 in statuses
    # Through the proxy, another client is counted by its own address, not the proxy's.
    other = proxied.post(
        "/api/agents/emma/login",
        auth=("emma", AGENT_PINS["emma"]),
        **from_("127.0.0.1", "198.51.100.200"),
    )
    assert other.status_code == 200


def test_serve_listens_where_other_machines_reach_it_only_behind_a_trusted_proxy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env={"TWILIO_AUTH_TOKEN": "t" * 32, "IVR_SECRET": "s" * 32, "PATH": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot start: --host 0.0.0.0 lets clients reach gunicorn directly" in result.stderr
    assert "IVR_TRUSTED_PROXIES" in result.stderr


def test_development_mode_answers_this_machine_only_wherever_it_listens(
    app_factory: Callable[..., Flask],
) -> None:
    client = app_factory(twilio_auth_token=None, dev_mode=True).test_client()
    form = {"CallSid": "CA" + "1" * 32}
    refused = client.post("/voice/incoming", data=form, **from_("192.0.2.10"))
    assert refused.status_code == 403
    assert refused.get_data(as_text=True) == "development mode answers this machine only\n"
    assert client.post("/voice/incoming", data=form, **from_("127.0.0.1")).status_code == 200
    # Behind a trusted proxy, the connection's own address decides, not the header.
    proxied = app_factory(
        twilio_auth_token=None, dev_mode=True, trusted_proxies=parse_networks("192.0.2.0/24")
    ).test_client()
    assert (
        proxied.post("/voice/incoming", data=form, **from_("192.0.2.10", "127.0.0.1")).status_code
        == 403
    )
