"""Callers waiting for an agent, shared by every app instance through Redis.

This is the only module that talks to Redis. Key names are built here, all under `KEY_PREFIX`;
every change to queue state happens in one Lua script so that concurrent webhooks on different
instances never see (or leave) a half-updated line.

Data model:

* `queue_key(queue, language)` — ZSET of call SIDs. Score = (100 - priority) * 10**13 +
  enqueued_ms, so higher priority sorts first and, within a priority, earlier arrival; callers
  who arrive in the same millisecond are ordered by call SID. Scores stay below 2**53, so they
  are exact as doubles (Redis and Lua both store doubles).
* `entry_key(call_sid)` — HASH (queue, language, queue_key, priority, enqueued_ms) with a TTL of
  `heartbeat_seconds`. The TTL is the heartbeat: a call whose status callback was lost stops
  heartbeating, its entry expires, and the zset member left behind is a ghost.
* `waiting_queues_key()` — SET of every queue zset that ever had callers, for sweeps and admin.

A zset member counts as live only while its entry exists and names that zset; every script that
reports a position or a size first removes the ghosts from the line it reads.

The scripts build other callers' entry keys from a prefix and suffix passed in ARGV, so they
suit a single Redis (or a replicated primary), not Redis Cluster.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import fakeredis
import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry

from ivr.clock import Clock

EMBEDDED_URL: Final = "embedded://"
KEY_PREFIX: Final = "ivr:"

_MIN_PRIORITY: Final = 0
_MAX_PRIORITY: Final = 100

_ENTRY_PREFIX: Final = f"{KEY_PREFIX}call:"
_ENTRY_SUFFIX: Final = ":entry"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# enqueued_ms must stay below 10**13 so that it cannot spill into the priority part of the score.
_MAX_ENQUEUED_MS: Final = 10**13


def connect(url: str) -> redis.Redis:
    """Redis client for `url`; "embedded://" gives an in-process fakeredis (one process only)."""
    if url == EMBEDDED_URL:
        # Without lupa fakeredis cannot run scripts; fail here rather than on the first call.
        if importlib.util.find_spec("lupa") is None:
            raise RuntimeError("embedded Redis needs lupa for Lua scripts: install fakeredis[lua]")
        embedded: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return embedded
    # One quick retry only: a webhook must answer within Twilio's 15 s even when Redis is down.
    return redis.Redis.from_url(
        url,
        socket_timeout=1,
        socket_connect_timeout=1,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    )


def queue_key(queue: str, language: str) -> str:
    """Key of the ZSET of calls waiting in `queue` for an agent speaking `language`."""
    return f"{KEY_PREFIX}queue:{queue}:{language}"


def entry_key(call_sid: str) -> str:
    """Key of the HASH describing one waiting call; its TTL is the call's heartbeat."""
    return f"{_ENTRY_PREFIX}{call_sid}{_ENTRY_SUFFIX}"


def waiting_queues_key() -> str:
    """Key of the SET of queue keys that ever had callers (for sweeps and admin)."""
    return f"{KEY_PREFIX}queues"


@dataclass(frozen=True)
class Place:
    """Where a call stands in its line."""

    queue: str
    language: str
    priority: int
    position: int
    """1-based, counting only live callers ahead (ghosts pruned)."""
    size: int
    """Live callers in that queue and language."""
    enqueued_at: datetime
    """Aware UTC, from the injected clock at first join, truncated to the millisecond."""


# Shared Lua: pasted into each script after its header. Locals only (Redis 7 forbids globals).
_LUA_HELPERS: Final = """
-- The score formula, kept in Lua only so that a move can recompute it from the stored arrival
-- time. '%.0f' prints the whole double: tostring() would round it to 14 significant digits.
local function score_of(priority, enqueued_ms)
  return string.format('%.0f', (100 - tonumber(priority)) * 1e13 + tonumber(enqueued_ms))
end

-- Walk the whole line in order, removing every member whose entry has expired or now names
-- another line. Returns the 1-based live position of `member` (nil if absent) and the live size.
local function prune_and_locate(line, member, entry_prefix, entry_suffix)
  local live = 0
  local position = nil
  for _, m in ipairs(redis.call('ZRANGE', line, 0, -1)) do
    if redis.call('HGET', entry_prefix .. m .. entry_suffix, 'queue_key') == line then
      live = live + 1
      if m == member then
        position = live
      end
    else
      redis.call('ZREM', line, m)
    end
  end
  return position, live
end
"""

