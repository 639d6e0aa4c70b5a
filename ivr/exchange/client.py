"""`HttpExchange`: how the line calls the exchange's back office, when `IVR_EXCHANGE_URL` is set.

Every method is one signed `POST` (`contract.signature`) that gets `DEADLINE_SECONDS` for the whole of
it: connecting, sending and reading the answer. The answer is validated against the contract's models.
Whatever goes wrong (no connection, the deadline, a 5xx or any status the contract does not name, an
answer that is not JSON or not of the right shape, our signature refused) the method returns None,
"the exchange did not answer", and the call goes on as if there were no hook: a caller never waits on
the exchange for longer than the deadline, and never loses their place over it. A number the exchange
does not know (404 on lookup) is an answer, not a failure.

After `BREAKER_FAILURES` failures in a row the client stops asking for `BREAKER_SECONDS` (a circuit
breaker, `ivr.breaker`): while the exchange is away, webhooks answer at once instead of each waiting
out the deadline. Every call is reported to `on_call` (operation, result, seconds; `ivr.metrics` counts
them), and `problem()` says what `/healthz` shows, read from the client's state without a request.

What goes wrong is logged once per kind until the exchange answers again, by operation and kind only:
never a request or an answer body, so never a code a caller keyed (nor an account id or a number).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final, Literal, TypeVar

import httpcore
import httpx
from pydantic import BaseModel, ValidationError

from ivr.breaker import Breaker
from ivr.clock import Clock, SystemClock
from ivr.exchange.contract import (
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
    signature,
    where_invalid,
)

DEADLINE_SECONDS: Final = 1.5
"""For a whole request, connection included: a webhook that asks the exchange once still answers
Twilio well within 2 s."""
BREAKER_FAILURES: Final = 3
"""Failures in a row that open the breaker."""
BREAKER_SECONDS: Final = 10.0
"""How long an open breaker keeps the client from asking."""
MAX_ANSWER_BYTES: Final = 64 * 1024
"""An answer is a few dozen bytes; anything longer than this is not one."""

Operation = Literal["lookup", "verify_start", "verify_check", "lock"]
OPERATIONS: Final[tuple[Operation, ...]] = ("lookup", "verify_start", "verify_check", "lock")
"""The keys of `contract.PATHS`: the `operation` label of the metrics."""
Result = Literal["answered", "unknown", "error", "timeout", "refused", "breaker_open"]
RESULTS: Final[tuple[Result, ...]] = (
    "answered",
    "unknown",
    "error",
    "timeout",
    "refused",
    "breaker_open",
)
"""How a call ended: an answer; a number the exchange does not know (404 on lookup); no answer
because of an error (unreachable, a 5xx or other status, not JSON, a wrong shape), the deadline, our
signature refused (401 or 403), or the breaker open (no request made)."""
FAILURES: Final[frozenset[Result]] = frozenset({"error", "timeout", "refused"})

OnCall = Callable[[Operation, Result, "float | None"], None]
"""Told of every call: its operation, its result, and its seconds (None: no request was made)."""

Message = TypeVar("Message", bound=BaseModel)

log = logging.getLogger(__name__)


class _NoAnswer(Exception):
    """Why the exchange did not answer: `result` for the metrics, `kind` for the log and /healthz.
    The kind names what happened only, never what was sent or received."""

    def __init__(self, result: Result, kind: str) -> None:
        super().__init__(kind)
        self.result = result
        self.kind = kind


def _ignore(operation: Operation, result: Result, seconds: float | None) -> None:
    pass


class HttpExchange:
    """The `Exchange` of a hook at `base_url` (`ivr.exchange.hook`): thread-safe, one `httpx.Client`
    per process (made at the first call, again in a forked process), never raising.

    `transport` replaces the network (the reference implementation in-process, a test's fake);
    `clock` dates the signatures (the system clock: the exchange checks them against its own);
    `monotonic` times the deadline, the breaker and the metrics."""

    enabled = True

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_call: OnCall = _ignore,
        deadline: float = DEADLINE_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.on_call = on_call
        self._secret = secret
        self._transport = transport
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._breaker = Breaker(BREAKER_SECONDS, BREAKER_FAILURES, monotonic=monotonic)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._last_failure: str | None = None
        self._logged: set[str] = set()

    # --- the Exchange protocol -------------------------------------------------------------------

    def lookup(self, caller: str, call: str) -> Account | None:
        """The account of the calling number; None for a number the exchange does not know (404),
        one it cannot know (withheld, not a phone number), and when it did not answer."""
        try:
            request = LookupRequest(caller=caller, call=call)
        except ValidationError:
            return None  # "anonymous", a SIP address, ...: no number to look up
        return self._ask("lookup", request, Account)

    def start_verification(self, account: str, call: str) -> Verification | None:
        """Have the exchange send a one-time code to the customer's app or phone on file."""
        request = self._request(
            "verify_start", lambda: VerifyStartRequest(account=account, call=call)
        )
        return None if request is None else self._ask("verify_start", request, Verification)

    def check_code(self, verification: str, code: str) -> bool | None:
        """Whether `code` is the one sent for `verification`; False without asking for a code that
        is not 6 digits (the contract's codes all are), None when the exchange did not answer."""
        try:
            request = VerifyCheckRequest(verification=verification, code=code)
        except ValidationError as exc:
            # The error's text would hold what the caller keyed: only where it is wrong is logged.
            if any(error["loc"] == ("code",) for error in exc.errors()):
                return False
            self._invalid("verify_check", exc)
            return None
        checked = self._ask("verify_check", request, CodeChecked)
        return None if checked is None else checked.verified

    def lock(self, account: str, call: str, reference: str, verified: bool) -> bool | None:
        """Have the exchange stop the account's withdrawals and logins (idempotent)."""
        request = self._request(
            "lock",
            lambda: LockRequest(account=account, call=call, reference=reference, verified=verified),
        )
        locked = None if request is None else self._ask("lock", request, Locked)
        return None if locked is None else locked.locked

    # --- state, for /healthz ---------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the hook counts as degraded (its breaker open, or its last call unanswered); None
        while it answers. Reads the client's state: makes no request."""
        failure = self._last_failure
        if failure is None:
            return None
        if self._breaker.is_open:
            return (
                f"{self._breaker.failures} calls in a row unanswered (last: {failure}); "
                f"not asking again for {self._breaker.seconds_open():.0f} s"
            )
        return f"the last call was unanswered ({failure})"

    def close(self) -> None:
        """Close this process's connections."""
        with self._lock:
            if self._client is not None and self._client_pid == os.getpid():
                self._client.close()
            self._client = None

    # --- one call ---------------------------------------------------------------------------------

    def _request(self, operation: Operation, build: Callable[[], Message]) -> Message | None:
        """The request `build` makes, or None (logged, counted as an error) if the line's own
        arguments break the contract: a bug on this side, not worth a request."""
        try:
            return build()
        except ValidationError as exc:
            self._invalid(operation, exc)
            return None

    def _invalid(self, operation: Operation, exc: ValidationError) -> None:
        log.error(
            "exchange hook: %s not asked: invalid %s (a bug in the line)",
            operation,
            where_invalid(exc),
        )
        self.on_call(operation, "error", None)

    def _ask(
        self, operation: Operation, request: BaseModel, answer: type[Message]
    ) -> Message | None:
        if self._breaker.is_open:
            self.on_call(operation, "breaker_open", None)
            return None
        started = self._monotonic()
        try:
            result = self._post(operation, request, answer, started)
        except _NoAnswer as failure:
            self._failed(operation, failure, self._monotonic() - started)
            return None
        self._answered(operation, "unknown" if result is None else "answered", started)
        return result

    def _post(
        self, operation: Operation, request: BaseModel, answer: type[Message], started: float
    ) -> Message | None:
        body = request.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body, int(self._clock.now().timestamp())),
        }
        try:
            response = self._http().post(PATHS[operation], content=body, headers=headers)
        except httpx.TimeoutException:
            raise _NoAnswer("timeout", f"no answer within {self.deadline} s") from None
        except httpx.HTTPError as exc:
            raise _NoAnswer("error", f"unreachable ({type(exc).__name__})") from None
        except Exception as exc:  # a transport's own failure (the embedded app raising)
            raise _NoAnswer("error", f"failed ({type(exc).__name__})") from None
        if self._monotonic() - started > self.deadline:
            raise _NoAnswer("timeout", f"no answer within {self.deadline} s")
        status = response.status_code
        if status == 404 and operation == "lookup":
            return None
        if status in (401, 403):
            raise _NoAnswer(
                "refused",
                f"HTTP {status}, our signature refused: check IVR_EXCHANGE_SECRET and the clocks",
            )
        if status != 200:
            raise _NoAnswer("error", f"HTTP {status}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise _NoAnswer("error", f"an answer over {MAX_ANSWER_BYTES} bytes")
        try:
            data = json.loads(response.content)
        except ValueError:
            raise _NoAnswer("error", "an answer that is not JSON") from None
        try:
            # Strict: the document's types exactly ("true" is not a boolean, 1 is not a string).
            return answer.model_validate(data, strict=True)
        except ValidationError as exc:
            raise _NoAnswer(
                "error", f"an answer of the wrong shape ({where_invalid(exc)})"
            ) from None

    def _http(self) -> httpx.Client:
        """This process's client: a forked worker must not share its parent's connections."""
        pid = os.getpid()
        with self._lock:
            if self._client is None or self._client_pid != pid:
                self._client = httpx.Client(
                    base_url=self.base_url,
                    transport=self._transport or DeadlineTransport(self.deadline),
                    timeout=self.deadline,
                    follow_redirects=False,
                    trust_env=False,
                    headers={"User-Agent": "ivr-exchange-hook"},
                )
                self._client_pid = pid
            return self._client

    def _answered(self, operation: Operation, result: Result, started: float) -> None:
        self._breaker.succeeded()
        if self._last_failure is not None:
            with self._lock:
                self._last_failure = None
                self._logged.clear()
            log.warning("exchange hook: answering again")
        self.on_call(operation, result, self._monotonic() - started)

    def _failed(self, operation: Operation, failure: _NoAnswer, seconds: float) -> None:
        was_open = self._breaker.is_open
        self._breaker.failed()
        with self._lock:
            self._last_failure = failure.kind
            first = failure.kind not in self._logged
            self._logged.add(failure.kind)
        if first:
            log.warning(
                "exchange hook: %s unanswered: %s; calls go on without the hook "
                "(logged once until it answers again)",
                operation,
                failure.kind,
            )
        if not was_open and self._breaker.is_open:
            log.warning(
                "exchange hook: %d calls in a row unanswered; not asking for %.0f s",
                self._breaker.failures,
                BREAKER_SECONDS,
            )
        self.on_call(operation, failure.result, seconds)


class DeadlineTransport(httpx.BaseTransport):
    """httpx's transport to a real URL, with one deadline for the whole request.

    httpx's own timeouts bound each step (connecting, each write, each read) on its own: an exchange
    trickling its answer a byte a second would never trip them. Here every socket operation gets at
    most what is left of `seconds` since the request began. The answer is read whole (up to one byte
    more than `MAX_ANSWER_BYTES`, which the client refuses) before it is handed over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._backend = _DeadlineBackend()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=32,
            max_keepalive_connections=8,
            keepalive_expiry=5.0,
            network_backend=self._backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._backend.begin(self.seconds)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.read(),
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core)
            try:
                body = bytearray()
                for chunk in response.iter_stream():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
            finally:
                response.close()
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise httpx.TransportError(str(exc), request=request) from exc
        finally:
            self._backend.end()
        return httpx.Response(response.status, headers=response.headers, content=bytes(body))

    def close(self) -> None:
        self._pool.close()


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, each operation bounded by what is left of this thread's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = threading.local()

    def begin(self, seconds: float) -> None:
        self._deadline.at = time.monotonic() + seconds

    def end(self) -> None:
        self._deadline.at = None

    def left(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """`timeout`, shortened to what is left of the deadline; `expired` raised once none is."""
        at: float | None = getattr(self._deadline, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise expired("the exchange hook's deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            self.left(timeout, httpcore.ConnectTimeout),
            local_address,
            socket_options,  # type: ignore[arg-type]
        )
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: _DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: object,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.start_tls(
            ssl_context,  # type: ignore[arg-type]
            server_hostname,
            self._backend.left(timeout, httpcore.ConnectTimeout),
        )
        return _DeadlineStream(stream, self._backend)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)
