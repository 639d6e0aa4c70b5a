"""The clients a request works with, and the accessor views use to reach them.

Apart from the factory (`ivr.app`), like flaskr's `db.py`, so that importing a view's helpers never
imports the factory, and the pure modules (`ivr.flow`, `ivr.hours`) import nothing of Flask at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from flask import current_app

if TYPE_CHECKING:
    from ivr.clock import Clock
    from ivr.config import Settings
    from ivr.credentials import PinStore
    from ivr.db import Database, DatabaseHealth
    from ivr.exchange.callers import KnownCallers
    from ivr.exchange.hook import Exchange
    from ivr.queue import CallQueue
    from ivr.rules.live import LiveRules
    from ivr.signing import Signer
    from ivr.switchboard import Switchboard
    from ivr.telephony import Telephony
    from ivr.tickets.journal import Journal
    from ivr.tickets.references import References
    from ivr.tickets.writer import TicketWriter


class Threads(Protocol):
    """The process's background threads (`ivr.background.Background`), as the services see them."""

    def running(self) -> bool: ...

    def ensure_started(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def finish(self, timeout: float = 5.0) -> None: ...


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
    health: DatabaseHealth
    signer: Signer
    pins: PinStore
    exchange: Exchange
    """The exchange's back office (`ivr.exchange`): `NoExchange` when `IVR_EXCHANGE_URL` is unset."""
    known: KnownCallers
    """What the exchange said of each call's caller, and what they did (verified, locked)."""
    background: Threads | None = None
    """The process's threads; None until `create_app` (or `ivr worker`) made them."""


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["ivr"]
    return found
