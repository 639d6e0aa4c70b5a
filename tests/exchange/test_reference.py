"""The reference implementation answers as the contract says (`ivr.exchange.reference`): what an
exchange's developer reads to see what their own back office must do."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
from flask import Flask

from ivr.clock import FrozenClock
from ivr.exchange.contract import PATHS, SIGNATURE_HEADER, signature
from ivr.exchange.reference import (
    CODE_VALID_SECONDS,
    MAX_TRIES,
    ReferenceExchange,
    create_reference_app,
    reference_of,
)
from tests.exchange.support import CALL, GERMAN, SECRET, VIP, signed_post

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def app(clock: FrozenClock) -> Flask:
    return create_reference_app(SECRET, clock=clock)


@pytest.fixture
def exchange(app: Flask) -> ReferenceExchange:
    return reference_of(app)


def post(app: Flask, operation: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = signed_post(app, PATHS[operation], body, at=NOW.timestamp())
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()


def start(app: Flask, account: str = GERMAN.account) -> str:
    status, answer = post(app, "verify_start", {"account": account, "call": CALL})
    assert status == 200
    return str(answer["verification"])


def check(app: Flask, verification: str, code: str) -> bool:
    status, answer = post(app, "verify_check", {"verification": verification, "code": code})
    assert status == 200
    return bool(answer["verified"])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- the signature ---------------------------------------------------------------------------------


def test_a_request_without_a_signature_is_refused_with_401(app: Flask) -> None:
    response = app.test_client().post(PATHS["lookup"], json={"caller": GERMAN.number, "call": CALL})
    assert response.status_code == 401
    assert response.get_json() == {"error": f"{SIGNATURE_HEADER} is missing"}


def test_a_wrong_or_stale_signature_is_refused_with_401(app: Flask) -> None:
    body = {"caller": GERMAN.number, "call": CALL}
    for response in (
        signed_post(app, PATHS["lookup"], body, secret=SECRET + "x", at=NOW.timestamp()),
        signed_post(app, PATHS["lookup"], body, at=NOW.timestamp() - 301),
        signed_post(app, PATHS["lookup"], body, at=NOW.timestamp() + 301),
        signed_post(app, PATHS["lookup"], body, header="t=now,v1=00"),
    ):
        assert response.status_code == 401
        assert SIGNATURE_HEADER in response.get_json()["error"]


def test_the_signature_is_checked_over_the_raw_body(app: Flask) -> None:
    raw = json.dumps({"caller": GERMAN.number, "call": CALL}).encode()
    respaced = raw.replace(b", ", b",")  # the same JSON, other bytes
    response = signed_post(app, PATHS["lookup"], respaced, at=NOW.timestamp())
    assert response.status_code == 200
    header = signature(SECRET, raw, int(NOW.timestamp()))
    assert signed_post(app, PATHS["lookup"], respaced, header=header).status_code == 401


# --- bodies ----------------------------------------------------------------------------------------


def test_a_body_that_is_not_the_contracts_json_is_refused_with_400(app: Flask) -> None:
    for body in (
        b"not json",
        b"[]",
        json.dumps({"caller": "4915112345678", "call": CALL}).encode(),
        json.dumps({"caller": GERMAN.number}).encode(),
        json.dumps({"caller": 4915112345678, "call": CALL}).encode(),
    ):
        response = signed_post(app, PATHS["lookup"], body, at=NOW.timestamp())
        assert response.status_code == 400, body
        assert response.get_json()["error"].startswith("not a valid request")


def test_a_malformed_code_is_refused_without_being_repeated(app: Flask) -> None:
    verification = start(app)
    status, answer = post(app, "verify_check", {"verification": verification, "code": "12345x"})
    assert status == 400
    assert "12345x" not in json.dumps(answer)
    assert answer == {"error": "not a valid request: code"}


# --- lookup ----------------------------------------------------------------------------------------


def test_a_known_number_is_its_account_and_an_unknown_one_404(app: Flask) -> None:
    assert post(app, "lookup", {"caller": GERMAN.number, "call": CALL}) == (
        200,
        {"account": "acct-demo-de", "language": "de-DE", "tier": "standard"},
    )
    assert post(app, "lookup", {"caller": VIP.number, "call": CALL})[1]["tier"] == "vip"
    assert post(app, "lookup", {"caller": "+4930123456", "call": CALL}) == (
        404,
        {"error": "unknown number"},
    )


# --- verification ----------------------------------------------------------------------------------


def test_a_code_of_six_digits_goes_to_the_accounts_channel_and_is_kept_for_the_tests(
    app: Flask, exchange: ReferenceExchange
) -> None:
    status, answer = post(app, "verify_start", {"account": VIP.account, "call": CALL})
    assert status == 200 and answer["channel"] == "sms"
    assert post(app, "verify_start", {"account": GERMAN.account, "call": CALL})[1]["channel"] == (
        "app"
    )
    code = exchange.codes_sent[VIP.account]
    assert len(code) == 6 and code.isdigit()
    assert check(app, str(answer["verification"]), code)


def test_an_unknown_account_gets_404(app: Flask) -> None:
    assert post(app, "verify_start", {"account": "acct-nobody", "call": CALL})[0] == 404


def test_the_right_code_verifies_once(app: Flask, exchange: ReferenceExchange) -> None:
    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    assert check(app, verification, code)
    assert not check(app, verification, code)  # used up: a replayed check proves nothing


def test_three_tries_per_verification(app: Flask, exchange: ReferenceExchange) -> None:
    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    for _ in range(MAX_TRIES - 1):
        assert not check(app, verification, wrong(code))
    assert check(app, verification, code)  # the last try may still be right

    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    for _ in range(MAX_TRIES):
        assert not check(app, verification, wrong(code))
    assert not check(app, verification, code)  # too late: three wrong tries


def test_a_code_is_valid_for_some_minutes_only(
    app: Flask, exchange: ReferenceExchange, clock: FrozenClock
) -> None:
    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    clock.advance(CODE_VALID_SECONDS)
    assert check_at(app, clock, verification, code)

    clock.set(NOW)
    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    clock.advance(CODE_VALID_SECONDS + 1)
    assert not check_at(app, clock, verification, code)


def check_at(app: Flask, clock: FrozenClock, verification: str, code: str) -> bool:
    response = signed_post(
        app,
        PATHS["verify_check"],
        {"verification": verification, "code": code},
        at=clock.now().timestamp(),
    )
    assert response.status_code == 200
    return bool(response.get_json()["verified"])


def test_an_unknown_verification_is_not_verified(app: Flask) -> None:
    assert not check(app, "v-nobody", "123456")


def test_no_code_is_ever_logged(
    app: Flask, exchange: ReferenceExchange, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verification = start(app)
    code = exchange.codes_sent[GERMAN.account]
    check(app, verification, wrong(code))
    check(app, verification, code)
    assert code not in caplog.text and wrong(code) not in caplog.text


# --- lock ------------------------------------------------------------------------------------------


def test_a_lock_is_recorded_once_and_answers_the_same_when_repeated(
    app: Flask, exchange: ReferenceExchange, clock: FrozenClock
) -> None:
    body = {"account": GERMAN.account, "call": CALL, "reference": "20261123001", "verified": True}
    assert post(app, "lock", body) == (200, {"locked": True})
    first = exchange.locks[GERMAN.account]
    assert (first.call, first.reference, first.verified, first.at) == (
        CALL,
        "20261123001",
        True,
        NOW,
    )
    clock.advance(60)
    again = signed_post(app, PATHS["lock"], {**body, "verified": False}, at=clock.now().timestamp())
    assert (again.status_code, again.get_json()) == (200, {"locked": True})
    assert exchange.locks == {GERMAN.account: first}  # idempotent: the first lock stands


def test_locking_an_unknown_account_is_404(app: Flask, exchange: ReferenceExchange) -> None:
    body = {"account": "acct-nobody", "call": CALL, "reference": "20261123001", "verified": False}
    assert post(app, "lock", body)[0] == 404
    assert exchange.locks == {}


def test_without_a_clock_it_checks_signatures_against_the_system_clock() -> None:
    app = create_reference_app(SECRET)
    body = {"caller": GERMAN.number, "call": CALL}
    assert signed_post(app, PATHS["lookup"], body, at=time.time()).status_code == 200
    assert signed_post(app, PATHS["lookup"], body, at=NOW.timestamp()).status_code == 401
