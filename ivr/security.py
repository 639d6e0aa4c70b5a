"""`X-Twilio-Signature` checks, also behind a reverse proxy.

Twilio signs the public URL it requested. Behind a proxy the app sees another host and scheme, so we
rebuild the public URL from `PUBLIC_BASE_URL` when it is configured, else from the proxy's
`X-Forwarded-Proto` / `X-Forwarded-Host` headers, else from the request itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from urllib.parse import urlparse

from flask import Request, Response, request
from twilio.request_validator import add_port, remove_port
from werkzeug.datastructures import MultiDict

from ivr.services import services

SIGNATURE_HEADER = "X-Twilio-Signature"
log = logging.getLogger(__name__)


def public_url(incoming: Request, base_url: str | None) -> str:
    """The URL Twilio requested, as Twilio saw it."""
    query = incoming.query_string.decode("latin-1")
    path = incoming.path + (f"?{query}" if query else "")
    if base_url:
        return base_url.rstrip("/") + path
    proto = incoming.headers.get("X-Forwarded-Proto", incoming.scheme).split(",")[0].strip()
    host = incoming.headers.get("X-Forwarded-Host", incoming.host).split(",")[0].strip()
    return f"{proto}://{host}{path}"


def is_signed(incoming: Request, auth_token: str, base_url: str | None) -> bool:
    """True when the request carries a valid Twilio signature for its public URL.

    What Twilio's `RequestValidator.validate` accepts (the URL with or without its port, the
    form's signed content), with the form's content built once and the second HMAC computed
    only when the first does not match."""
    signature = incoming.headers.get(SIGNATURE_HEADER, "").encode()
    if not signature:
        return False
    content = signed_content(incoming.form) if incoming.method == "POST" else ""
    url = urlparse(public_url(incoming, base_url))
    key = auth_token.encode()
    return any(
        hmac.compare_digest(_signature(key, variant + content), signature)
        for variant in (remove_port(url), add_port(url))
    )


def _signature(key: bytes, signed: str) -> bytes:
    """Twilio's `X-Twilio-Signature` of what it signed (HMAC-SHA1, base64)."""
    return base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha1).digest())


def signed_content(form: MultiDict[str, str]) -> str:
    """What Twilio's signature covers of a form: each name's distinct values, names and values
    sorted, all joined without separators (as `RequestValidator.compute_signature` builds it).

    Two forms with the same signed content carry the same signature, whatever else differs (a value
    sent twice, an empty `&=` pair, `a=bc` sent as `ab=c`): what keys a request's effect must be
    this, not the form as parsed."""
    return "".join(
        name + value
        for name in sorted(set(form.keys()))
        for value in sorted(set(form.getlist(name)))
    )


def refuse_unsigned() -> Response | None:
    """A `before_request` hook: 403 for requests not signed by Twilio; in development mode, a warning."""
    settings = services().settings
    if not settings.twilio_auth_token:
        log.warning("IVR_DEV_MODE: accepted %s without checking its signature", request.path)
        return None
    # The request itself, not its proxy: the check reads it a dozen times.
    incoming: Request = request._get_current_object()  # type: ignore[attr-defined]
    if not is_signed(incoming, settings.twilio_auth_token, settings.public_base_url):
        log.warning("refused %s: missing or invalid X-Twilio-Signature", request.path)
        return Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain")
    return None