_JOIN_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the joining call
-- KEYS[2] = queue zset to join
-- KEYS[3] = index set of queue zsets
-- ARGV[1] = call SID
-- ARGV[2] = queue name
-- ARGV[3] = language
-- ARGV[4] = priority (0..100)
-- ARGV[5] = now, ms since the epoch
-- ARGV[6] = heartbeat seconds (entry TTL)
-- ARGV[7] = entry key prefix
-- ARGV[8] = entry key suffix
-- Returns {queue, language, priority, position, size, enqueued_ms}.
"""
    + _LUA_HELPERS
    + """
local entry, line = KEYS[1], KEYS[2]
local priority, enqueued_ms = ARGV[4], ARGV[5]
local old = redis.call('HMGET', entry, 'queue_key', 'priority', 'enqueued_ms')
if old[1] and old[2] and old[3] then
  -- Already waiting: a retried webhook or a transfer. Either way the caller keeps the time.
  enqueued_ms = old[3]
  if old[1] == line then
    priority = old[2]
  else
    redis.call('ZREM', old[1], ARGV[1])
  end
end
redis.call('HSET', entry, 'queue', ARGV[2], 'language', ARGV[3], 'queue_key', line,
  'priority', priority, 'enqueued_ms', enqueued_ms)
redis.call('EXPIRE', entry, ARGV[6])
-- Plain ZADD, not NX: on a retry the score is unchanged anyway, and when the entry had expired
-- it replaces the ghost's stale score, so the caller starts afresh as if the ghost was pruned.
redis.call('ZADD', line, score_of(priority, enqueued_ms), ARGV[1])
redis.call('SADD', KEYS[3], line)
local position, size = prune_and_locate(line, ARGV[1], ARGV[7], ARGV[8])
return {ARGV[2], ARGV[3], priority, position, size, enqueued_ms}
"""
)
"""Add a call to a line, keep its place on a retry, or move it to another line (join)."""

_PLACE_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- ARGV[1] = call SID
-- ARGV[2] = entry key prefix
-- ARGV[3] = entry key suffix
-- Returns {queue, language, priority, position, size, enqueued_ms}, or nil when not queued.
"""
    + _LUA_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms')
if not (e[1] and e[2] and e[3] and e[4] and e[5]) then
  return nil
end
-- The entry is the truth; put the member back if the zset lost it (e.g. deleted by hand).
redis.call('ZADD', e[3], 'NX', score_of(e[4], e[5]), ARGV[1])
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[2], ARGV[3])
return {e[1], e[2], e[4], position, size, e[5]}
"""
)
"""Report where a call stands, pruning ghosts from its line first (place)."""

_LEAVE_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- ARGV[1] = call SID
-- ARGV[2] = entry key prefix
-- ARGV[3] = entry key suffix
-- Returns {queue, language, priority, position, size, enqueued_ms} as it was before leaving,
-- or nil when the call was not queued.
"""
    + _LUA_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms')
if not (e[1] and e[2] and e[3] and e[4] and e[5]) then
  redis.call('DEL', KEYS[1])
  return nil
end
-- Locate before deleting the entry: without it the caller would look like a ghost.
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[2], ARGV[3])
redis.call('ZREM', e[3], ARGV[1])
redis.call('DEL', KEYS[1])
-- An entry whose member was already gone from the zset held no place to report.
if not position then
  return nil
end
return {e[1], e[2], e[4], position, size, e[5]}
"""
)
"""Take a call out of its line and drop its entry (leave)."""

_SIZE_LUA: Final = (
    """\
-- KEYS[1] = queue zset
-- ARGV[1] = entry key prefix
-- ARGV[2] = entry key suffix
-- Returns the number of live callers after pruning ghosts.
"""
    + _LUA_HELPERS
    + """
