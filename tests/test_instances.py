"""Two `ivr serve` instances behind a real nginx, on one database and one Redis.

Twilio reaches the service at its public URL, the proxy's; nginx hands each webhook to either
instance (round-robin), so one call's webhooks land on both. Callers, agents and tickets must not
notice: positions, the agent's turn and the tickets agree whichever instance answers. The instances
learn the public URL from the proxy's X-Forwarded-Proto / X-Forwarded-Host headers, which is what
their signature check is computed on.

On CI the database is PostgreSQL (`TEST_DATABASE_URL`); without it both instances share one SQLite
file, which is enough for this test but not how to run several instances in production.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.db import Database
from ivr.tickets.changes import Outcome
from ivr.tickets.models import Ticket
from ivr.tickets.reads import get_ticket
from tests.conftest import AGENT_PINS, ROOT, write_agent_pins
from tests.faults import RedisProcess, SlowClients, wait_until
from tests.instances import HttpPhone, Instance, Nginx, agent_request, nginx_binary
from tests.support import AUTH_TOKEN, STATE_SECRET, reference_in, write_rules

MENU_PATH = ["language:2", "main:2", "funds:1"]
_NOT_INHERITED = (
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "IVR_DEV_MODE",
    "IVR_WRITER",
    "IVR_CLOCK",
    "IVR_EXCHANGE_URL",
)
"""Kept out of the instances' environment: no REST credentials, so an agent's turn reaches the
caller at their next hold round; the public URL comes from the proxy's headers; the machine's clock,
the same for both (`IVR_CLOCK` would start each instance's clock from its own start-up moment); no
exchange hook (with one, every call opens with a second of silence while the exchange is asked)."""
ALWAYS_OPEN = (
    '    weekly: {mon-fri: "08:00-20:00"}\n    holidays: {country: US}',
    "    weekly: always",
)
"""The English-speaking team answers at any hour, so the test runs on the real clock."""


@dataclass
class Site:
    """nginx in front of two instances, as an operator would run them."""

    nginx: Nginx
    instances: list[Instance]
    database: Database
    references: dict[str, str | None] = field(default_factory=dict)
    """The ticket reference each call's first webhook URLs carry, by CallSid."""

    def call_to_queue(self, caller: str) -> HttpPhone:
        """A caller who picks English, funds, deposit, and hears the first hold round."""
        phone = HttpPhone(base_url=self.nginx.url, caller=caller)
        phone.dial()
        self.references[phone.sid] = reference_in(phone.twiml)
        for key in ("2", "2", "1"):
            phone.press(key)
        phone.follow()  # "please hold" -> the first hold round
        return phone

    def ticket(self, phone: HttpPhone) -> Ticket | None:
        with self.database.sessions() as session:
            return get_ticket(session, phone.sid)

    def ticket_count(self) -> int:
        with self.database.sessions() as session:
            return session.scalar(select(func.count()).select_from(Ticket)) or 0


def _environment(
    database: Database, redis_url: str, rules: Path, tmp_path: Path, name: str
) -> dict[str, str]:
    """One instance's settings: the same secret, token, PINs, database and Redis as the others."""
    inherited = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    return {
        **inherited,
        "DATABASE_URL": database.url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET": STATE_SECRET,
        "IVR_TRUSTED_PROXIES": "127.0.0.1",
        "IVR_AGENT_PINS": str(tmp_path / "agent_pins.json"),
        "IVR_SPOOL_DIR": str(tmp_path / name / "spool"),  # each instance spools on its own disk
        "ROUTING_RULES": str(rules),
        "VOICE_PROMPTS": str(ROOT / "voice_prompts"),
    }


@pytest.fixture
def site(database: Database, tmp_path: Path) -> Iterator[Site]:
    write_agent_pins(tmp_path / "agent_pins.json")
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    instances: list[Instance] = []
    nginx: Nginx | None = None
    with RedisProcess() as redis_server:
        try:
            for name in ("a", "b"):
                env = _environment(database, redis_server.url, rules, tmp_path, name)
                instances.append(Instance.start(env, tmp_path / f"{name}.log"))
            for instance in instances:
                instance.wait_ready()
            nginx = Nginx(tmp_path / "nginx", [instance.port for instance in instances])
            nginx.start()
            yield Site(nginx, instances, database)
        finally:
            if nginx is not None:
                nginx.stop()
            for instance in instances:
                instance.stop()


def test_calls_agents_and_tickets_agree_whichever_instance_serves_each_webhook(
    site: Site,
) -> None:
    three_callers_and_emma(site, "+1415555010", survey=5, tickets_within=20)


def three_callers_and_emma(
    site: Site, numbers: str, *, survey: int, tickets_within: float
) -> list[HttpPhone]:
    """Three callers (`numbers` + 0, 1, 2) queue through the proxy, each webhook of theirs meeting
    every instance; Emma logs in and talks to the first, who rates her `survey`; all hang up. Every
    caller hears the right place in line and every ticket comes out whole and right (within
    `tickets_within` seconds): one per call, the reference the caller was given, answered or
    abandoned. Returns the phones."""
    phones = [site.call_to_queue(f"{numbers}{n}") for n in range(3)]
    # Each hears their place in line, though the instances took turns answering the webhooks.
    assert "You are next in line." in phones[0].last_heard()
    assert "You are number 2 in line." in phones[1].last_heard()
    assert "You are number 3 in line." in phones[2].last_heard()
    instances = {f"127.0.0.1:{instance.port}" for instance in site.instances}
    served = site.nginx.served()  # nginx's access log: which instance answered each webhook
    # One nginx worker alternates between the two: every call's five webhooks met both instances.
    assert all(served[phone.sid] == instances for phone in phones), served

    # Emma logs in through the proxy; the first caller's next hold round puts them through to her.
    status, body = agent_request(site.nginx.url, "emma", AGENT_PINS["emma"], "login")
    assert status == 200, body
    assert body["call"] == phones[0].sid, body  # handed the first in line at once
    connected = phones[0].follow()
    assert connected.find("Dial") is not None, phones[0].last_heard()
    assert "Thank you for waiting." in phones[0].last_heard()
    whisper = phones[0].agent_answers()  # she picks up and hears who is calling
    reference = site.references[phones[0].sid]
    assert reference is not None and f"Ticket {' '.join(reference)}." in whisper, whisper
    # The others move up, whichever instance answers their next round.
    for phone in phones[1:]:
        phone.follow()
    assert "You are next in line." in phones[1].last_heard()
    assert "You are number 2 in line." in phones[2].last_heard()

    phones[0].conversation_ends(seconds=95)
    phones[0].press(str(survey))  # the satisfaction survey
    for phone in phones:
        phone.hang_up()

    def every_ticket_complete() -> bool:
        tickets = [site.ticket(phone) for phone in phones]
        return all(t is not None and t.ended_at and t.outcome for t in tickets) and (
            tickets[0] is not None and tickets[0].satisfaction is not None
        )

    # The instances' ticket writers, either of them.
    wait_until(every_ticket_complete, timeout=tickets_within)
    assert site.ticket_count() == len(phones)  # exactly one ticket per call, none left over
    references = set()
    for phone in phones:
        ticket = site.ticket(phone)
        assert ticket is not None
        assert ticket.menu_path == MENU_PATH and ticket.queue == "funds"
        assert ticket.queued_at is not None and ticket.ended_at is not None
        assert ticket.reference == site.references[phone.sid]  # the one the caller was given
        references.add(ticket.reference)
    assert len(references) == len(phones)
    answered = site.ticket(phones[0])
    assert answered is not None
    assert answered.outcome is Outcome.ANSWERED
    assert (answered.agent, answered.satisfaction) == ("emma", survey)
    for phone in phones[1:]:
        ticket = site.ticket(phone)
        assert ticket is not None and ticket.outcome is Outcome.ABANDONED
    return phones


def test_without_nginx_the_test_fails_naming_the_debian_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.which", lambda *args, **kwargs: None)
    with pytest.raises(AssertionError, match=r"apt-get install nginx"):
        nginx_binary()


def test_a_slow_client_flood_keeps_no_caller_waiting_behind_the_proxy(site: Site) -> None:
    # The control: the same flood straight at one instance holds every one of its threads (one
    # worker, eight threads), so a caller who reaches gunicorn directly is not answered in time.
    instance = site.instances[0]
    with SlowClients(instance.port, count=20):
        started = time.monotonic()
        with pytest.raises(OSError):  # a timeout: nobody reads the request
            urllib.request.urlopen(f"http://127.0.0.1:{instance.port}/healthz", timeout=2)
        assert time.monotonic() - started >= 2
    # What operators run (docs/operators/production.md): nginx buffers whole requests before passing them on.
    with SlowClients(site.nginx.port, count=100) as flood:
        time.sleep(1.5)  # every slow request is under way
        waits = []
        for n in range(6):
            phone = HttpPhone(base_url=site.nginx.url, caller=f"+1415555030{n}")
            started = time.monotonic()
            phone.dial()
            waits.append(time.monotonic() - started)
            assert phone.twiml is not None and phone.twiml.find("Gather") is not None
        assert flood.open() == 100  # the flood is still on
    assert max(waits) < 2.0, waits
