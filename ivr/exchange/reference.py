"""The reference implementation of the exchange hook: **the thing an exchange replaces** with its own
back office.

The line asks the exchange four things over HTTP (`docs/exchange-hook.yaml`, OpenAPI 3.1; the
messages in `ivr.exchange.contract`). This module answers them from a few accounts kept in memory,
exactly as the contract says, so that the tests, the call simulator and a newcomer's
`ivr serve --dev` (`IVR_EXCHANGE_URL=embedded://`) have an exchange to talk to, and so that an
exchange's developers have a working example to try with curl (`ivr exchange serve`). It is not a
back office: it knows the demo accounts it is given, its codes go nowhere but `codes_sent`, and its
locks stop nothing.

What an exchange's own implementation must do:

1. Check `X-IVR-Signature` on every request (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
   body>">` keyed with the secret it shares with the line, `IVR_EXCHANGE_SECRET`) over the raw body
   as received, and answer 401 `{"error": ...}` when it is missing, wrong, or more than 5 minutes
   old (or ahead). Compare in constant time.
2. Answer 400 `{"error": ...}` to a body that is not the contract's JSON.
3. `POST /ivr/lookup`: the account of the calling number (200), or 404 for a number it does not
   know. The number is what the phone network says, which can be spoofed: a lookup only says who
   the caller claims to be, and only a verification proves it.
4. `POST /ivr/verify/start`: send a fresh random 6-digit code to the customer's app or to the phone
   number *on file* (never to the number calling, which can be spoofed), and answer the
   verification's id and the channel used.
5. `POST /ivr/verify/check`: `{"verified": true}` only for the code of that verification, within
   `CODE_VALID_SECONDS` of sending it and within `MAX_TRIES` tries; a verification that was used
   up (verified once, or tried `MAX_TRIES` times) or is unknown answers false from then on.
6. `POST /ivr/lock`: stop the account's withdrawals and logins at once, record who asked (the call,
   the ticket reference, whether the caller was verified), and answer `{"locked": true}`; asking
   again for a locked account changes nothing and answers the same (the line may retry).
7. Answer well within a second: the line waits 1.5 s at most, then goes on without the answer.
8. Never log a code, neither the one sent nor the one checked.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, TypeVar

import httpx
from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from ivr.clock import Clock, SystemClock
from ivr.exchange.client import HttpExchange
from ivr.exchange.contract import (
    MAX_AGE_SECONDS,
    PATHS,
    SIGNATURE_HEADER,
    Account,
    CodeChecked,
    Locked,
    LockRequest,
    LookupRequest,
    Verification,
    VerifyCheckRequest,
    VerifyStartRequest,
    signature_ok,
    signed_at,
    where_invalid,
)

CODE_VALID_SECONDS: Final = 300
"""How long a code sent can be checked."""
MAX_TRIES: Final = 3
"""Checks of one verification, right or wrong, before it is used up."""
MAX_BODY_BYTES: Final = 16 * 1024
EMBEDDED_BASE_URL: Final = "http://exchange.embedded"
"""The base URL the client uses for the reference in-process (any host would do: nothing is sent)."""

Channel = Literal["app", "sms"]
Message = TypeVar("Message", bound=BaseModel)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountOnFile:
    """A customer the reference implementation knows: their number, account and where codes go."""

    number: str
    account: str
    language: str | None = None
    tier: Literal["standard", "vip"] | None = None
    channel: Channel = "app"


DEMO_ACCOUNTS: Final = (
    AccountOnFile("+4915112345678", "acct-demo-de", "de-DE", "standard", "app"),
    AccountOnFile("+14155550123", "acct-demo-vip", "en-US", "vip", "sms"),
)
"""The accounts of `embedded://` and `ivr exchange serve`: a German customer on the standard tier
whose codes go to the app, and an English-speaking VIP whose codes go by SMS."""


@dataclass(frozen=True)
class LockRecord:
    """Who had an account locked, and when (the first time: a repeated lock changes nothing)."""

    call: str
    reference: str
    verified: bool
    at: datetime


@dataclass
class _Verification:
    account: str
    code: str
    sent_at: float
    tries: int = 0
    used: bool = False


@dataclass
class ReferenceExchange:
    """The reference implementation's state: its accounts, the codes it sent, the locks."""

    accounts: dict[str, AccountOnFile]
    """By number."""
    clock: Clock
    deliver: Callable[[AccountOnFile, str], None] | None = None
    """Where a code goes besides `codes_sent` (`ivr exchange serve` prints it): the customer's phone."""
    codes_sent: dict[str, str] = field(default_factory=dict)
    """The latest code sent to each account (by account id): what the customer would read."""
    locks: dict[str, LockRecord] = field(default_factory=dict)
    """By account id."""
    requests: int = 0
    """Requests answered, whatever their answer."""
    _verifications: dict[str, _Verification] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def by_account(self, account: str) -> AccountOnFile | None:
        return next((a for a in self.accounts.values() if a.account == account), None)

    def lookup(self, asked: LookupRequest) -> Account | None:
        known = self.accounts.get(asked.caller)
        if known is None:
            return None
        return Account(account=known.account, language=known.language, tier=known.tier)

    def start(self, asked: VerifyStartRequest) -> Verification | None:
        known = self.by_account(asked.account)
        if known is None:
            return None
        code = f"{secrets.randbelow(10**6):06d}"
        verification = f"v-{secrets.token_hex(12)}"
        with self._lock:
            self._verifications[verification] = _Verification(known.account, code, self._now())
            self.codes_sent[known.account] = code
        if self.deliver is not None:
            self.deliver(known, code)
        return Verification(verification=verification, channel=known.channel)

    def check(self, asked: VerifyCheckRequest) -> CodeChecked:
        with self._lock:
            pending = self._verifications.get(asked.verification)
            if pending is None or pending.used:
                return CodeChecked(verified=False)
            pending.tries += 1
            fresh = self._now() - pending.sent_at <= CODE_VALID_SECONDS
            right = secrets.compare_digest(pending.code, asked.code)
            pending.used = right or pending.tries >= MAX_TRIES
            return CodeChecked(verified=right and fresh)

    def lock(self, asked: LockRequest) -> Locked | None:
        if self.by_account(asked.account) is None:
            return None
        with self._lock:
            self.locks.setdefault(
                asked.account,
                LockRecord(asked.call, asked.reference, asked.verified, self.clock.now()),
            )
        return Locked(locked=True)

    def _now(self) -> float:
        return self.clock.now().timestamp()


