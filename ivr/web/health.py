"""`GET /healthz`: can this instance serve calls, and is anything waiting to be written? For operators.

The line keeps answering callers while PostgreSQL or Redis is away (tickets wait in the journal), so a
store outage alone is reported as `"status": "degraded"` with 200: taking every instance out of the load
balancer because a shared store is down would drop the calls the journal exists to save. 503 means this
instance must not take calls: its database schema is not the one the code needs (tickets would never be
written), or it has nowhere to keep ticket changes at all (Redis down and the spool not writable: a full
disk, found by the write that failed or by the free space left). Such changes are held in memory until
one of the two takes them again, which `journal.held_in_memory` counts.

The database is probed by a background thread (`db.DatabaseHealth.probe`); the endpoint reads its
latest answer, so a frozen database cannot freeze the health check, and a probe that has waited longer
than `db.ANSWER_WITHIN_SECONDS` for its answer is reported as the database not answering.

The exchange hook (`ivr.exchange`) has an entry of its own, `"exchange"`: "off", "ok" or "degraded:
<why>". It never changes `status`: without the exchange, callers still reach the queue.

While the instance is stopping (`ivr.drain`), `/healthz` answers 503 with `"status": "draining"`
(the rest of the body as usual). `GET /livez` is the liveness check: `ok`, from any process that
answers HTTP, draining or not, asking no store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from ivr.clock import wall_now
from ivr.drain import draining
from ivr.exchange.client import HttpExchange
from ivr.services import Services, services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while the instance can take calls (status "ok" or "degraded"); 503 when it must not."""
    s = services()
    s.rules.get()  # in foreground mode this picks up an edit even when no call has come in since
    rules = s.rules.status()
    threads = s.background is not None and s.background.running()
    database = s.health.latest() if threads else s.health.probe()
    redis = s.queue.ping()
    backlog = s.journal.backlog()
    spool_problem = s.journal.spool.problem()
    must_not_serve = database.schema_behind or (not redis and spool_problem is not None)
    all_well = database.problem is None and redis and spool_problem is None and not backlog.held
    body: dict[str, Any] = {
        "status": "ok" if all_well else "degraded",
        "database": "ok" if database.problem is None else database.problem,
        "redis": "ok" if redis else "unreachable",
        "journal": {
            "stream": backlog.stream,
            "oldest_seconds": (
                None
                if backlog.oldest_at is None
                else max(0.0, round((wall_now() - backlog.oldest_at).total_seconds(), 1))
            ),
            "spool_files": backlog.spool_files,
            "spool_bytes": backlog.spool_bytes,
            "spool_writable": spool_problem is None,
            "spool_problem": spool_problem,
            "held_in_memory": backlog.held,
            "lost_to_log": s.journal.lost(),
            "rejected": backlog.rejected,
            "waiting_for_newer": (
                None
                if backlog.newer is None
                else {str(version): count for version, count in backlog.newer.items()}
            ),
        },
        "writer": {
            "mode": s.settings.writer,
            "running": s.writer.status.running,
            "last_batch_at": _iso(s.writer.status.last_batch_at),
            "problem": s.writer.status.problem,
        },
        "references_at_hand": s.references.at_hand(),
        "outage_references_given": s.references.outage_given(),
        "rules": {
            "file": rules.file,
            "loaded_at": rules.loaded_at.isoformat(),
            "state": "ok" if not rules.problems else "last good version (newest edit has errors)",
            "problems": [str(p) for p in rules.problems],
            "version": rules.version,
            "draft": rules.draft,
            "incident": rules.incident.id if rules.incident is not None else None,
        },
        "exchange": _exchange(s),
        "time": s.clock.now().isoformat(),
    }
    if must_not_serve:
        body["status"] = "unavailable"
    if draining(current_app):
        # Stopping (SIGTERM, `ivr.drain`): still answering, but send no new calls here.
        body["status"] = "draining"
        must_not_serve = True
    return jsonify(body), 503 if must_not_serve else 200


@bp.get("/livez")
def livez() -> Response:
    """200 `ok` while this process answers HTTP at all, draining included; it touches no store, so
    a liveness probe restarts only a process that is stuck, never one whose Redis is away."""
    return Response("ok", mimetype="text/plain")


def _exchange(s: Services) -> str:
    """ "off", "ok" or "degraded: <why>": the hook's own state, never the instance's (the line goes
    on without the exchange), read from its client without asking the exchange anything."""
    if not s.exchange.enabled:
        return "off"
    problem = s.exchange.problem() if isinstance(s.exchange, HttpExchange) else None
    return "ok" if problem is None else f"degraded: {problem}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
