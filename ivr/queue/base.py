"""What every part of the queue shares: the client, the clock, the registered scripts, the values.

`QueueBase` holds the Redis client, the injected clock and the settings, registers every script
once, and runs them with the common context (see `scripts.CONTEXT_HEADER`). The value types that
more than one part returns (`Place`, `Assignment`) and the reply parsing live here too.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from ivr.clock import Clock
from ivr.queue import scripts
from ivr.queue.keys import (
    AGENT_PREFIX,
    CALL_PREFIX,
    ENTRY_SUFFIX,
    available_agents_key,
    deadlines_key,
    epoch_key,
    waiting_queues_key,
)

MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 100
MAX_ENQUEUED_MS: Final = 10**13
"""enqueued_ms must stay below this so that it cannot spill into the priority part of the score."""
DEFAULT_HEARTBEAT_SECONDS: Final = 120
DEFAULT_AGENT_TTL_SECONDS: Final = 24 * 3600
DEFAULT_GRACE_SECONDS: Final = 3600
"""How long an entry outlives its deadline, so that the sweeper still finds an expired call."""
REQUEST_SWEEP_LIMIT: Final = 16
"""Expired calls every request-path script that reports a position or size sweeps first, at most."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

AgentStatus = Literal["offline", "available", "busy"]


class NewerEntry(RedisError):
    """A caller's entry or an agent's hash that a newer release wrote (`keys.ENTRY_READS_UP_TO`):
    the script left it as it was and changed nothing. A `RedisError`, so that code that goes on
    without the queue when Redis is away goes on the same way here; a webhook answering the
    caller's call hands the call back to the proxy instead (`ivr.web.inbound`)."""


@dataclass(frozen=True)
class Place:
    """Where a call stands in its line."""

    queue: str
    language: str
    priority: int
    position: int
    """1-based (ZRANK + 1): callers ahead, a ghost or two included until the sweep removes them.
    0 only from `join` of a call that has already been handed to an agent: it is next."""
    size: int
    """Callers in that queue and language (ZCARD)."""
    enqueued_at: datetime
    """Aware UTC, the original arrival (first join, or the `enqueued_ms` given), to the ms."""


@dataclass(frozen=True)
class Assignment:
    """A waiting caller handed to an agent."""

    call_sid: str
    agent: str
    queue: str
    language: str
    priority: int
    enqueued_at: datetime
    """Original arrival in the queue (kept across moves and returns to the queue)."""
    assigned_at: datetime
    callback_number: str | None
    """Set when the caller asked to be called back (they are not on the line now)."""
    our_number: str | None = None
    """The number the caller called, to place the callback from (None when not stored)."""
    reference: str | None = None
    """The ticket reference stored with a callback request (None when not stored)."""
    callback_code: str | None = None
    """The code the caller was given with their callback request: the callback opens with it."""


class QueueBase:
    """The client, clock, settings and scripts that the caller, agent and history parts share."""

    def __init__(
        self,
        client: redis.Redis,
        clock: Clock,
        heartbeat_seconds: int = DEFAULT_HEARTBEAT_SECONDS,
        agent_ttl_seconds: int = DEFAULT_AGENT_TTL_SECONDS,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
    ) -> None:
        for name, value in (
            ("heartbeat_seconds", heartbeat_seconds),
            ("agent_ttl_seconds", agent_ttl_seconds),
            ("grace_seconds", grace_seconds),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self._client = client
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._agent_ttl_seconds = agent_ttl_seconds
        self._grace_seconds = grace_seconds
        # register_script only hashes the text; each call runs EVALSHA and falls back to EVAL
        # when the server has lost its script cache (restart, SCRIPT FLUSH).
        register = client.register_script
        self._join: Script = register(scripts.JOIN)
        self._enter: Script = register(scripts.ENTER)
        self._place: Script = register(scripts.PLACE)
        self._heartbeat: Script = register(scripts.HEARTBEAT)
        self._hang_up: Script = register(scripts.HANG_UP)
        self._size: Script = register(scripts.SIZE)
        self._request_callback: Script = register(scripts.REQUEST_CALLBACK)
        self._restore_callback: Script = register(scripts.RESTORE_CALLBACK)
        self._hold_round: Script = register(scripts.HOLD_ROUND)
        self._sweep: Script = register(scripts.SWEEP)
        self._audit: Script = register(scripts.AUDIT)
        self._agent_available: Script = register(scripts.AGENT_AVAILABLE)
        self._agent_offline: Script = register(scripts.AGENT_OFFLINE)
        self._agent_statuses: Script = register(scripts.AGENT_STATUSES)
        self._claim_next: Script = register(scripts.CLAIM_NEXT)
        self._dispatch: Script = register(scripts.DISPATCH)
        self._connected: Script = register(scripts.CONNECTED)
        self._finish_call: Script = register(scripts.FINISH_CALL)
        self._return_to_queue: Script = register(scripts.RETURN_TO_QUEUE)
        self._line_load: Script = register(scripts.LINE_LOAD)
        self._release_epoch: Script = register(scripts.RELEASE_EPOCH)
        self._epoch_token: str | None = None

    def claim_epoch(self) -> bool:
        """True when this Redis had no epoch yet (it is new or lost its data); atomic (SET NX).

        The key has no TTL: it marks the data set, not a call. Whoever gets True rebuilds what
        only the database still knows (kept callbacks, agent logins).
        """
        token = secrets.token_hex(8)
        claimed = bool(self._client.set(epoch_key(), token, nx=True))
        if claimed:
            self._epoch_token = token
        return claimed

    def release_epoch(self) -> bool:
        """Give back the epoch this instance claimed (its rebuild failed), so that the next
        `claim_epoch` here or elsewhere gets True; atomic (one script). False if not ours."""
        token, self._epoch_token = self._epoch_token, None
        if token is None:
            return False
        return bool(self._run(self._release_epoch, [epoch_key()], [token]))

    def ping(self) -> bool:
        """True when Redis answers (one PING); never raises."""
        try:
            return bool(self._client.ping())
        except Exception:  # a health check reports failure, whatever its cause
            return False

    def _run(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str | int],
        now_ms: int | None = None,
    ) -> Any:
        """Run a script with the common context before its own keys and arguments; `NewerEntry`
        when it found a newer release's entry or agent and left it (its reply `scripts.NEWER`)."""
        context: list[str | int] = [
            self._now_ms() if now_ms is None else now_ms,
            self._heartbeat_seconds * 1000,
            self._grace_seconds * 1000,
            self._agent_ttl_seconds,
            CALL_PREFIX,
            ENTRY_SUFFIX,
            AGENT_PREFIX,
            REQUEST_SWEEP_LIMIT,
        ]
        common = [deadlines_key(), available_agents_key(), waiting_queues_key()]
        reply = script(keys=[*common, *keys], args=[*context, *args])
        if isinstance(reply, bytes | str) and text(reply) == scripts.NEWER:
            what = keys[0] if keys else "a queue hash"
            raise NewerEntry(f"{what} (or a hash it names) is a newer release's: left as it is")
        return reply

    def _now_ms(self) -> int:
        now = self._clock.now()
        if now.tzinfo is None:
            raise ValueError("the clock returned a naive datetime")
        ms = (now - _EPOCH) // timedelta(milliseconds=1)
        if not 0 <= ms < MAX_ENQUEUED_MS:
            raise ValueError(f"clock time {now.isoformat()} is outside the supported range")
        return ms


