"""`GET /healthz`: can this instance serve calls, and is anything waiting to be written? For operators.

The line keeps answering callers while PostgreSQL or Redis is away (tickets wait in the journal), so a
store outage alone is reported as `"status": "degraded"` with 200: taking every instance out of the load
balancer because a shared store is down would drop the calls the journal exists to save. 503 means this
instance must not take calls: its database schema is not the one the code needs (tickets would never be
written), or it has nowhere to keep ticket changes at all (Redis down and the spool not writable).

The database is probed by a background thread (`Health.probe`); the endpoint reads its latest answer,
so a frozen database cannot freeze the health check.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ivr.clock import Clock
from ivr.db import Database
from ivr.services import services

bp = Blueprint("health", __name__)

STALE_SECONDS = 15.0
"""A probe older than this means the database has not answered the last one."""


@dataclass(frozen=True)
class DatabaseState:
    """The last answer of the database, and what it means for tickets."""

    reachable: bool
    problem: str | None
    """Why tickets are not being written there: unreachable, or the schema is behind."""
    checked_at: datetime | None

    @property
    def schema_behind(self) -> bool:
        return self.reachable and self.problem is not None


class Health:
    """Probes the database (ping and schema revision) and keeps the latest answer."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._latest = DatabaseState(False, "not checked yet", None)

    def probe(self) -> DatabaseState:
        """Ask the database now (may take as long as its timeouts allow)."""
        try:
            problem = self._db.schema().problem()
            state = DatabaseState(True, problem, self._clock.now())
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            text = reason[0][:200] if reason else type(exc).__name__
            state = DatabaseState(False, f"unreachable: {text}", self._clock.now())
        with self._lock:
            self._latest = state
        return state

    def latest(self) -> DatabaseState:
        """The last probe's answer; says so when it is too old to trust."""
        with self._lock:
            state = self._latest
        if state.checked_at is not None:
            age = (self._clock.now() - state.checked_at).total_seconds()
            if age > STALE_SECONDS:
                return DatabaseState(False, f"no answer for {round(age)} s", state.checked_at)
        return state


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
    spool_ok = s.journal.spool.writable()
    must_not_serve = database.schema_behind or (not redis and not spool_ok)
    body: dict[str, Any] = {
        "status": "ok" if database.problem is None and redis else "degraded",
        "database": "ok" if database.problem is None else database.problem,
        "redis": "ok" if redis else "unreachable",
        "journal": {
            "stream": backlog.stream,
            "oldest_seconds": (
                None
                if backlog.oldest_at is None
                else max(0.0, round((_wall_now() - backlog.oldest_at).total_seconds(), 1))
            ),
            "spool_files": backlog.spool_files,
            "spool_bytes": backlog.spool_bytes,
            "spool_writable": spool_ok,
            "rejected": backlog.rejected,
        },
        "writer": {
            "mode": s.settings.writer,
            "running": s.writer.status.running,
            "last_batch_at": _iso(s.writer.status.last_batch_at),
            "problem": s.writer.status.problem,
        },
        "references_at_hand": s.references.at_hand(),
        "rules": {
            "file": rules.file,
            "loaded_at": rules.loaded_at.isoformat(),
            "state": "ok" if not rules.problems else "last good version (newest edit has errors)",
            "problems": [str(p) for p in rules.problems],
        },
        "time": s.clock.now().isoformat(),
    }
    if must_not_serve:
        body["status"] = "unavailable"
    return jsonify(body), 503 if must_not_serve else 200


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _wall_now() -> datetime:
    # Stream entry ids carry Redis's wall clock, not the service's (possibly QA-shifted) clock.
    return datetime.now(UTC)
