"""The support line: a Flask app answering Twilio's voice webhooks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app
from redis import Redis
from twilio.http import HttpClient

from ivr.clock import Clock, OffsetClock, SystemClock
from ivr.config import Settings
from ivr.db import Database
from ivr.queue import CallQueue, connect
from ivr.rules.live import LiveRules
from ivr.switchboard import Switchboard
from ivr.telephony import Telephony, telephony_for

MAX_BODY_BYTES = 64 * 1024
"""Twilio's webhook bodies are a few kB; anything much larger is refused with 413."""


@dataclass
class Services:
    """The clients a request works with, created once in `create_app` (`app.extensions["ivr"]`)."""

    settings: Settings
    clock: Clock
    rules: LiveRules
    db: Database
    queue: CallQueue
    telephony: Telephony
    switchboard: Switchboard


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["ivr"]
    return found


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    database: Database | None = None,
    redis_client: Redis | None = None,
    twilio_http_client: HttpClient | None = None,
    **overrides: Any,
) -> Flask:
    """Build the app; raises `ConfigError` or `RulesError` when it could not serve calls correctly.

    `database`, `redis_client` and `twilio_http_client` replace the ones the settings describe
    (tests, the simulator).
    """
    settings = (settings or Settings.from_env()).with_overrides(**overrides)
    settings.validate()
    if clock is None:
        clock = OffsetClock(settings.clock_start) if settings.clock_start else SystemClock()

    app = Flask(__name__, instance_relative_config=False)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    db = database or Database(settings.database_url)
    queue = CallQueue(redis_client or connect(settings.redis_url), clock)
    telephony = telephony_for(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.public_base_url,
        twilio_http_client,
    )
    app.extensions["ivr"] = Services(
        settings=settings,
        clock=clock,
        rules=LiveRules(
            settings.routing_rules, settings.voice_prompts, clock, settings.rules_reload_seconds
        ),
        db=db,
        queue=queue,
        telephony=telephony,
        switchboard=Switchboard(queue, db, telephony, clock),
    )
    if settings.dev_mode and not settings.twilio_auth_token:
        logging.getLogger(__name__).warning(
            "IVR_DEV_MODE: Twilio signatures are NOT checked; never expose this to the internet"
        )

        @app.after_request
        def warn_unsigned(response: Response) -> Response:
            response.headers["X-IVR-Warning"] = (
                "development mode: Twilio signatures are not checked"
            )
            return response

    from ivr import agents, health, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(agents.line_bp)
    app.register_blueprint(agents.api_bp)
    app.register_blueprint(health.bp)
    return app