def check_call_sid(call_sid: str) -> None:
    """Reject an empty call SID."""
    if not call_sid:
        raise ValueError("call_sid must not be empty")


def check_agent(agent_id: str) -> None:
    """Reject an empty agent id."""
    if not agent_id:
        raise ValueError("agent_id must not be empty")


def check_line(queue: str, language: str) -> None:
    """Reject a queue or language that is empty or has a colon."""
    # A colon would make two different (queue, language) pairs share one key.
    for name, value in (("queue", queue), ("language", language)):
        if not value or ":" in value:
            raise ValueError(f"{name} must be non-empty and contain no ':', got {value!r}")


def check_priority(priority: int) -> None:
    """Reject a priority outside 0..100."""
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be {MIN_PRIORITY}..{MAX_PRIORITY}, got {priority}")


def check_enqueued_ms(enqueued_ms: int) -> None:
    """Reject an arrival time the score cannot hold."""
    if not 0 <= enqueued_ms < MAX_ENQUEUED_MS:
        raise ValueError(f"enqueued_ms must be 0..{MAX_ENQUEUED_MS - 1}, got {enqueued_ms}")


def text(value: object) -> str:
    """A script's reply item as text (bytes unless the client decodes responses)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def instant(ms: object) -> datetime:
    """The aware UTC instant of a ms-since-the-epoch reply item."""
    return _EPOCH + timedelta(milliseconds=int(text(ms)))


def ms_of(at: datetime) -> int:
    """Ms since the epoch of an aware instant."""
    if at.tzinfo is None:
        raise ValueError("expected an aware datetime")
    return (at - _EPOCH) // timedelta(milliseconds=1)


def to_place(reply: object) -> Place | None:
    """A {queue, language, priority, position, size, enqueued_ms} reply as a Place."""
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 6:
        raise RuntimeError(f"unexpected reply from a queue script: {reply!r}")
    queue, language, priority, position, size, enqueued_ms = reply
    return Place(
        queue=text(queue),
        language=text(language),
        priority=int(text(priority)),
        position=int(text(position)),
        size=int(text(size)),
        enqueued_at=instant(enqueued_ms),
    )


def to_assignment(reply: object) -> Assignment | None:
    """An assignment reply (see scripts.CLAIM_NEXT) as an Assignment."""
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 11:
        raise RuntimeError(f"unexpected reply from an assignment script: {reply!r}")
    sid, agent, queue, language, priority, enqueued, assigned, callback, ours, reference, code = (
        reply
    )
    return Assignment(
        call_sid=text(sid),
        agent=text(agent),
        queue=text(queue),
        language=text(language),
        priority=int(text(priority)),
        enqueued_at=instant(enqueued),
        assigned_at=instant(assigned),
        callback_number=text(callback) or None,
        our_number=text(ours) or None,
        reference=text(reference) or None,
        callback_code=text(code) or None,
    )


def to_status(value: object) -> AgentStatus:
    """An agent status reply."""
    status = text(value)
    if status == "available":
        return "available"
    if status == "busy":
        return "busy"
    if status == "offline":
        return "offline"
    raise RuntimeError(f"unexpected agent status from a script: {status!r}")
