"""`GET /metrics`: the Prometheus text format of the app's registry (`ivr.metrics`), for operators.

It is not a webhook (no Twilio signature) but it is not public: with `IVR_METRICS_TOKEN` it asks for
`Authorization: Bearer <token>`; without it, it answers loopback addresses only.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest

from ivr.metrics import Metrics
from ivr.proxies import is_loopback
from ivr.services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text format; 401 without the right token, 403 off loopback without one."""
    token = services().settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                "a bearer token is required\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
                mimetype="text/plain",
            )
    elif not is_loopback(request.remote_addr):
        return Response(
            "metrics answer loopback only (set IVR_METRICS_TOKEN to scrape from elsewhere)\n",
            403,
            mimetype="text/plain",
        )
    m: Metrics = current_app.extensions["ivr_metrics"]
    return Response(generate_latest(m.registry), 200, {"Content-Type": CONTENT_TYPE_LATEST})
