"""Sealed call state: every webhook URL the service issues carries a MAC over itself and its call.

Where a caller is in the flow travels in the webhook URLs (`flow.CallState`), so any instance can take
the next step of any call. Twilio's signature only proves that Twilio sent a request, not that the URL
was ours: anyone holding the auth token, or one captured signed URL, could send a fresh call straight
to the front of a queue. So each URL ends in `&sig=`, an HMAC under the server's secret
(`IVR_SECRET`) over the URL and the call it was issued to; a request whose URL was not issued for its
call is not obeyed (the views start the call again at the language menu).

The call a URL is bound to is its *owner*: the call that will request it. For a callback we placed,
that is the original call (carried as `origin=` in the URL itself, because the new call's sid is not
known until Twilio creates it). For the whisper, requested on the agent's leg, it is the caller's
call (Twilio's `ParentCallSid`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

SEAL_PARAM = "sig"
_SUFFIX = f"&{SEAL_PARAM}="
SEAL_MAX_AGE = 6 * 3600
"""Seconds a sealed URL is good for. A Twilio call lasts at most 4 hours unless told otherwise, and
every step issues fresh URLs; an older URL is a replay, refused whatever Redis remembers."""
CLOCK_SKEW = 60
"""Seconds a seal may come from the future: instances' clocks differ a little."""
_MAC_LENGTH = 22
"""16 bytes of HMAC-SHA256, URL-safe base64 without padding."""
CALLBACK_CODE_DIGITS = 4
"""A callback code is this many digits: short enough to hear and remember, and a caller told a
code by someone who did not hear it from us has one chance in 10,000 of hearing the right one."""


class Signer:
    """Seals and checks webhook URLs. The first key seals; every key is accepted (key rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a Signer needs at least one key")
        self._keys = tuple(key.encode() for key in keys)

    def _mac(self, key: bytes, url: str, owner: str, issued: str) -> str:
        message = f"{owner}\n{issued}\n{url}".encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def seal_of(self, url: str, owner: str, now: float) -> str:
        """The seal of `url` (a path with a query string, as the service issues it) for the call
        `owner`, issued at `now` (seconds since the epoch): `<issued>.<mac>`."""
        issued = str(int(now))
        return f"{issued}.{self._mac(self._keys[0], url, owner, issued)}"

    def seal(self, url: str, owner: str, now: float) -> str:
        """`url` with its seal appended (as the last parameter)."""
        return f"{url}{_SUFFIX}{self.seal_of(url, owner, now)}"

    def callback_code(self, call_sid: str) -> str:
        """The callback code of the call `call_sid`'s ticket: 4 digits that nobody without the
        secret can work out, the same for every request of the call (Twilio's retries too).

        A MAC, not a counter or the clock: two calls share a code only by chance (1 in 10,000 a
        pair), and a code says nothing about the next one. Told to the caller when they ask for
        a callback, then stored with the request: a new key (rotation) changes no code given."""
        message = f"callback-code\n{call_sid}".encode()
        digest = hmac.new(self._keys[0], message, hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big") % 10**CALLBACK_CODE_DIGITS
        return str(number).zfill(CALLBACK_CODE_DIGITS)

    def is_sealed(self, url: str, owner: str, now: float) -> bool:
        """True when `url` (path and query exactly as requested) was sealed by us for `owner`, and
        not longer than `SEAL_MAX_AGE` ago."""
        head, found, seal = url.rpartition(_SUFFIX)
        issued, dot, mac = seal.partition(".")
        if not found or not dot or len(mac) != _MAC_LENGTH or not issued.isdigit():
            return False
        if not -CLOCK_SKEW <= now - int(issued) <= SEAL_MAX_AGE:
            return False
        return any(
            hmac.compare_digest(mac, self._mac(key, head, owner, issued)) for key in self._keys
        )
