"""Twilio's REST API, faked at the `twilio` library's HTTP client interface (`twilio.http.HttpClient`):
the app's `TwilioTelephony` talks to it exactly as to Twilio, and it answers as Twilio does.

- **Update a call** (POST `/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json` with `Url`): Twilio's
  guide "Modify Calls In Progress" says an update tells "Twilio to immediately change the TwiML it's
  using in a phone call", so the call fetches `Url` now (200, the call resource). A call that is
  not in progress cannot be moved: Twilio answers error 21220, "Invalid call state", whose page
  (twilio.com/docs/api/errors/21220) says "You attempted a realtime operation on a Call that was not
  in-progress. Calls that have completed cannot be recorded or redirected."; the REST API's message
  is "Call is not in-progress. Cannot redirect." (HTTP 400).
- **Create a call** (POST `.../Calls.json`): 201, the new call `queued`; the phone network places it.
- **Create a message** (POST `.../Messages.json`): 201, `queued` ("Message created without a
  Messaging Service: queued", "Outbound Message Status in Status Callbacks").
- Anything else: 404, error 20404.

Which calls exist and which are in progress is the phone network's business (`PhoneNetwork`): the
simulator is one (`Simulator.place_outbound`, `Simulator.redirect`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Final, Protocol

from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse

NOT_IN_PROGRESS: Final = {"code": 21220, "message": "Call is not in-progress. Cannot redirect."}
"""Twilio's answer to a redirect of a call that is not in progress (HTTP 400)."""
NOT_FOUND: Final = {"code": 20404, "message": "not found"}


class PhoneNetwork(Protocol):
    """The calls Twilio's REST API acts on."""

    def place_outbound(self, to: str, from_: str, url: str, status_url: str | None) -> str:
        """Place a call answered by the webhook at `url`; its sid."""
        ...

    def redirect(self, sid: str, url: str) -> bool:
        """Move the call `sid` to the webhook at `url` now; False when it is not in progress."""
        ...


class TwilioRest(HttpClient):  # type: ignore[misc]
    """Twilio's REST API for the app under test (see the module's docstring); records every request
    as (method, URL, form)."""

    def __init__(self, network: PhoneNetwork | None = None) -> None:
        super().__init__(logging.getLogger(__name__), is_async=False)
        self.network = network
        """Set once the network exists (the simulator is built after the app); None: no calls."""
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        form = {str(k): str(v) for k, v in (data or {}).items()}
        self.requests.append((method, uri, form))
        network = self.network
        if network is None or method != "POST":
            return TwilioResponse(404, json.dumps(NOT_FOUND))
        if uri.endswith("/Messages.json"):
            # Nothing of the calls changes: the text arrives on the caller's phone.
            body = {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": form["To"]}
            return TwilioResponse(201, json.dumps(body))
        if uri.endswith("/Calls.json"):
            sid = network.place_outbound(
                form["To"], form["From"], form["Url"], form.get("StatusCallback")
            )
            body = {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"]}
            return TwilioResponse(201, json.dumps(body))
        match = re.search(r"/Calls/(CA\w+)\.json$", uri)
        if match and "Url" in form:
            if network.redirect(match[1], form["Url"]):
                return TwilioResponse(200, json.dumps({"sid": match[1], "status": "in-progress"}))
            return TwilioResponse(400, json.dumps(NOT_IN_PROGRESS))
        return TwilioResponse(404, json.dumps(NOT_FOUND))
