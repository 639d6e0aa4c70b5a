"""Twilio's REST API, faked at the `twilio` library's HTTP client interface (`twilio.http.HttpClient`):
the app's `TwilioTelephony` talks to it exactly as to Twilio, and it answers as Twilio does.

- **Update a call** (POST `/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json` with `Url`): Twilio's
  guide "Modify Calls In Progress" says an update tells "Twilio to immediately change the TwiML it's
  using in a phone call", so the call fetches `Url` now (200, the call resource). A call that is
  not in progress cannot be moved: Twilio answers error 21220, "Invalid call state", whose page
  (twilio.com/docs/api/errors/21220) says "You attempted a realtime operation on a Call that was not
  in-progress. Calls that have completed cannot be recorded or redirected."; the REST API's message
  is "Call is not in-progress. Cannot redirect." The HTTP status is assumed from Twilio's page
  "400: Bad Request" (twilio.com/docs/api/errors/400), whose causes include "The resource you are
  trying to modify has moved into a state that is no longer valid for that operation"; the 21220
  page itself names no status.
- **Create a call** (POST `.../Calls.json`): 201, the new call `queued`; the phone network places it.
- **Create a message** (POST `.../Messages.json`): 201, `queued` ("Message created without a
  Messaging Service: queued", "Outbound Message Status in Status Callbacks").
- Anything else: 404, error 20404.

Which calls exist and which are in progress is the phone network's business (`PhoneNetwork`): the
simulator is one (`Simulator.place_outbound`, `Simulator.redirect`), the tests' `tests.support.Calls`
another. Texts need no network.

Every request is recorded (`requests`, and by kind: `redirects`, `placed_calls`, `texts`; `wait_for`
waits for one sent from another thread). Twilio's bad days are injected per kind of request: `fail`
(every answer an HTTP 500, error 20500) and `hold` (answers wait until the test lets them go).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol
from urllib.parse import urlsplit

from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse

NOT_IN_PROGRESS: Final = {"code": 21220, "message": "Call is not in-progress. Cannot redirect."}
"""Twilio's answer to a redirect of a call that is not in progress (HTTP 400)."""
NOT_FOUND: Final = {"code": 20404, "message": "not found"}
INTERNAL_ERROR: Final = {"code": 20500, "message": "Internal Server Error"}
"""Twilio's answer when it fails on its side (HTTP 500), as `TwilioRest.fail` makes it."""
HELD_AT_MOST_SECONDS: Final = 30.0
"""How long a held request waits for its release at most (a test that forgets cannot hang)."""


class Kind(Enum):
    """What a request to Twilio's REST API does."""

    TEXT = "text"
    """Create a message: POST .../Messages.json."""
    PLACE = "place"
    """Create a call: POST .../Calls.json."""
    MOVE = "move"
    """Update a call (a redirect): POST .../Calls/{Sid}.json."""
    OTHER = "other"


@dataclass(frozen=True)
class RestRequest:
    """One request the app made: (method, URL, form)."""

    method: str
    url: str
    data: dict[str, str]

    @property
    def kind(self) -> Kind:
        if self.method != "POST":
            return Kind.OTHER
        if self.url.endswith("/Messages.json"):
            return Kind.TEXT
        if self.url.endswith("/Calls.json"):
            return Kind.PLACE
        if _CALL_URL.search(self.url):
            return Kind.MOVE
        return Kind.OTHER

    @property
    def call_sid(self) -> str | None:
        """The call a move acts on."""
        match = _CALL_URL.search(self.url)
        return match[1] if match else None

    @property
    def path(self) -> str:
        """The webhook path (with query) of the `Url` parameter, as the app sees it."""
        parts = urlsplit(self.data["Url"])
        return parts.path + (f"?{parts.query}" if parts.query else "")


_CALL_URL: Final = re.compile(r"/Calls/(CA\w+)\.json$")


class PhoneNetwork(Protocol):
    """The calls Twilio's REST API acts on."""

    def place_outbound(self, to: str, from_: str, url: str, status_url: str | None) -> str:
        """Place a call answered by the webhook at `url`; its sid."""
        ...

    def redirect(self, sid: str, url: str) -> bool:
        """Move the call `sid` to the webhook at `url` now; False when it is not in progress."""
        ...


class TwilioRest(HttpClient):  # type: ignore[misc]
    """Twilio's REST API for the app under test (see the module's docstring); records every
    request."""

    def __init__(self, network: PhoneNetwork | None = None) -> None:
        super().__init__(logging.getLogger(__name__), is_async=False)
        self.network = network
        """Set once the network exists (the simulator is built after the app); None: no calls."""
        self.requests: list[RestRequest] = []
        self._failing: set[Kind] = set()
        self._held: dict[Kind, threading.Event] = {}
        self._recorded = threading.Condition()

    def fail(self, *kinds: Kind) -> None:
        """From now on Twilio answers requests of `kinds` (all when none given) with HTTP 500."""
        self._failing.update(kinds if kinds else tuple(Kind))

    def hold(self, kind: Kind) -> threading.Event:
        """Requests of `kind` are answered only once the returned event is set (a slow Twilio;
        each waits `HELD_AT_MOST_SECONDS` at most)."""
        return self._held.setdefault(kind, threading.Event())

    def of_kind(self, kind: Kind) -> list[RestRequest]:
        with self._recorded:
            return [r for r in self.requests if r.kind is kind]

    def redirects(self) -> list[RestRequest]:
        return self.of_kind(Kind.MOVE)

    def placed_calls(self) -> list[RestRequest]:
        return self.of_kind(Kind.PLACE)

    def texts(self) -> list[RestRequest]:
        return self.of_kind(Kind.TEXT)

    def wait_for(self, kind: Kind, timeout: float, count: int = 1) -> list[RestRequest]:
        """The requests of `kind` once there are `count` (made on other threads), or those there
        are after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._recorded:
            while len(found := self.of_kind(kind)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._recorded.wait(left)
            return found

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
        made = RestRequest(method, uri, {str(k): str(v) for k, v in (data or {}).items()})
        with self._recorded:
            self.requests.append(made)
            self._recorded.notify_all()
        held = self._held.get(made.kind)
        if held is not None:
            held.wait(HELD_AT_MOST_SECONDS)
        if made.kind in self._failing:
            return TwilioResponse(500, json.dumps(INTERNAL_ERROR))
        return self._answer(made)

    def _answer(self, made: RestRequest) -> TwilioResponse:
        form, network = made.data, self.network
        if made.kind is Kind.TEXT:
            # Nothing of the calls changes: the text arrives on the caller's phone.
            body = {
                "sid": "SM" + secrets.token_hex(16),
                "status": "queued",
                "direction": "outbound-api",
                "to": form["To"],
                "from": form["From"],
                "body": form["Body"],
            }
            return TwilioResponse(201, json.dumps(body))
        if network is None:
            return TwilioResponse(404, json.dumps(NOT_FOUND))
        if made.kind is Kind.PLACE:
            sid = network.place_outbound(
                form["To"], form["From"], form["Url"], form.get("StatusCallback")
            )
            body = {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"]}
            return TwilioResponse(201, json.dumps(body))
        if made.kind is Kind.MOVE and made.call_sid and "Url" in form:
            if network.redirect(made.call_sid, form["Url"]):
                return TwilioResponse(
                    200, json.dumps({"sid": made.call_sid, "status": "in-progress"})
                )
            return TwilioResponse(400, json.dumps(NOT_IN_PROGRESS))
        return TwilioResponse(404, json.dumps(NOT_FOUND))