local _, size = prune_and_locate(KEYS[1], false, ARGV[1], ARGV[2])
return size
"""
)
"""Count the live callers in one line, pruning ghosts first (size)."""


class CallQueue:
    """Callers waiting for an agent, one line per queue and language."""

    def __init__(self, client: redis.Redis, clock: Clock, heartbeat_seconds: int = 120) -> None:
        if heartbeat_seconds < 1:
            raise ValueError("heartbeat_seconds must be at least 1")
        self._client = client
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        # register_script only hashes the text; each call runs EVALSHA and falls back to EVAL
        # when the server has lost its script cache (restart, SCRIPT FLUSH).
        self._join: Script = client.register_script(_JOIN_LUA)
        self._place: Script = client.register_script(_PLACE_LUA)
        self._leave: Script = client.register_script(_LEAVE_LUA)
        self._size: Script = client.register_script(_SIZE_LUA)

    def join(self, call_sid: str, queue: str, language: str, priority: int) -> Place:
        """Queue a call; atomic (one script); a retry keeps the place, a move keeps the time."""
        _check_call_sid(call_sid)
        _check_line(queue, language)
        if not _MIN_PRIORITY <= priority <= _MAX_PRIORITY:
            raise ValueError(f"priority must be {_MIN_PRIORITY}..{_MAX_PRIORITY}, got {priority}")
        reply = self._join(
            keys=[entry_key(call_sid), queue_key(queue, language), waiting_queues_key()],
            args=[
                call_sid,
                queue,
                language,
                priority,
                self._now_ms(),
                self._heartbeat_seconds,
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
            ],
        )
        place = _to_place(reply)
        if place is None:
            raise RuntimeError(f"join of {call_sid} returned no place")
        return place

    def place(self, call_sid: str) -> Place | None:
        """Where the call stands, or None if not queued; atomic (one script, prunes ghosts)."""
        _check_call_sid(call_sid)
        return _to_place(
            self._place(keys=[entry_key(call_sid)], args=[call_sid, _ENTRY_PREFIX, _ENTRY_SUFFIX])
        )

    def heartbeat(self, call_sid: str) -> bool:
        """Keep a waiting call alive for another heartbeat; False when it is not queued."""
        _check_call_sid(call_sid)
        # A single EXPIRE is atomic on its own; it is a no-op on a missing entry.
        return bool(self._client.expire(entry_key(call_sid), self._heartbeat_seconds))

    def leave(self, call_sid: str) -> Place | None:
        """Dequeue a call and return where it was, or None; atomic (one script), idempotent."""
        _check_call_sid(call_sid)
        return _to_place(
            self._leave(keys=[entry_key(call_sid)], args=[call_sid, _ENTRY_PREFIX, _ENTRY_SUFFIX])
        )

    def size(self, queue: str, language: str) -> int:
        """Live callers in one line; atomic (one script, prunes ghosts first)."""
        _check_line(queue, language)
        reply = self._size(keys=[queue_key(queue, language)], args=[_ENTRY_PREFIX, _ENTRY_SUFFIX])
        return int(reply)

    def ping(self) -> bool:
        """True when Redis answers; never raises."""
        try:
            return bool(self._client.ping())
        except Exception:  # a health check reports failure, whatever its cause
            return False

    def _now_ms(self) -> int:
        now = self._clock.now()
        if now.tzinfo is None:
            raise ValueError("the clock returned a naive datetime")
        ms = (now - _EPOCH) // timedelta(milliseconds=1)
        if not 0 <= ms < _MAX_ENQUEUED_MS:
            raise ValueError(f"clock time {now.isoformat()} is outside the supported range")
        return ms


def _check_call_sid(call_sid: str) -> None:
    if not call_sid:
        raise ValueError("call_sid must not be empty")


def _check_line(queue: str, language: str) -> None:
    # A colon would make two different (queue, language) pairs share one key.
    for name, value in (("queue", queue), ("language", language)):
        if not value or ":" in value:
            raise ValueError(f"{name} must be non-empty and contain no ':', got {value!r}")


def _text(value: object) -> str:
    # Scripts return bytes unless the client was built with decode_responses=True.
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _to_place(reply: object) -> Place | None:
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 6:
        raise RuntimeError(f"unexpected reply from a queue script: {reply!r}")
    queue, language, priority, position, size, enqueued_ms = reply
    return Place(
        queue=_text(queue),
        language=_text(language),
        priority=int(_text(priority)),
        position=int(_text(position)),
        size=int(_text(size)),
        enqueued_at=_EPOCH + timedelta(milliseconds=int(_text(enqueued_ms))),
    )
