"""`X-Twilio-Signature` checks, also behind a reverse proxy.

Twilio signs the public URL it requested. Behind a proxy the app sees another host and scheme, so we
rebuild the public URL from `PUBLIC_BASE_URL` when it is configured, else from the proxy's
`X-Forwarded-Proto` / `X-Forwarded-Host` headers, else from the request itself.
"""

from __future__ import annotations

from flask import Request
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: Request, base_url: str | None) -> str:
    """The URL Twilio requested, as Twilio saw it."""
    query = request.query_string.decode("latin-1")
    path = request.path + (f"?{query}" if query else "")
    if base_url:
        return base_url.rstrip("/") + path
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{proto}://{host}{path}"


def is_signed(request: Request, auth_token: str, base_url: str | None) -> bool:
    """True when the request carries a valid Twilio signature for its public URL."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    params = request.form if request.method == "POST" else {}
    validator = RequestValidator(auth_token)
    return bool(validator.validate(public_url(request, base_url), params, signature))
