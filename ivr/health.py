"""`GET /healthz`: is this instance able to serve calls? For load balancers and operators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ivr import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database and Redis answer; the rules section says which version is live."""
    s = services()
    s.rules.get()  # picks up an edit (good or broken) even when no call has come in since
    rules = s.rules.status()
    database = s.db.ping()
    redis = s.queue.ping()
    body: dict[str, Any] = {
        "status": "ok" if database and redis else "degraded",
        "database": "ok" if database else "unreachable",
        "redis": "ok" if redis else "unreachable",
        "rules": {
            "file": rules.file,
            "loaded_at": rules.loaded_at.isoformat(),
            "state": "ok" if not rules.problems else "last good version (newest edit has errors)",
            "problems": [str(p) for p in rules.problems],
        },
        "time": s.clock.now().isoformat(),
    }
    return jsonify(body), 200 if database and redis else 503
