"""What the line asks of the exchange (`Exchange`), and the line without one (`NoExchange`).

Every method answers at once or within the hook's deadline, and never raises: `None` means "the
exchange did not answer" (unset, down, slow, refusing our signature, answering nonsense, or its
circuit breaker open), and the call goes on as if there were no hook. `KnownCaller` is what
the call flow is told of a caller the exchange knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ivr.exchange.contract import Account, Verification


class Exchange(Protocol):
    enabled: bool
    """False: no hook is configured (`IVR_EXCHANGE_URL` unset); every method answers None."""

    def lookup(self, caller: str, call: str) -> Account | None:
        """The account of the calling number; None for a number the exchange does not know (404)
        and when it did not answer."""
        ...

    def start_verification(self, account: str, call: str) -> Verification | None:
        """Have the exchange send a one-time code to the customer's app or phone on file."""
        ...

    def check_code(self, verification: str, code: str) -> bool | None:
        """Whether `code` is the one sent for `verification` (None: no answer). The code is never
        logged."""
        ...

    def lock(self, account: str, call: str, reference: str, verified: bool) -> bool | None:
        """Have the exchange stop the account's withdrawals and logins (idempotent)."""
        ...


class NoExchange:
    """No hook configured: the line behaves as it does without one."""

    enabled = False

    def lookup(self, caller: str, call: str) -> Account | None:
        return None

    def start_verification(self, account: str, call: str) -> Verification | None:
        return None

    def check_code(self, verification: str, code: str) -> bool | None:
        return None

    def lock(self, account: str, call: str, reference: str, verified: bool) -> bool | None:
        return None


@dataclass(frozen=True)
class KnownCaller:
    """A caller the exchange knows (`Exchange.lookup`): what its lookup said, and what this call did."""

    account: str
    """The exchange's opaque id of the account: recorded on the ticket, never spoken."""
    language: str | None = None
    vip: bool = False
    verified: str | None = None
    """How the caller proved who they are in this call ("app" or "sms"), once they did."""
    locked_at: datetime | None = None
    """When the exchange locked the account at this caller's request."""
