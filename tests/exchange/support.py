"""What the exchange hook's tests share: the secret, signed requests, and the reference
implementation served over real TCP behind a `FaultProxy` (`served_reference`, also for the
whole-call fault tests of `tests/test_faults.py`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from ivr.clock import Clock
from ivr.exchange.contract import SIGNATURE_HEADER, signature
from ivr.exchange.reference import (
    DEMO_ACCOUNTS,
    AccountOnFile,
    ReferenceExchange,
    create_reference_app,
    reference_of,
)
from tests.faults import FaultProxy

SECRET = "exchange-hook-test-secret-0123456789abcdef"
GERMAN = DEMO_ACCOUNTS[0]
"""+4915112345678, acct-demo-de: German, standard tier, codes to the app."""
VIP = DEMO_ACCOUNTS[1]
CALL = "CA0123456789abcdef0123456789abcdef"


def signed_post(
    app: Flask,
    path: str,
    body: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    at: float | None = None,
    header: str | None = None,
) -> TestResponse:
    """POST `body` to the reference app as the line does: signed with `secret` at `at` (now), or
    with the `header` given."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if header is None:
        header = signature(secret, raw, int(time.time() if at is None else at))
    return app.test_client().post(
        path, data=raw, headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"}
    )


@dataclass
class ServedReference:
    """The reference implementation on a real port, reached through `proxy`."""

    reference: ReferenceExchange
    proxy: FaultProxy
    server: ThreadingHTTPServer

    @property
    def url(self) -> str:
        """The base URL to give `HttpExchange` (`IVR_EXCHANGE_URL`): the proxy's."""
        return f"http://127.0.0.1:{self.proxy.port}"


@contextmanager
def served_reference(
    clock: Clock | None = None,
    accounts: Iterable[AccountOnFile] = DEMO_ACCOUNTS,
    secret: str = SECRET,
) -> Iterator[ServedReference]:
    """The reference implementation served over HTTP/1.1 (keep-alive) from a thread, behind a
    `FaultProxy` (stall, refuse, drop it at will); stopped, and the proxy closed, at the end."""
    app = create_reference_app(secret, accounts, clock=clock)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(app))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="reference-exchange", daemon=True)
    thread.start()
    try:
        with FaultProxy(("127.0.0.1", server.server_port)) as proxy:
            yield ServedReference(reference_of(app), proxy, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _handler_for(app: Flask) -> type[BaseHTTPRequestHandler]:
    """An HTTP/1.1 server's handler that keeps connections open between requests, as an exchange's
    server would (werkzeug's development server closes each one), and answers through `app`."""
    client = app.test_client()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = client.post(self.path, data=body, headers=dict(self.headers.items()))
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.content_type or "application/json")
            self.send_header("Content-Length", str(len(answer.data)))
            self.end_headers()
            self.wfile.write(answer.data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests read what the reference recorded instead

    return Handler
