"""`create_app`: settings, clock, rules, stores and the journal, wired once into `app.extensions["ivr"]`."""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
import time
import uuid
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from redis import Redis
from sqlalchemy.exc import SQLAlchemyError
from twilio.http import HttpClient

from ivr.background import Background
from ivr.clock import Clock, clock_from
from ivr.config import EMBEDDED_EXCHANGE, Settings
from ivr.credentials import PinStore
from ivr.db import Database, DatabaseHealth
from ivr.exchange.callers import KnownCallers
from ivr.exchange.client import HttpExchange
from ivr.exchange.hook import Exchange, NoExchange
from ivr.proxies import TrustedProxies, is_loopback
from ivr.queue import CallQueue, connect
from ivr.rules.live import LiveRules
from ivr.rules.store import RulesStore
from ivr.services import Services
from ivr.signing import Signer
from ivr.switchboard import Switchboard
from ivr.telephony import telephony_for
from ivr.tickets import writes as tickets
from ivr.tickets.journal import Journal
from ivr.tickets.references import BLOCK_SIZE, References
from ivr.tickets.writer import TicketWriter

MAX_BODY_BYTES = 64 * 1024
"""Twilio's webhook bodies are a few kB; anything much larger is refused with 413."""

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    database: Database | None = None,
    redis_client: Redis | None = None,
    twilio_http_client: HttpClient | None = None,
    exchange: Exchange | None = None,
    **overrides: Any,
) -> Flask:
    """Build the app; raises `ConfigError` or `RulesError` when it could not serve calls correctly.

    `database`, `redis_client`, `twilio_http_client` and `exchange` replace the ones the settings
    describe (tests, the simulator). Nothing here waits on a store: a database that is down or
    behind is reported by `/healthz` and waited for by the ticket writer.
    """
    settings = (settings or Settings.from_env()).with_overrides(**overrides)
    settings.validate()
    if clock is None:
        clock = clock_from(settings.clock_start, settings.clock_anchor)

    app = Flask(__name__, instance_relative_config=False)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if settings.trusted_proxies:
        # The client address from X-Forwarded-For, and only when a trusted proxy sent it.
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    s = build_services(settings, clock, database, redis_client, twilio_http_client, exchange)
    app.extensions["ivr"] = s
    if s.background is not None and settings.background:
        app.before_request(s.background.ensure_started)
    else:
        _keep_references_at_hand(app, s)  # no thread will
    if settings.writer == "inline":
        _write_after_each_request(app, s)
    if settings.dev_mode and not settings.twilio_auth_token:
        logging.getLogger(__name__).warning(
            "IVR_DEV_MODE: Twilio signatures are NOT checked; never expose this to the internet"
        )

        @app.before_request
        def this_machine_only() -> Response | None:
            # Whatever server runs it and wherever it listens, development mode answers nobody
            # but this machine (the connection's own address, not one a header claims).
            connection = request.environ.get("ivr.proxy_addr", request.remote_addr)
            if is_loopback(connection):
                return None
            log.warning("IVR_DEV_MODE: refused a request from %s (this machine only)", connection)
            return Response(
                "development mode answers this machine only\n", 403, mimetype="text/plain"
            )

        @app.after_request
        def warn_unsigned(response: Response) -> Response:
            response.headers["X-IVR-Warning"] = (
                "development mode: Twilio signatures are not checked"
            )
            return response

    from ivr.metrics import install as install_metrics
    from ivr.web import agents, fallback, health, metrics, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(fallback.bp)
    app.register_blueprint(agents.line_bp)
    app.register_blueprint(agents.api_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    install_metrics(app, s)  # its registry, the webhook timing hooks, the store error counts
    _serve_admin(app, s.settings)
    return app


def _serve_admin(app: Flask, settings: Settings) -> None:
    """The admin dashboard (`ivr.web.admin`): its blueprint, and Flask's signed session cookie keyed
    with a key derived from the server key, sent to /admin only, never to scripts or other sites."""
    from ivr.web.admin import auth, views

    app.secret_key = auth.session_key(settings.state_secrets[0])
    app.session_interface = _CookieSessions()
    app.config.update(
        SESSION_COOKIE_NAME="ivr_admin",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=(settings.public_base_url or "").startswith("https://"),
    )
    app.register_blueprint(views.bp)


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, opened without building the cookie's signer when the
    request brings no cookie: every webhook opens a session, and none of Twilio's brings one."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask's own gives then, less the signer
        return super().open_session(app, request)


def start_background(app: Flask, wait_seconds: float = 1.0) -> None:
    """Start this process's threads now (not at its first request), and give the database up to
    `wait_seconds` to lease the first reference numbers, so the first caller has one too.

    Call it in the process that serves: gunicorn's worker after the fork (never with --preload)."""
    s: Services = app.extensions["ivr"]
    if s.background is None or not s.settings.background:
        return
    # Everything built so far (rules, prompts, locale data, the ORM's tables) lives as long as the
    # process: keep the garbage collector from walking it again and again while calls wait.
    gc.collect()
    gc.freeze()
    s.background.ensure_started()
    deadline = time.monotonic() + wait_seconds
    while not s.references.at_hand() and time.monotonic() < deadline:
        time.sleep(0.02)


def build_services(
    settings: Settings,
    clock: Clock,
    database: Database | None = None,
    redis_client: Redis | None = None,
    twilio_http_client: HttpClient | None = None,
    exchange: Exchange | None = None,
) -> Services:
    """The clients of one process (the app's, or `ivr worker`'s)."""
    if not settings.state_secrets:  # development mode: validate() insists on a key otherwise
        settings = settings.with_overrides(state_secrets=(_development_key(settings),))
    db = database or Database(settings.database_url)
    redis = redis_client or connect(settings.redis_url)
    queue = CallQueue(redis, clock)
    journal = Journal(redis, settings.spool_dir, memory_records=settings.journal_memory_records)

    def lease_block() -> int:
        with db.sessions() as session:
            return tickets.lease_reference_block(session, now=clock.now())

    references = References(lease_block)
    writer = TicketWriter(
        journal,
        db,
        References(lease_block),  # its own blocks: webhooks never take the ones a batch counts on
        clock,
        consumer=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
    )
    telephony = telephony_for(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.public_base_url,
        twilio_http_client,
    )
    signer = Signer(settings.state_secrets)
    rules = LiveRules(
        settings.routing_rules,
        settings.voice_prompts,
        clock,
        settings.rules_reload_seconds,
        background=settings.background,
        store=RulesStore(db, settings.voice_prompts / "audio"),
    )
    exchange = exchange or exchange_for(settings, clock)
    s = Services(
        settings=settings,
        clock=clock,
        rules=rules,
        db=db,
        queue=queue,
        journal=journal,
        references=references,
        writer=writer,
        telephony=telephony,
        switchboard=Switchboard(queue, journal, telephony, clock, signer),
        health=DatabaseHealth(db, clock),
        signer=signer,
        pins=PinStore(settings.agent_pins),
        exchange=exchange,
        known=KnownCallers(exchange, queue),
    )
    s.background = Background(s, writer=settings.writer == "thread")
    return s


def exchange_for(settings: Settings, clock: Clock) -> Exchange:
    """The exchange hook the settings name: none, the reference implementation in-process
    (`embedded://`), or the exchange's back office over HTTP."""
    if settings.exchange_url is None:
        return NoExchange()
    if settings.exchange_url == EMBEDDED_EXCHANGE:
        from ivr.exchange.reference import EmbeddedExchange

        log.info("IVR_EXCHANGE_URL=embedded://: the exchange hook is the reference implementation")
        # Its clock is the line's: the simulator's frozen time decides when a code is too old.
        return EmbeddedExchange(settings.exchange_secret or secrets.token_urlsafe(32), clock)
    assert settings.exchange_secret is not None  # Settings.from_env insists on one with a URL
    # The system clock, whatever IVR_CLOCK says: the exchange checks the signature's time.
    return HttpExchange(settings.exchange_url, settings.exchange_secret)


def _development_key(settings: Settings) -> str:
    """Development mode without `IVR_SECRET`: a key made up once and kept beside the spool (so that
    `ivr serve --dev` and `ivr worker` agree), or one for this process if it cannot be kept."""
    path = settings.spool_dir.parent / "dev-secret"
    try:
        if path.exists() and len(kept := path.read_text().strip()) >= 32:
            return kept
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key)
        log.warning("IVR_SECRET is not set: development mode seals call state with %s", path)
        return key
    except OSError:
        log.warning("IVR_SECRET is not set: sealing call state with a key made up for this process")
        return secrets.token_urlsafe(32)


def _keep_references_at_hand(app: Flask, s: Services) -> None:
    """Without background threads (tests, the simulator): lease reference blocks now and after a
    request that ran low, instead of in the `ivr-database` thread."""

    def refill() -> None:
        try:
            s.references.refill()
        except SQLAlchemyError:
            log.warning("no ticket reference block could be leased; calls go on without one")

    refill()

    @app.after_request
    def top_up(response: Response) -> Response:
        if s.references.at_hand() < BLOCK_SIZE:
            refill()
        return response


def _write_after_each_request(app: Flask, s: Services) -> None:
    """Tests: tickets are written before the response leaves (never in production)."""

    @app.after_request
    def write_tickets(response: Response) -> Response:
        try:
            s.writer.drain()
        except Exception:  # the database being away must not change what the caller gets
            log.warning("inline ticket writer: not written yet", exc_info=True)
        return response
