"""The exchange hook in a simulation: the reference implementation in-process, up, down or slow.

`ivr simulate --exchange known=+4915112345678` (or a scenario's `exchange:`) gives the simulated line
an exchange that knows these numbers (`ivr.exchange.reference`), signed and validated as over the
network; `--exchange down` answers every request with 503, `--exchange slow` lets every request run
into the client's deadline. The code the exchange "sends" to a caller is what the caller script's
`code` keys (`ivr.simulator.caller`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from ivr.clock import Clock
from ivr.exchange.client import HttpExchange
from ivr.exchange.hook import Exchange
from ivr.exchange.reference import (
    EMBEDDED_BASE_URL,
    AccountOnFile,
    ReferenceExchange,
    create_reference_app,
    reference_of,
)

Mode = Literal["up", "down", "slow"]
MODES: tuple[Mode, ...] = ("up", "down", "slow")
_KNOWN = re.compile(
    r"^(?P<number>\+[1-9][0-9]{6,15})(?:@(?P<language>[a-z]{2,3}-[A-Z]{2}))?(?P<flags>(?::(?:vip|sms))*)$"
)


@dataclass(frozen=True)
class ExchangeSetup:
    """Which numbers the simulated exchange knows, and whether it answers."""

    known: tuple[AccountOnFile, ...] = ()
    mode: Mode = "up"


def known_account(number: str, language: str | None, vip: bool, sms: bool) -> AccountOnFile:
    """A customer of the simulated exchange (their account id is made from their number)."""
    return AccountOnFile(
        number,
        f"acct-{number.lstrip('+')}",
        language,
        "vip" if vip else "standard",
        "sms" if sms else "app",
    )


def parse_exchange(specs: Sequence[str]) -> ExchangeSetup:
    """`--exchange` values: `known=NUMBER[@LANGUAGE][:vip][:sms],...`, `down`, `slow`; ValueError
    saying what a value should look like."""
    known: list[AccountOnFile] = []
    mode: Mode = "up"
    for spec in specs:
        text = spec.strip()
        if text in MODES:
            mode = text
            continue
        if not text.startswith("known="):
            raise ValueError(
                f"--exchange {text!r}: use known=NUMBER[@LANGUAGE][:vip][:sms],... or down or slow"
            )
        for item in text.removeprefix("known=").split(","):
            match = _KNOWN.match(item.strip())
            if match is None:
                raise ValueError(
                    f"--exchange known={item!r}: a number like +4915112345678, optionally "
                    "@de-DE for its language, :vip for the VIP tier, :sms for codes by text"
                )
            flags = match["flags"] or ""
            known.append(
                known_account(match["number"], match["language"], ":vip" in flags, ":sms" in flags)
            )
    return ExchangeSetup(tuple(known), mode)


class _Faulty(httpx.BaseTransport):
    """The reference implementation, or an exchange that is down (503) or too slow (a timeout)."""

    def __init__(self, inner: httpx.BaseTransport, mode: Mode) -> None:
        self._inner = inner
        self._mode = mode

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._mode == "down":
            return httpx.Response(503, json={"error": "the exchange is down"}, request=request)
        if self._mode == "slow":
            raise httpx.ReadTimeout(
                "the simulated exchange did not answer in time", request=request
            )
        return self._inner.handle_request(request)


def simulated_exchange(setup: ExchangeSetup, clock: Clock) -> tuple[Exchange, ReferenceExchange]:
    """The line's client, talking to the reference implementation in this process as `setup` says."""
    secret = secrets.token_urlsafe(32)
    app = create_reference_app(secret, setup.known, clock=clock)
    transport = _Faulty(httpx.WSGITransport(app=app), setup.mode)
    client = HttpExchange(EMBEDDED_BASE_URL, secret, transport=transport, clock=clock)
    return client, reference_of(app)


def codes_for(reference: ReferenceExchange, number: str) -> Callable[[], str | None]:
    """The latest code the exchange sent to the customer calling from `number` (None: none)."""

    def latest() -> str | None:
        account = reference.accounts.get(number)
        return None if account is None else reference.codes_sent.get(account.account)

    return latest
