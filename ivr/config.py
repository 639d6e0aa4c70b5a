"""Settings, read once from the environment into a frozen object."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ivr.clock import parse_instant
from ivr.proxies import Network, parse_networks
from ivr.queue.client import url_problem as redis_url_problem

DEFAULT_DATABASE_URL = "sqlite:///instance/ivr.sqlite3"
EMBEDDED_REDIS = "embedded://"
"""`REDIS_URL` value (and default) for an in-process Redis substitute: one process only."""
EMBEDDED_EXCHANGE = "embedded://"
"""`IVR_EXCHANGE_URL` value for the exchange hook's reference implementation in-process, with demo
accounts (`ivr.exchange.reference`): tests, the simulator, `ivr serve --dev`."""


WriterMode = Literal["thread", "off", "inline"]
WRITER_MODES: tuple[WriterMode, ...] = ("thread", "off", "inline")
"""`IVR_WRITER`: "thread" writes tickets from a thread of each serving process (the default), "off"
leaves it to `ivr worker` processes, "inline" writes after each request (tests and the simulator)."""


LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

MIN_SECRET_LENGTH = 32
NO_EXCHANGE_SECRET = (
    "IVR_EXCHANGE_SECRET is not set: the exchange hook's requests are signed with it "
    "(the same value on the exchange's side)"
)
MEMORY_RECORDS = 10_000
"""How many ticket records a process holds in memory while neither the spool nor Redis takes them
(the default of `IVR_JOURNAL_MEMORY_RECORDS`): about 10 MB, some hours of a busy line's records."""
MAX_MEMORY_RECORDS = 1_000_000
"""`IVR_JOURNAL_MEMORY_RECORDS` at most: about a gigabyte of memory."""
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
DEFAULT_DRAIN_SECONDS = 10.0
MAX_DRAIN_SECONDS = 300.0
"""`IVR_DRAIN_SECONDS` at most: five minutes of "draining" is already longer than any orchestrator
waits before it kills the process."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = EMBEDDED_REDIS
    twilio_auth_token: str | None = None
    twilio_account_sid: str | None = None
    routing_rules: Path = Path("routing_rules.yaml")
    voice_prompts: Path = Path("voice_prompts")
    public_base_url: str | None = None
    clock_start: datetime | None = None
    clock_anchor: datetime | None = None
    """The real instant `clock_start` stands for (`IVR_CLOCK=START@REAL`); None: the start-up."""
    dev_mode: bool = False
    rules_reload_seconds: float = 2.0
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    """`IVR_DRAIN_SECONDS`: after SIGTERM, how long `ivr serve` keeps taking requests while its
    `/healthz` says "draining", before it stops accepting (see `ivr.drain`)."""
    writer: WriterMode = "thread"
    spool_dir: Path = Path("instance/journal")
    journal_memory_records: int = MEMORY_RECORDS
    """`IVR_JOURNAL_MEMORY_RECORDS`: how many ticket changes a process holds in memory while neither
    the spool nor Redis takes them (beyond that, each is logged as `JOURNAL-LOST`). 0: none."""
    ticket_changes_retention_days: int = DEFAULT_RETENTION_DAYS
    """`IVR_TICKET_CHANGES_RETENTION_DAYS`: the journal records of a call whose ticket ended longer
    ago than this are deleted by the processes that write tickets (`ivr.tickets.retention`); the
    tickets and queue events stay. 0: kept forever."""
    background: bool = True
    """Run the per-process threads (ticket writer, rules reload, spool and queue upkeep). Off for tests."""
    state_secrets: tuple[str, ...] = ()
    """`IVR_SECRET`: the keys that seal the call state in webhook URLs (`ivr.signing`). The first seals,
    every one is accepted (so a key can be rotated without dropping calls on hold). Required in
    production; development mode makes one up for the process when none is set."""
    operator_number: str | None = None
    """`IVR_OPERATOR_NUMBER`: the phone number the Fallback URL (`/voice/fallback`) puts callers
    through to when the service failed them (E.164); without one they can leave a voicemail."""
    trusted_proxies: tuple[Network, ...] = ()
    """`IVR_TRUSTED_PROXIES`: the addresses or networks of the reverse proxies in front of the
    service. A request from one of them has its client address (what PIN throttles count by and
    `/metrics` checks) taken from `X-Forwarded-For` (`ivr.proxies`); from anywhere else, the
    connection's own address. Empty: no proxy is trusted. `ivr serve` listens on an address other
    machines can reach only when it is set."""
    admins: Path = Path("instance/admins.json")
    """`IVR_ADMINS`: the admin dashboard's accounts, as salted password hashes (`ivr admins
    set-password`). Never committed."""
    admin_session_minutes: int = 30
    """`IVR_ADMIN_SESSION_MINUTES`: an admin is logged out after this long without a request."""
    agent_pins: Path = Path("instance/agent_pins.json")
    """`IVR_AGENT_PINS`: the agents' PINs, as salted hashes (`ivr agents set-pin`). Never committed."""
    metrics_token: str | None = None
    """`IVR_METRICS_TOKEN`: the bearer token `/metrics` asks for; without one it answers loopback only."""
    log_format: LogFormat = "text"
    """`IVR_LOG_FORMAT`: "text" (the default) or "json", one object per line (`ivr.logs`)."""
    exchange_url: str | None = None
    """`IVR_EXCHANGE_URL`: the base URL of the exchange's back office (`ivr.exchange`), or
    `EMBEDDED_EXCHANGE`; None: no hook, the line works as it does without one."""
    exchange_secret: str | None = None
    """`IVR_EXCHANGE_SECRET`: the key both sides sign the hook's requests with. Required with a URL;
    `embedded://` makes one up when it is not set."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see docs/operators/settings.md)."""
        env = os.environ if env is None else env
        clock_start = clock_anchor = None
        if env.get("IVR_CLOCK"):
            start_text, _, anchor_text = env["IVR_CLOCK"].partition("@")
            try:
                clock_start = parse_instant(start_text)
                clock_anchor = parse_instant(anchor_text) if anchor_text else None
            except ValueError as exc:
                raise ConfigError(
                    "IVR_CLOCK must be an ISO-8601 instant with an offset, optionally followed by "
                    f"@ and the real instant it stands for, got {env['IVR_CLOCK']!r}"
                ) from exc
        base = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or None
        if base and not base.startswith(("http://", "https://")):
            raise ConfigError(f"PUBLIC_BASE_URL must start with http:// or https://, got {base!r}")
        writer = (env.get("IVR_WRITER") or "thread").strip().lower()
        if writer not in WRITER_MODES:
            raise ConfigError(
                f"IVR_WRITER must be one of {', '.join(WRITER_MODES)}, got {writer!r}"
            )
        secrets = tuple(k.strip() for k in (env.get("IVR_SECRET") or "").split(",") if k.strip())
        short = [k for k in secrets if len(k) < MIN_SECRET_LENGTH]
        if short:
            raise ConfigError(
                f"IVR_SECRET: each key must be at least {MIN_SECRET_LENGTH} characters "
                '(make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        operator = (env.get("IVR_OPERATOR_NUMBER") or "").strip() or None
        if operator is not None and not re.fullmatch(r"\+[1-9]\d{6,14}", operator):
            raise ConfigError(
                f"IVR_OPERATOR_NUMBER must be a phone number like +14155550100, got {operator!r}"
            )
        proxies_text = (env.get("IVR_TRUSTED_PROXIES") or "").strip()
        try:
            proxies = parse_networks(proxies_text)
        except ValueError as exc:
            count = " (it no longer counts the proxies)" if proxies_text.isdigit() else ""
            raise ConfigError(
                "IVR_TRUSTED_PROXIES lists the addresses or networks of the proxies in front, "
                f"like 127.0.0.1 or 10.0.0.0/8,::1{count}: {exc}"
            ) from None
        try:
            session_minutes = int(env.get("IVR_ADMIN_SESSION_MINUTES") or 30)
        except ValueError:
            session_minutes = 0
        if not 1 <= session_minutes <= 24 * 60:
            raise ConfigError(
                "IVR_ADMIN_SESSION_MINUTES must be whole minutes from 1 to 1440, "
                f"got {env.get('IVR_ADMIN_SESSION_MINUTES')!r}"
            )
        try:
            memory_records = int(env.get("IVR_JOURNAL_MEMORY_RECORDS") or MEMORY_RECORDS)
        except ValueError:
            memory_records = -1
        if not 0 <= memory_records <= MAX_MEMORY_RECORDS:
            raise ConfigError(
                "IVR_JOURNAL_MEMORY_RECORDS must be a number of records from 0 to "
                f"{MAX_MEMORY_RECORDS}, got {env.get('IVR_JOURNAL_MEMORY_RECORDS')!r}"
            )
        retention_text = (env.get("IVR_TICKET_CHANGES_RETENTION_DAYS") or "").strip()
        try:
            retention_days = int(retention_text or DEFAULT_RETENTION_DAYS)
        except ValueError:
            retention_days = -1
        if not 0 <= retention_days <= MAX_RETENTION_DAYS:
            raise ConfigError(
                "IVR_TICKET_CHANGES_RETENTION_DAYS must be whole days from 1 to "
                f"{MAX_RETENTION_DAYS}, or 0 to keep ticket changes forever, got {retention_text!r}"
            )
        reload_seconds = _seconds(env, "IVR_RULES_RELOAD_SECONDS", 2.0, 0.1, 60.0)
        drain_seconds = _seconds(
            env, "IVR_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS, 0.0, MAX_DRAIN_SECONDS
        )
        log_format = (env.get("IVR_LOG_FORMAT") or "text").strip().lower()
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"IVR_LOG_FORMAT must be text or json, got {log_format!r}")
        exchange_url, exchange_secret = _exchange_settings(env)
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL") or EMBEDDED_REDIS,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            routing_rules=Path(env.get("ROUTING_RULES") or "routing_rules.yaml"),
            voice_prompts=Path(env.get("VOICE_PROMPTS") or "voice_prompts"),
            rules_reload_seconds=reload_seconds,
            drain_seconds=drain_seconds,
            public_base_url=base,
            clock_start=clock_start,
            clock_anchor=clock_anchor,
            dev_mode=_flag(env.get("IVR_DEV_MODE")),
            writer=writer,
            spool_dir=Path(env.get("IVR_SPOOL_DIR") or "instance/journal"),
            journal_memory_records=memory_records,
            ticket_changes_retention_days=retention_days,
            state_secrets=secrets,
            operator_number=operator,
            trusted_proxies=proxies,
            admins=Path(env.get("IVR_ADMINS") or "instance/admins.json"),
            admin_session_minutes=session_minutes,
            agent_pins=Path(env.get("IVR_AGENT_PINS") or "instance/agent_pins.json"),
            metrics_token=(env.get("IVR_METRICS_TOKEN") or "").strip() or None,
            log_format=log_format,
            exchange_url=exchange_url,
            exchange_secret=exchange_secret,
        )

    def validate(self) -> None:
        """Refuse settings that would run an unprotected line by accident."""
        if not self.twilio_auth_token and not self.dev_mode:
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is not set. Set it, or set IVR_DEV_MODE=1 to run without "
                "signature checks on a development machine."
            )
        if not self.state_secrets and not self.dev_mode:
            raise ConfigError(
                "IVR_SECRET is not set: it seals the call state in webhook URLs, so that nobody can "
                "skip the menus or act for an agent. Make one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        if self.exchange_url not in (None, EMBEDDED_EXCHANGE) and not self.exchange_secret:
            raise ConfigError(NO_EXCHANGE_SECRET)
        problem = redis_url_problem(self.redis_url)
        if problem:
            raise ConfigError(f"REDIS_URL: {problem}")

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """A duration setting in seconds (`default` when unset); ConfigError naming its range when it
    is not a number from `low` to `high` (NaN included)."""
    text = (env.get(name) or "").strip()
    try:
        seconds = float(text or default)
    except ValueError:
        seconds = -1.0
    if not low <= seconds <= high:  # nan too
        raise ConfigError(f"{name} must be seconds from {low:g} to {high:g}, got {text!r}")
    return seconds


def _exchange_settings(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`IVR_EXCHANGE_URL` and `IVR_EXCHANGE_SECRET`, checked together."""
    given = (env.get("IVR_EXCHANGE_URL") or "").strip()
    secret = (env.get("IVR_EXCHANGE_SECRET") or "").strip() or None
    if not given:
        return None, secret
    url = EMBEDDED_EXCHANGE if given == EMBEDDED_EXCHANGE else given.rstrip("/")
    if url != EMBEDDED_EXCHANGE:
        problem = exchange_url_problem(url)
        if problem:
            # Never echo a URL with a password in it: error messages end up in logs.
            shown = "" if urlsplit(url).password else f", got {given!r}"
            raise ConfigError(f"IVR_EXCHANGE_URL {problem}{shown}")
        if secret is None:
            raise ConfigError(NO_EXCHANGE_SECRET)
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"IVR_EXCHANGE_SECRET must be at least {MIN_SECRET_LENGTH} characters "
            '(make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return url, secret


def exchange_url_problem(url: str) -> str | None:
    """What is wrong with an exchange hook's base URL (http or https, a host, nothing else)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"must start with http:// or https:// (or be {EMBEDDED_EXCHANGE})"
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port that is not one
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    if not parts.hostname:
        return "names no host"
    if parts.username or parts.password:
        return "must not hold credentials (requests are signed with IVR_EXCHANGE_SECRET)"
    if parts.query or parts.fragment:
        return "must not have a query or a fragment"
    return None
