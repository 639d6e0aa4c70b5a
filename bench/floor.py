"""The floor: the least a webhook service can do, under the same gunicorn as the app.

It checks `X-Twilio-Signature` exactly as the app does (twilio's RequestValidator over
PUBLIC_BASE_URL + path and query, the POSTed form), answers 403 otherwise, and returns the TwiML the
real app returned for the same request when the benchmark captured a call (204 for the status
callback). No database, no Redis, no rules: what is left is Flask, gunicorn and the signature.

Run by `python -m bench.run` as `gunicorn ... bench.floor:app` with FLOOR_DOCUMENTS (the JSON file of
captured documents), TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL set.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator


def document_key(path_and_query: str, digits: str | None) -> str:
    """How a captured document is found again: the requested URL and the keys pressed."""
    return f"{path_and_query}|{digits or ''}"


def create_floor(documents: dict[str, str], auth_token: str, base_url: str) -> Flask:
    """The floor app serving `documents` (see `document_key`) to signed requests only."""
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", 200, mimetype="text/plain")

    @app.post("/voice/<kind>")
    def webhook(kind: str) -> Response:
        query = request.query_string.decode("latin-1")
        path = request.path + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        # A new validator per request, as ivr.security does.
        if not signature or not RequestValidator(auth_token).validate(
            base_url + path, request.form, signature
        ):
            return Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain")
        if kind == "status":
            return Response(status=204)
        body = documents.get(document_key(path, request.form.get("Digits")))
        if body is None:  # the call left the captured script: a benchmark bug, counted as an error
            return Response("not captured\n", 404, mimetype="text/plain")
        return Response(body, 200, mimetype="text/xml")

    return app


def _from_env() -> Flask:
    with open(os.environ["FLOOR_DOCUMENTS"], encoding="utf-8") as file:
        documents: dict[str, str] = json.load(file)
    base_url = os.environ["PUBLIC_BASE_URL"].rstrip("/")
    return create_floor(documents, os.environ["TWILIO_AUTH_TOKEN"], base_url)


app = _from_env() if "FLOOR_DOCUMENTS" in os.environ else None
