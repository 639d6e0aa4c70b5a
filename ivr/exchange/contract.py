"""The exchange hook's contract: its requests and answers, and how a request is signed.

Every request is a `POST` of a JSON body, signed with `X-IVR-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<raw body>" with IVR_EXCHANGE_SECRET>`; the exchange refuses a signature older
than `MAX_AGE_SECONDS`. The models below are what both sides validate (extra fields in an answer are
ignored; anything else malformed is "no answer"). The published document is `docs/exchange-hook.yaml`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SIGNATURE_HEADER: Final = "X-IVR-Signature"
MAX_AGE_SECONDS: Final = 300
"""The exchange refuses a signature older (or further in the future) than this."""
PATHS: Final = {
    "lookup": "/ivr/lookup",
    "verify_start": "/ivr/verify/start",
    "verify_check": "/ivr/verify/check",
    "lock": "/ivr/lock",
}

AccountId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""The exchange's opaque id of a customer's account: never spoken, never shown to a caller."""
CallSid = Annotated[str, Field(pattern=r"^CA[A-Za-z0-9]{1,62}$")]
PhoneNumber = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,15}$")]
Code = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
"""A one-time code: 6 digits, keyed by the caller."""
VerificationId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class LookupRequest(_Message):
    caller: PhoneNumber
    call: CallSid


class Account(_Message):
    """A caller the exchange knows: `POST /ivr/lookup` answered 200."""

    account: AccountId
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}-[A-Z]{2}$")
    tier: Literal["standard", "vip"] | None = None


class VerifyStartRequest(_Message):
    account: AccountId
    call: CallSid


class Verification(_Message):
    """A code is on its way to the customer's app or phone on file."""

    verification: VerificationId
    channel: Literal["app", "sms"]


class VerifyCheckRequest(_Message):
    verification: VerificationId
    code: Code


class CodeChecked(_Message):
    verified: bool


class LockRequest(_Message):
    account: AccountId
    call: CallSid
    reference: Annotated[str, Field(pattern=r"^[0-9]{7,16}$")]
    verified: bool


class Locked(_Message):
    locked: bool


def where_invalid(error: ValidationError) -> str:
    """The fields a message failed on ("code", "account, reference"; "body" for the whole), never
    their values: a validation error's own text quotes what was sent, a code a caller keyed too."""
    return ", ".join(sorted({".".join(map(str, e["loc"])) or "body" for e in error.errors()}))


def signature(secret: str, body: bytes, at: int) -> str:
    """The `X-IVR-Signature` value of `body`, signed at unix second `at`."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def _fields(header: str) -> dict[str, str]:
    return dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)


def signed_at(header: str) -> int | None:
    """The unix second an `X-IVR-Signature` value says it was made at; None if it names none."""
    try:
        return int(_fields(header).get("t", ""))
    except ValueError:
        return None


def signature_ok(secret: str, header: str, body: bytes, now: float) -> bool:
    """Whether `header` signs `body` with `secret`, within `MAX_AGE_SECONDS` of `now`."""
    at = signed_at(header)
    if at is None or abs(now - at) > MAX_AGE_SECONDS:
        return False
    expected = signature(secret, body, at).split("v1=", 1)[1]
    # As bytes: compare_digest refuses str with characters beyond ASCII, which a header may hold.
    given = _fields(header).get("v1", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected.encode(), given)