def create_reference_app(
    secret: str,
    accounts: Iterable[AccountOnFile] = DEMO_ACCOUNTS,
    *,
    clock: Clock | None = None,
    deliver: Callable[[AccountOnFile, str], None] | None = None,
) -> Flask:
    """The reference implementation as a WSGI app; its state is `reference_of(app)`."""
    state = ReferenceExchange({a.number: a for a in accounts}, clock or SystemClock(), deliver)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["reference_exchange"] = state

    def error(status: int, message: str) -> tuple[Response, int]:
        return jsonify(error=message), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return error(exc.code or 500, exc.description or exc.name)

    @app.before_request
    def signed() -> tuple[Response, int] | None:
        state.count_request()
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return error(401, f"{SIGNATURE_HEADER} is missing")
        at = signed_at(header)
        if at is None:
            return error(401, f"{SIGNATURE_HEADER} names no time (t=<unix seconds>)")
        if abs(state.clock.now().timestamp() - at) > MAX_AGE_SECONDS:
            return error(401, f"{SIGNATURE_HEADER} is more than {MAX_AGE_SECONDS} s old")
        if not signature_ok(secret, header, request.get_data(), state.clock.now().timestamp()):
            return error(401, f"{SIGNATURE_HEADER} does not match the body")
        return None

    def body(model: type[Message]) -> Message:
        try:
            return model.model_validate_json(request.get_data(), strict=True)
        except ValidationError as exc:
            raise BadBody(f"not a valid request: {where_invalid(exc)}") from None

    @app.post(PATHS["lookup"])
    def lookup() -> tuple[Response, int]:
        found = state.lookup(body(LookupRequest))
        if found is None:
            return error(404, "unknown number")
        return jsonify(found.model_dump(exclude_none=True)), 200

    @app.post(PATHS["verify_start"])
    def verify_start() -> tuple[Response, int]:
        started = state.start(body(VerifyStartRequest))
        if started is None:
            return error(404, "unknown account")
        return jsonify(started.model_dump()), 200

    @app.post(PATHS["verify_check"])
    def verify_check() -> tuple[Response, int]:
        return jsonify(state.check(body(VerifyCheckRequest)).model_dump()), 200

    @app.post(PATHS["lock"])
    def lock() -> tuple[Response, int]:
        locked = state.lock(body(LockRequest))
        if locked is None:
            return error(404, "unknown account")
        return jsonify(locked.model_dump()), 200

    return app


class BadBody(HTTPException):
    """400: the body is not the contract's JSON (the description says where, never what)."""

    code = 400


def reference_of(app: Flask) -> ReferenceExchange:
    """The state of an app made by `create_reference_app`: accounts, codes sent, locks."""
    state: ReferenceExchange = app.extensions["reference_exchange"]
    return state


class EmbeddedExchange(HttpExchange):
    """`IVR_EXCHANGE_URL=embedded://`: the line's client talking to the reference implementation in
    this process, through httpx's WSGI transport (signed, validated, timed as over the network).
    The demo accounts' codes are in `reference.codes_sent`, for the simulator and the tests."""

    def __init__(
        self,
        secret: str,
        clock: Clock,
        accounts: Iterable[AccountOnFile] = DEMO_ACCOUNTS,
    ) -> None:
        self.app = create_reference_app(secret, accounts, clock=clock)
        self.reference = reference_of(self.app)
        super().__init__(
            EMBEDDED_BASE_URL,
            secret,
            transport=httpx.WSGITransport(app=self.app),
            clock=clock,  # both sides date signatures and codes by the line's clock
        )
