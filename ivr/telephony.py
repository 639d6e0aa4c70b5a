"""Calls the service makes itself through Twilio's REST API: moving a held caller to an agent,
calling back a caller who asked for it, and texting a caller their ticket number (`ivr.texts`).

All need `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `PUBLIC_BASE_URL` (the REST API needs absolute
URLs). Without them `NoTelephony` stands in: a held caller is then connected at their next hold round
(within the queue's `announce_every` seconds) instead of at once, and callers are not offered a
callback while holding, since nobody could place it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from twilio.base.exceptions import TwilioException
from twilio.http import HttpClient
from twilio.rest import Client

log = logging.getLogger(__name__)


class Telephony(Protocol):
    enabled: bool

    def redirect(self, call_sid: str, path: str) -> bool:
        """Send a live call to the webhook at `path`; False when that could not be done."""
        ...

    def call(self, to: str, from_: str, path: str, status_path: str) -> str | None:
        """Place an outbound call answered by the webhook at `path`; its sid, or None on failure."""
        ...

    def text(self, to: str, from_: str, body: str) -> str | None:
        """Send an SMS (Twilio Messaging); its sid, or None on failure. Blocks while Twilio
        answers: call it from `ivr.texts`, never from a request."""
        ...


class NoTelephony:
    """No REST credentials: nothing is placed or moved; callers are served by the hold loop."""

    enabled = False

    def redirect(self, call_sid: str, path: str) -> bool:
        return False

    def call(self, to: str, from_: str, path: str, status_path: str) -> str | None:
        log.warning("cannot call %s back: Twilio REST credentials are not configured", to)
        return None

    def text(self, to: str, from_: str, body: str) -> str | None:
        log.warning("cannot text %s: Twilio REST credentials are not configured", to)
        return None


class TwilioTelephony:
    """The real thing, through the `twilio` library (whose HTTP client tests replace)."""

    enabled = True

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        public_base_url: str,
        http_client: HttpClient | None = None,
    ) -> None:
        self._client = Client(account_sid, auth_token, http_client=http_client)
        self._base = public_base_url.rstrip("/")

    @property
    def http_client(self) -> HttpClient:
        """The HTTP client the `twilio` library sends through: its own, or the fake a test or the
        simulator gave (`ivr.simulator.rest.TwilioRest`)."""
        client: HttpClient = self._client.http_client
        return client

    def redirect(self, call_sid: str, path: str) -> bool:
        try:
            self._client.calls(call_sid).update(url=self._base + path, method="POST")
        except TwilioException:
            log.exception("could not redirect call %s to %s", call_sid, path)
            return False
        return True

    def call(self, to: str, from_: str, path: str, status_path: str) -> str | None:
        try:
            call = self._client.calls.create(
                to=to,
                from_=from_,
                url=self._base + path,
                method="POST",
                status_callback=self._base + status_path,
                status_callback_method="POST",
            )
        except TwilioException:
            log.exception("could not call %s", to)
            return None
        sid: str = call.sid
        return sid

    def text(self, to: str, from_: str, body: str) -> str | None:
        try:
            message = self._client.messages.create(to=to, from_=from_, body=body)
        except TwilioException:
            log.exception("could not text %s", to)
            return None
        sid: str = message.sid
        return sid


def telephony_for(
    account_sid: str | None,
    auth_token: str | None,
    public_base_url: str | None,
    http_client: HttpClient | None = None,
) -> Telephony:
    """The real REST client when everything it needs is configured, else `NoTelephony`."""
    if account_sid and auth_token and public_base_url:
        return TwilioTelephony(account_sid, auth_token, public_base_url, http_client)
    return NoTelephony()
