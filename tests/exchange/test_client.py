"""The line's client of the exchange hook (`ivr.exchange.client.HttpExchange`): the answers it
takes, and every way the exchange can fail it, each of which is "no answer" within the deadline,
counted, logged once, and never with a code the caller keyed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ivr.clock import FrozenClock
from ivr.exchange.client import BREAKER_FAILURES, BREAKER_SECONDS, DEADLINE_SECONDS, HttpExchange
from ivr.exchange.contract import SIGNATURE_HEADER, signature_ok
from ivr.exchange.reference import EmbeddedExchange
from tests.exchange.support import CALL, GERMAN, SECRET, VIP

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CODE = "480913"
"""What the caller keyed in the tests of failures: never in a log line or an exception."""


class FakeTime:
    """The client's monotonic clock, moved by the tests (and by a fake exchange that is slow)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The client's `on_call`: every (operation, result, seconds) it reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    def __call__(self, operation: str, result: str, seconds: float | None) -> None:
        self.calls.append((operation, result, seconds))

    @property
    def results(self) -> list[str]:
        return [result for _, result, _ in self.calls]


class Fake:
    """An exchange answering every request with `answer(request)`; counts the requests."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def client(
    answer: Callable[[httpx.Request], httpx.Response], clock: FakeTime | None = None
) -> tuple[HttpExchange, Fake, Recorder, FakeTime]:
    fake, recorder, monotonic = Fake(answer), Recorder(), clock or FakeTime()
    exchange = HttpExchange(
        "http://exchange.test/",
        SECRET,
        transport=httpx.MockTransport(fake),
        clock=FrozenClock(NOW),
        monotonic=monotonic,
        on_call=recorder,
    )
    return exchange, fake, recorder, monotonic


def ok(body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


def every_operation(exchange: HttpExchange) -> list[Any]:
    """What each method answered, the code check with `CODE`."""
    return [
        exchange.lookup(GERMAN.number, CALL),
        exchange.start_verification(GERMAN.account, CALL),
        exchange.check_code("v-1", CODE),
        exchange.lock(GERMAN.account, CALL, "20261123001", verified=True),
    ]


# --- against the reference implementation -----------------------------------------------------


@pytest.fixture
def embedded() -> EmbeddedExchange:
    return EmbeddedExchange(SECRET, FrozenClock(NOW))


def test_a_known_caller_is_verified_with_the_code_sent_and_their_account_locked(
    embedded: EmbeddedExchange,
) -> None:
    recorder = Recorder()
    embedded.on_call = recorder
    account = embedded.lookup(GERMAN.number, CALL)
    assert account is not None
    assert (account.account, account.language, account.tier) == (
        "acct-demo-de",
        "de-DE",
        "standard",
    )
    verification = embedded.start_verification(account.account, CALL)
    assert verification is not None and verification.channel == "app"
    code = embedded.reference.codes_sent[account.account]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert embedded.check_code(verification.verification, wrong) is False
    assert embedded.check_code(verification.verification, code) is True
    assert embedded.lock(account.account, CALL, "20261123001", verified=True) is True
    assert embedded.reference.locks[account.account].verified
    assert recorder.results == ["answered"] * 5
    assert embedded.problem() is None


def test_an_unknown_number_is_an_answer_not_a_failure(embedded: EmbeddedExchange) -> None:
    recorder = Recorder()
    embedded.on_call = recorder
    for _ in range(BREAKER_FAILURES + 1):
        assert embedded.lookup("+4930123456", CALL) is None
    assert recorder.results == ["unknown"] * (BREAKER_FAILURES + 1)
    assert embedded.problem() is None
    assert embedded.lookup(VIP.number, CALL) is not None  # never stopped asking


def test_a_caller_without_a_number_is_not_looked_up(embedded: EmbeddedExchange) -> None:
    # Twilio's From for a withheld number, a SIP or client caller: nothing the exchange could know.
    for caller in ("anonymous", "client:emma", "sip:alice@example.com", ""):
        assert embedded.lookup(caller, CALL) is None
    assert embedded.reference.requests == 0


def test_a_code_that_is_not_six_digits_is_wrong_without_asking(embedded: EmbeddedExchange) -> None:
    verification = embedded.start_verification(GERMAN.account, CALL)
    assert verification is not None
    for keyed in ("", "12345", "1234567", "12345*", "#"):
        assert embedded.check_code(verification.verification, keyed) is False
    assert embedded.reference.requests == 1  # the start only
    code = embedded.reference.codes_sent[GERMAN.account]
    assert embedded.check_code(verification.verification, code) is True  # no try was used


def test_requests_are_signed_posts_of_json() -> None:
    exchange, fake, _, _ = client(ok({"account": "acct-1"}))
    exchange.lookup(GERMAN.number, CALL)
    (request,) = fake.requests
    assert request.method == "POST" and str(request.url) == "http://exchange.test/ivr/lookup"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"caller": GERMAN.number, "call": CALL}
    assert signature_ok(SECRET, request.headers[SIGNATURE_HEADER], request.content, NOW.timestamp())


# --- every way of not answering ----------------------------------------------------------------


def raises(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error

    return answer


def slow(clock: FakeTime, seconds: float) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        clock.now += seconds  # the answer came, but too late
        return httpx.Response(
            200,
            json={
                "account": "acct-1",
                "verification": "v-1",
                "channel": "app",
                "verified": True,
                "locked": True,
            },
        )

    return answer


FAILURES: dict[str, tuple[str, Callable[[FakeTime], Callable[[httpx.Request], httpx.Response]]]] = {
    "a timeout": ("timeout", lambda t: raises(httpx.ReadTimeout("timed out"))),
    "an answer after 10 s": ("timeout", lambda t: slow(t, 10.0)),
    "a refused connection": ("error", lambda t: raises(httpx.ConnectError("refused"))),
    "a 500": ("error", lambda t: lambda r: httpx.Response(500, text="Internal Server Error")),
    "a 503 echoing the body": ("error", lambda t: lambda r: httpx.Response(503, content=r.content)),
    "not JSON": ("error", lambda t: lambda r: httpx.Response(200, text="<html>ok</html>")),
    "JSON of the wrong shape": ("error", lambda t: ok({"result": "yes", "code": CODE})),
    "the right fields of the wrong types": (
        "error",
        lambda t: ok(
            {"account": 1, "verification": 2, "channel": "fax", "verified": "true", "locked": "yes"}
        ),
    ),
    "an answer far too long": ("error", lambda t: ok({"account": "a", "padding": "x" * 70_000})),
    "a redirect": ("error", lambda t: lambda r: httpx.Response(302, headers={"Location": "/x"})),
    "our signature refused": (
        "refused",
        lambda t: lambda r: httpx.Response(401, json={"error": "no"}),
    ),
    "a forbidden": ("refused", lambda t: lambda r: httpx.Response(403)),
    "the transport failing": ("error", lambda t: raises(RuntimeError(f"boom {CODE}"))),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_every_failure_is_no_answer_within_the_deadline_and_logs_no_code(
    failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result, answer = FAILURES[failure]
    clock = FakeTime()
    exchange, fake, recorder, _ = client(answer(clock), clock)
    started = time.monotonic()
    answers = every_operation(exchange)
    assert time.monotonic() - started < DEADLINE_SECONDS
    assert answers == [None, None, None, None]
    assert len(fake.requests) == 3  # the breaker opened after three in a row
    assert recorder.results == [result] * 3 + ["breaker_open"]
    assert exchange.problem() is not None
    assert CODE not in caplog.text
    assert all(CODE not in str(record.args) for record in caplog.records)


def test_a_failure_is_logged_once_per_kind_until_the_exchange_answers_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = {"code": 500}
    exchange, _, _, _ = client(lambda r: httpx.Response(status["code"], json={"account": "acct-1"}))
    caplog.set_level(logging.WARNING, logger="ivr.exchange.client")
    exchange.lookup(GERMAN.number, CALL)
    exchange.lookup(GERMAN.number, CALL)
    assert [r.getMessage() for r in caplog.records] == [
        "exchange hook: lookup unanswered: HTTP 500; calls go on without the hook "
        "(logged once until it answers again)"
    ]
    status["code"] = 200
    exchange.lookup(GERMAN.number, CALL)
    status["code"] = 500
    exchange.lookup(GERMAN.number, CALL)
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "exchange hook: lookup unanswered: HTTP 500",
        "exchange hook: answering again",
        "exchange hook: lookup unanswered: HTTP 500",
    ]


def test_the_latency_of_each_request_is_reported() -> None:
    clock = FakeTime()

    def answer(request: httpx.Request) -> httpx.Response:
        clock.now += 0.25
        return httpx.Response(200, json={"account": "acct-1"})

    exchange, _, recorder, _ = client(answer, clock)
    exchange.lookup(GERMAN.number, CALL)
    assert recorder.calls == [("lookup", "answered", 0.25)]


# --- the circuit breaker -----------------------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_closes_on_an_answer() -> None:
    down = {"now": True}

    def answer(request: httpx.Request) -> httpx.Response:
        if down["now"]:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"account": "acct-1"})

    exchange, fake, recorder, clock = client(answer)
    for _ in range(BREAKER_FAILURES - 1):
        assert exchange.lookup(GERMAN.number, CALL) is None
    assert exchange.problem() == "the last call was unanswered (unreachable (ConnectError))"
    exchange.lookup(GERMAN.number, CALL)
    assert exchange.problem() == (
        "3 calls in a row unanswered (last: unreachable (ConnectError)); not asking again for 10 s"
    )
    asked = len(fake.requests)
    clock.now += BREAKER_SECONDS - 0.1
    assert exchange.lookup(GERMAN.number, CALL) is None
    assert len(fake.requests) == asked  # open: not asked
    assert recorder.calls[-1] == ("lookup", "breaker_open", None)

    clock.now += 0.2  # the cooldown is over: it asks again, and one more failure reopens it
    exchange.lookup(GERMAN.number, CALL)
    assert len(fake.requests) == asked + 1
    exchange.lookup(GERMAN.number, CALL)
    assert len(fake.requests) == asked + 1

    clock.now += BREAKER_SECONDS
    down["now"] = False
    assert exchange.lookup(GERMAN.number, CALL) is not None
    assert exchange.problem() is None
    assert exchange.lookup(GERMAN.number, CALL) is not None  # closed
    assert len(fake.requests) == asked + 3


def test_failures_that_are_not_in_a_row_do_not_open_it() -> None:
    answers = iter([500, 200, 500, 200, 500, 200, 500])
    exchange, fake, _, _ = client(
        lambda r: httpx.Response(next(answers), json={"account": "acct-1"})
    )
    for _ in range(7):
        exchange.lookup(GERMAN.number, CALL)
    assert len(fake.requests) == 7


def test_a_client_with_a_bug_in_its_arguments_asks_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange, fake, recorder, _ = client(ok({"locked": True}))
    assert exchange.lock("acct 1", CALL, "not a reference", verified=True) is None
    assert fake.requests == []
    assert recorder.results == ["error"]
    assert "lock not asked: invalid account, reference" in caplog.text
    assert "not a reference" not in caplog.text
