"""The hook's signature: what the exchange accepts and refuses (`ivr.exchange.contract`)."""

from __future__ import annotations

import hashlib
import hmac

from ivr.exchange.contract import MAX_AGE_SECONDS, signature, signature_ok, signed_at
from tests.exchange.support import SECRET

BODY = b'{"caller": "+4915112345678", "call": "CA1"}'
AT = 1_800_000_000


def test_the_signature_is_the_documented_hmac_of_the_time_and_the_raw_body() -> None:
    # docs/exchange-hook.yaml: HMAC-SHA256, keyed with the secret, of "<t>." and the raw body.
    mac = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, AT) == f"t=1800000000,v1={mac}"
    assert signed_at(signature(SECRET, BODY, AT)) == AT


def test_a_fresh_signature_is_accepted_up_to_five_minutes_either_way() -> None:
    header = signature(SECRET, BODY, AT)
    assert signature_ok(SECRET, header, BODY, now=AT)
    assert signature_ok(SECRET, header, BODY, now=AT + MAX_AGE_SECONDS)
    assert signature_ok(SECRET, header, BODY, now=AT - MAX_AGE_SECONDS)


def test_an_old_signature_is_refused() -> None:
    header = signature(SECRET, BODY, AT)
    assert not signature_ok(SECRET, header, BODY, now=AT + MAX_AGE_SECONDS + 1)


def test_a_signature_from_the_future_is_refused() -> None:
    header = signature(SECRET, BODY, AT + MAX_AGE_SECONDS + 1)
    assert not signature_ok(SECRET, header, BODY, now=AT)


def test_a_tampered_body_time_or_mac_or_another_secret_is_refused() -> None:
    header = signature(SECRET, BODY, AT)
    assert not signature_ok(SECRET, header, BODY.replace(b"678", b"679"), now=AT)
    assert not signature_ok(SECRET, header.replace(f"t={AT}", f"t={AT + 1}"), BODY, now=AT)
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    assert not signature_ok(SECRET, flipped, BODY, now=AT)
    assert not signature_ok(SECRET + "x", header, BODY, now=AT)


def test_a_malformed_header_is_refused_without_raising() -> None:
    good = signature(SECRET, BODY, AT)
    for header in ("", "garbage", f"t={AT}", f"v1={good.split('v1=')[1]}", "t=soon,v1=00"):
        assert not signature_ok(SECRET, header, BODY, now=AT), header
    # A header may carry any Latin-1 character: refused, not a TypeError from compare_digest.
    assert not signature_ok(SECRET, good + "é", BODY, now=AT)
    assert not signature_ok(SECRET, f"t={AT},v1=é", BODY, now=AT)
