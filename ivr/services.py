"""The clients a request works with, and the accessor views use to reach them.

Apart from the factory (`ivr.app`), like flaskr's `db.py`, so that importing a view's helpers never
imports the factory, and the pure modules (`ivr.flow`, `ivr.hours`) import nothing of Flask at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from ivr.background import Background
    from ivr.clock import Clock
    from ivr.config import Settings
    from ivr.db import Database
    from ivr.health import Health
    from ivr.journal import Journal
    from ivr.queue import CallQueue
    from ivr.rules.live import LiveRules
    from ivr.switchboard import Switchboard
    from ivr.telephony import Telephony
    from ivr.tickets.references import References
    from ivr.tickets.writer import TicketWriter


@dataclass
class Services:
    """Created once in `create_app` and kept in `app.extensions["ivr"]`."""

    settings: Settings
    clock: Clock
    rules: LiveRules
    db: Database
    queue: CallQueue
    journal: Journal
    references: References
    writer: TicketWriter
    telephony: Telephony
    switchboard: Switchboard
    health: Health
    background: Background | None = None
    """The process's threads; None until `create_app` (or `ivr worker`) made them."""


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["ivr"]
    return found
