"""Where simulated calls go: into the app in this process (default), or to a running server (`--url`).

In-process, the simulator builds the app on a throw-away SQLite database and in-process Redis, with
its own clock (set to `--at` and moved by the simulation) and its own stand-in for Twilio's REST API,
so QA can call "on Christmas morning" without touching any real data. Over HTTP, requests are signed
with `TWILIO_AUTH_TOKEN` exactly as Twilio signs them (or sent unsigned to a development server).
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

from argon2 import PasswordHasher, profiles
from flask import Flask
from twilio.request_validator import RequestValidator

from ivr.audio import clip_seconds
from ivr.clock import FrozenClock
from ivr.config import Settings
from ivr.credentials import PinStore
from ivr.db import Database
from ivr.exchange.reference import ReferenceExchange
from ivr.queue import connect
from ivr.rules.bundle import Bundle
from ivr.rules.check import voice_table
from ivr.rules.schema import Rules
from ivr.simulator.engine import (
    AgentBehaviour,
    Record,
    Reply,
    SimulationError,
    Simulator,
)
from ivr.simulator.exchange import ExchangeSetup, codes_for, simulated_exchange
from ivr.simulator.rest import TwilioRest

SIMULATED_BASE_URL = "http://ivr.simulator"
SIMULATED_TOKEN = "simulator-auth-token"
SIMULATED_ACCOUNT = "AC" + "5" * 32
DEFAULT_AGENT = AgentBehaviour()
APP_SEES_URL = "http://internal:8000"
"""With a public URL of its own, the address the app is reached at behind the simulated proxy."""
SIMULATED_AGENT_PIN = "480613"
"""Every agent's PIN in a simulation (its own throw-away PIN file), to log in on the agent line."""


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The `X-Twilio-Signature` Twilio would send for this request."""
    return str(RequestValidator(token).compute_signature(url, params))


class InProcess:
    """Requests go straight into a Flask app (its test client), signed like Twilio's.

    Twilio signs the public URL (`base_url`). With `app_url`, the app sees another address, as
    behind a reverse proxy; `forwarded` says whether that proxy sends X-Forwarded-Proto and
    X-Forwarded-Host with the public scheme and host."""

    def __init__(
        self,
        app: Flask,
        token: str,
        base_url: str = SIMULATED_BASE_URL,
        app_url: str | None = None,
        forwarded: bool = True,
    ) -> None:
        self.client = app.test_client()
        self.token = token
        self.base_url = base_url
        self.app_url = app_url
        self.forwarded = forwarded

    def send(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        sent = {**(headers or {}), "X-Twilio-Signature": sign(self.token, url, params)}
        base = None
        if self.app_url:
            base = self.app_url
            if self.forwarded:
                sent |= {"X-Forwarded-Proto": parts.scheme, "X-Forwarded-Host": parts.netloc}
        started = time.monotonic()
        response = self.client.open(
            path, base_url=base, method=method, data=params or None, headers=sent
        )
        return Reply(
            response.status_code, response.content_type, response.data, time.monotonic() - started
        )


class OverHttp:
    """Requests go to a running server, signed with its Twilio auth token; without one, unsigned
    (a development server checks no signature). `refused` counts the requests answered 403."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.refused = 0

    def send(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        body = urlencode(params).encode() if method == "POST" else None
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        if self.token is not None:
            request.add_header("X-Twilio-Signature", sign(self.token, url, params))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        request.add_header("User-Agent", "TwilioProxy/1.1 (ivr simulate)")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                data = response.read()
                return Reply(
                    response.status,
                    response.headers.get("Content-Type"),
                    data,
                    time.monotonic() - started,
                )
        except urllib.error.HTTPError as exc:
            if exc.code == HTTPStatus.FORBIDDEN:
                self.refused += 1
            return Reply(
                exc.code, exc.headers.get("Content-Type"), exc.read(), time.monotonic() - started
            )
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SimulationError(f"cannot reach {url}: {exc}") from exc


def measure(body: bytes, url: str) -> float | None:
    """The playing time of audio the app served for `url` (None: not audio)."""
    suffix = Path(urlsplit(url).path).suffix or ".mp3"
    with tempfile.NamedTemporaryFile(suffix=suffix) as file:
        file.write(body)
        file.flush()
        return clip_seconds(Path(file.name))


def declared_clips(bundle: Bundle, base_url: str) -> dict[str, float]:
    """The lengths the rules declare for remote hold music, by absolute URL."""
    return {
        urljoin(base_url + "/", queue.hold_music): queue.hold_music_seconds
        for queue in bundle.rules.queues.values()
        if queue.hold_music and queue.hold_music_seconds
    }


class CatalogMatcher:
    """Recognises which prompt a spoken text came from, in any language, with its placeholders."""

    def __init__(self, bundle: Bundle) -> None:
        rules = bundle.rules
        known = {"brand": rules.brand, "email": rules.support_email, "website": rules.website}
        weighted: list[tuple[int, re.Pattern[str], str]] = []
        for catalog in bundle.prompts.catalogs.values():
            for prompt, text in catalog.texts.items():
                literal = len(re.sub(r"\{[a-z_]+\}", "", text))
                weighted.append((literal, _template(text, known), prompt))
        # Most literal text first: "For English, press {key}." is a language option, not an
        # instance of the generic "For {label}, press {key}.".
        weighted.sort(key=lambda item: -item[0])
        self._patterns = [(pattern, prompt) for _, pattern, prompt in weighted]

    def identify(self, text: str) -> tuple[str, dict[str, str]] | None:
        for pattern, prompt in self._patterns:
            match = pattern.fullmatch(text)
            if match:
                return prompt, match.groupdict()
        return None


def _template(text: str, known: dict[str, str]) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", " ".join(text.split()))
    pattern = ""
    for part in parts:
        name = part[1:-1] if part.startswith("{") else None
        if name in known:
            pattern += re.escape(known[name])
        elif name:
            pattern += f"(?P<{name}>.+?)" if f"(?P<{name}>" not in pattern else ".+?"
        else:
            pattern += re.escape(part)
    return re.compile(pattern, re.DOTALL)


@dataclass
class InProcessSession:
    """An app built for simulation, and the simulator driving it."""

    app: Flask
    simulator: Simulator
    clock: FrozenClock
    exchange: ReferenceExchange | None = None
    """The simulated exchange's state (codes sent, locks), when the session has one."""

    def code_for(self, number: str) -> Callable[[], str | None]:
        """What the caller from `number` reads on their phone: the exchange's latest code."""
        return codes_for(self.exchange, number) if self.exchange else lambda: None


@contextmanager
def in_process(
    at: datetime,
    rules: Path,
    prompts: Path,
    *,
    agents: tuple[str, ...] = (),
    agent: AgentBehaviour = DEFAULT_AGENT,
    play_seconds: float = 30.0,
    on_record: Callable[[Record], None] | None = None,
    rest: bool = True,
    retries: int = 0,
    status_delay: float = 0.0,
    public_url: str | None = None,
    forwarded: bool = True,
    rules_override: Callable[[Rules], Rules] | None = None,
    exchange: ExchangeSetup | None = None,
) -> Iterator[InProcessSession]:
    """The app on a throw-away database, with simulated agents logged in, and a simulator for it.

    `retries`, `status_delay`: see `Simulator`. `public_url`: Twilio requests (and signs) this URL
    while the app is reached at `APP_SEES_URL` through a proxy that forwards the public scheme and
    host (`forwarded`) or does not; the app is then not told its public URL (no PUBLIC_BASE_URL).
    `rules_override`: the app serves the rules this returns for the loaded ones (a load run's
    `--estimator` on every queue). `exchange`: the exchange hook, the reference implementation
    in-process (`ivr.simulator.exchange`); None: no hook."""
    from ivr import create_app
    from ivr.services import services

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the throw-away schema is not news
    folder = Path(tempfile.mkdtemp(prefix="ivr-simulate-"))
    database = Database(f"sqlite:///{folder}/simulation.sqlite3")
    try:
        database.upgrade()
        clock = FrozenClock(at)
        twilio = TwilioRest()
        hook, reference = simulated_exchange(exchange, clock) if exchange else (None, None)
        settings = Settings(
            database_url=str(database.url),
            twilio_auth_token=SIMULATED_TOKEN,
            state_secrets=(secrets.token_urlsafe(32),),
            twilio_account_sid=SIMULATED_ACCOUNT if rest else None,
            routing_rules=rules,
            voice_prompts=prompts,
            public_base_url=None if public_url else SIMULATED_BASE_URL,
            # Tickets are written when the simulator reads them (`shared.ticket_of`).
            writer="off",
            background=False,
            spool_dir=folder / "spool",
            agent_pins=folder / "agent_pins.json",
        )
        app = create_app(
            settings,
            clock,
            database=database,
            redis_client=connect("embedded://"),
            twilio_http_client=twilio,
            exchange=hook,
        )
        with app.app_context():
            if rules_override is not None:
                services().rules.adjust(rules_override)
            bundle = services().rules.get()
            # The cheapest argon2 cost: a simulation hashes for tests, not against guessing.
            cheap = PasswordHasher.from_parameters(profiles.CHEAPEST)
            pins = PinStore(settings.agent_pins, cheap)
            pins.set_pins({agent_id: SIMULATED_AGENT_PIN for agent_id in bundle.rules.agents})
            transport = InProcess(
                app,
                SIMULATED_TOKEN,
                public_url or SIMULATED_BASE_URL,
                APP_SEES_URL if public_url else None,
                forwarded,
            )
            simulator = Simulator(
                transport,
                at,
                clock=clock,
                matcher=CatalogMatcher(bundle),
                agent=agent,
                play_seconds=play_seconds,
                on_record=on_record,
                clips=declared_clips(bundle, transport.base_url),
                measure=measure,
                voice_problem=voice_table(bundle.rules).problem,
                retries=retries,
                status_delay=status_delay,
            )
            twilio.network = simulator
            for agent_id in agents:
                if agent_id not in bundle.rules.agents:
                    raise SimulationError(f"no agent {agent_id!r} in the rules")
                lines = bundle.rules.lines_of(bundle.rules.agents[agent_id])
                services().queue.agent_available(agent_id, lines)
            yield InProcessSession(app, simulator, clock, reference)
    finally:
        database.dispose()
        shutil.rmtree(folder, ignore_errors=True)
