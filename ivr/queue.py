"""Callers waiting for an agent and the agents taking them, shared by every app instance through Redis.

This is the only module that talks to Redis. Key names are built here, all under `KEY_PREFIX`;
every change to queue or agent state happens in one Lua script (the call history lists: one
MULTI) so that concurrent webhooks on different instances never see (or leave) a half-updated line.

Data model:

* `queue_key(queue, language)` — ZSET of call SIDs. Score = (100 - priority) * 10**13 +
  enqueued_ms, so higher priority sorts first and, within a priority, earlier arrival; callers
  who arrive in the same millisecond are ordered by call SID. Scores stay below 2**53, so they
  are exact as doubles (Redis and Lua both store doubles).
* `entry_key(call_sid)` — HASH (queue, language, queue_key, priority, enqueued_ms) with a TTL of
  `heartbeat_seconds`. The TTL is the heartbeat: a call whose status callback was lost stops
  heartbeating, its entry expires, and the zset member left behind is a ghost. Once an agent
  claims the call it leaves the zset and the entry gains `agent` and `assigned_ms` (until the two
  are connected, when the entry is dropped). A caller who asked to be called back keeps their
  member and score and the entry gains `callback` (the number) and a long TTL.
* `waiting_queues_key()` — SET of every queue zset that ever had callers, for sweeps and admin.
* `agent_key(agent_id)` — HASH: `status` ("available", "busy" or "offline"; no hash = offline),
  `idle_ms` while available, `call` and `call_state` ("assigned", then "connected") while busy,
  `logout` when the agent logged out during a call, and one field `line:<queue key>` per line
  served. TTL `agent_ttl_seconds`, refreshed on every change, so a forgotten login expires.
* `available_agents_key()` — ZSET of available agent ids scored by idle-since ms (longest idle
  first). The agent hash is the truth: a member whose hash says otherwise is dropped when seen.
* `stats_key(queue, language, kind)` — LIST of the newest `HISTORY_LENGTH` wait or talk
  durations in seconds, newest first, for the wait estimate; TTL 7 days, refreshed on write.

A zset member counts as live only while its entry exists, names that zset and is not assigned
to an agent; every script that reports a position or a size first removes the ghosts from the
line it reads. An agent "busy" with an assigned call whose entry no longer names them (the
caller's heartbeat lapsed and the hang-up was lost) is released by the next script that reads
that agent, so no agent stays busy because of a caller who vanished before being connected.

The scripts build other callers' entry keys, the agents' lines and the assigned agent's key from
prefixes and suffixes passed in ARGV or stored in hashes, so they suit a single Redis (or a
replicated primary), not Redis Cluster.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

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
_AGENT_PREFIX: Final = f"{KEY_PREFIX}agent:"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# enqueued_ms must stay below 10**13 so that it cannot spill into the priority part of the score.
_MAX_ENQUEUED_MS: Final = 10**13

HISTORY_LENGTH: Final = 50
"""How many recent wait and talk durations each line keeps."""
_HISTORY_TTL_SECONDS: Final = 7 * 24 * 3600
_DEFAULT_AGENT_TTL_SECONDS: Final = 24 * 3600
_DEFAULT_CALLBACK_KEEP_SECONDS: Final = 24 * 3600

AgentStatus = Literal["offline", "available", "busy"]
HistoryKind = Literal["wait", "talk"]


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


def agent_key(agent_id: str) -> str:
    """Key of the HASH describing one agent (status, current call, lines); long TTL."""
    return f"{_AGENT_PREFIX}{agent_id}"


def failed_logins_key(agent_id: str) -> str:
    """Key of the counter of an agent's recent wrong PINs; expires with the lockout window."""
    return f"{KEY_PREFIX}login-failures:{agent_id}"


def available_agents_key() -> str:
    """Key of the ZSET of available agent ids, scored by idle-since ms (longest idle first)."""
    return f"{KEY_PREFIX}agents:available"


def stats_key(queue: str, language: str, kind: HistoryKind) -> str:
    """Key of the LIST of recent wait or talk durations (seconds, newest first) of one line."""
    return f"{KEY_PREFIX}stats:{queue}:{language}:{kind}"


@dataclass(frozen=True)
class Place:
    """Where a call stands in its line."""

    queue: str
    language: str
    priority: int
    position: int
    """1-based, counting only live callers ahead (ghosts pruned). 0 only from `join` of a call
    that has already been handed to an agent (see `CallQueue.assignment`): it is next."""
    size: int
    """Live callers in that queue and language."""
    enqueued_at: datetime
    """Aware UTC, from the injected clock at first join, truncated to the millisecond."""


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


@dataclass(frozen=True)
class HangUp:
    """What a caller's hang-up changed."""

    left: Place | None
    """Where they were, if they were waiting (now removed)."""
    kept_for_callback: bool
    """They asked for a callback: their place is kept."""
    freed_agent: str | None
    """They had been assigned but not yet connected: this agent is released (available again,
    or offline if it logged out meanwhile)."""


@dataclass(frozen=True)
class LineLoad:
    """What the wait estimate of one line needs."""

    waiting: int
    """Live callers in the line (ghosts pruned), callers waiting for a callback included."""
    agents_available: int
    """Among the agent ids passed in."""
    agents_busy: int
    """Among the agent ids passed in."""
    recent_talk_seconds: tuple[int, ...]
    """Newest first, at most `HISTORY_LENGTH`."""
    recent_wait_seconds: tuple[int, ...]
    """Newest first, at most `HISTORY_LENGTH`."""


# Shared Lua: pasted into each script after its header. Locals only (Redis 7 forbids globals).
_LUA_HELPERS: Final = """
-- The score formula, kept in Lua only so that a move can recompute it from the stored arrival
-- time. '%.0f' prints the whole double: tostring() would round it to 14 significant digits.
local function score_of(priority, enqueued_ms)
  return string.format('%.0f', (100 - tonumber(priority)) * 1e13 + tonumber(enqueued_ms))
end

-- A member is live while its entry exists, names this line and has not been handed to an agent.
local function is_live(line, member, entry_prefix, entry_suffix)
  local e = redis.call('HMGET', entry_prefix .. member .. entry_suffix, 'queue_key', 'agent')
  return e[1] == line and not e[2]
end

-- Walk the whole line in order, removing every member that is not live (expired, now names
-- another line, or assigned). Returns the 1-based live position of `member` (nil if absent) and
-- the live size.
local function prune_and_locate(line, member, entry_prefix, entry_suffix)
  local live = 0
  local position = nil
  for _, m in ipairs(redis.call('ZRANGE', line, 0, -1)) do
    if is_live(line, m, entry_prefix, entry_suffix) then
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

-- Set a TTL of `seconds` unless the key already lives longer (an entry kept for a callback must
-- not shrink back to a heartbeat). A key without a TTL (PTTL -1) gets one.
local function extend_ttl(key, seconds)
  if redis.call('PTTL', key) < tonumber(seconds) * 1000 then
    redis.call('EXPIRE', key, seconds)
  end
end
"""

_LUA_AGENT_HELPERS: Final = """
-- The agent's call ended or never started: available again (idle from now), or offline if it
-- logged out meanwhile. Returns the new status.
local function release_agent(akey, aid, avail, now_ms, ttl)
  redis.call('HDEL', akey, 'call', 'call_state')
  if redis.call('HGET', akey, 'logout') then
    redis.call('HDEL', akey, 'logout', 'idle_ms')
    redis.call('HSET', akey, 'status', 'offline')
    redis.call('ZREM', avail, aid)
    redis.call('EXPIRE', akey, ttl)
    return 'offline'
  end
  redis.call('HSET', akey, 'status', 'available', 'idle_ms', now_ms)
  redis.call('ZADD', avail, now_ms, aid)
  redis.call('EXPIRE', akey, ttl)
  return 'available'
end

local function set_offline(akey, aid, avail, ttl)
  redis.call('HDEL', akey, 'call', 'call_state', 'logout', 'idle_ms')
  redis.call('HSET', akey, 'status', 'offline')
  redis.call('ZREM', avail, aid)
  redis.call('EXPIRE', akey, ttl)
end

-- The agent's status, settling inconsistencies on the way: a busy agent whose assigned caller's
-- entry no longer names it (heartbeat lapsed, hang-up lost) is released, and the available zset
-- is made to agree with the hash (which is the truth; no hash = offline).
local function agent_state(akey, aid, avail, now_ms, ttl, entry_prefix, entry_suffix)
  local a = redis.call('HMGET', akey, 'status', 'call', 'call_state', 'idle_ms')
  if a[1] == 'busy' then
    if not a[2] or (a[3] ~= 'connected' and
        redis.call('HGET', entry_prefix .. a[2] .. entry_suffix, 'agent') ~= aid) then
      return release_agent(akey, aid, avail, now_ms, ttl)
    end
    redis.call('ZREM', avail, aid)
    return 'busy'
  elseif a[1] == 'available' then
    redis.call('ZADD', avail, 'NX', a[4] or now_ms, aid)
    return 'available'
  end
  redis.call('ZREM', avail, aid)
  return 'offline'
end

-- {call SID, agent, queue, language, priority, enqueued_ms, assigned_ms, callback or ''} of an
-- assigned entry.
local function assignment_of(call_sid, entry)
  local e = redis.call('HMGET', entry, 'agent', 'queue', 'language', 'priority', 'enqueued_ms',
    'assigned_ms', 'callback')
  return {call_sid, e[1], e[2], e[3], e[4], e[5], e[6], e[7] or ''}
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
-- Returns {queue, language, priority, position, size, enqueued_ms}; position 0 when the call
-- has already been handed to an agent (it then stays assigned, in its original line's terms).
"""
    + _LUA_HELPERS
    + """
local entry, line = KEYS[1], KEYS[2]
local priority, enqueued_ms = ARGV[4], ARGV[5]
local old = redis.call('HMGET', entry, 'queue_key', 'priority', 'enqueued_ms', 'agent', 'queue',
  'language')
if old[1] and old[2] and old[3] and old[4] and old[5] and old[6] then
  -- Assigned between the webhook's checks and this join: keep the assignment, do not requeue.
  extend_ttl(entry, ARGV[6])
  local _, size = prune_and_locate(old[1], false, ARGV[7], ARGV[8])
  return {old[5], old[6], old[2], 0, size, old[3]}
end
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
redis.call('HDEL', entry, 'agent', 'assigned_ms')
extend_ttl(entry, ARGV[6])
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
-- Returns {queue, language, priority, position, size, enqueued_ms}, or nil when not queued
-- (unknown, or already handed to an agent).
"""
    + _LUA_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms', 'agent')
if not (e[1] and e[2] and e[3] and e[4] and e[5]) or e[6] then
  return nil
end
-- The entry is the truth; put the member back if the zset lost it (e.g. deleted by hand).
redis.call('ZADD', e[3], 'NX', score_of(e[4], e[5]), ARGV[1])
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[2], ARGV[3])
return {e[1], e[2], e[4], position, size, e[5]}
"""
)
"""Report where a call stands, pruning ghosts from its line first (place)."""

_HEARTBEAT_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- ARGV[1] = heartbeat seconds
-- Returns 1 when the entry exists (its TTL is now at least a heartbeat), else 0.
"""
    + _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
extend_ttl(KEYS[1], ARGV[1])
return 1
"""
)
"""Keep an entry alive for another heartbeat without shortening a callback's longer TTL."""

_HANG_UP_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- KEYS[2] = available agents zset
-- ARGV[1] = call SID
-- ARGV[2] = entry key prefix
-- ARGV[3] = entry key suffix
-- ARGV[4] = agent key prefix
-- ARGV[5] = '1' keeps a waiting caller who asked for a callback (hang_up), '0' removes them (leave)
-- ARGV[6] = now, ms since the epoch
-- ARGV[7] = agent TTL seconds
-- Returns one of
--   {'left', queue, language, priority, position, size, enqueued_ms}  was waiting, now removed
--   {'kept'}                                                          waiting for a callback, kept
--   {'freed', agent}                        was assigned, not connected: entry gone, agent released
--   {'none'}                                                          nothing to do
"""
    + _LUA_HELPERS
    + _LUA_AGENT_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms', 'agent', 'callback')
if e[6] then
  redis.call('DEL', KEYS[1])
  local akey = ARGV[4] .. e[6]
  local a = redis.call('HMGET', akey, 'status', 'call')
  if a[1] == 'busy' and a[2] == ARGV[1] then
    release_agent(akey, e[6], KEYS[2], ARGV[6], ARGV[7])
    return {'freed', e[6]}
  end
  return {'none'}
end
if not (e[1] and e[2] and e[3] and e[4] and e[5]) then
  redis.call('DEL', KEYS[1])
  return {'none'}
end
if e[7] and ARGV[5] == '1' then
  return {'kept'}
end
-- Locate before deleting the entry: without it the caller would look like a ghost.
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[2], ARGV[3])
redis.call('ZREM', e[3], ARGV[1])
redis.call('DEL', KEYS[1])
-- An entry whose member was already gone from the zset held no place to report.
if not position then
  return {'none'}
end
return {'left', e[1], e[2], e[4], position, size, e[5]}
"""
)
"""End a call's stay: leave its line, keep a callback's place, or release its agent (leave, hang_up)."""

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

_AGENT_AVAILABLE_LUA: Final = (
    """\
-- KEYS[1] = agent hash
-- KEYS[2] = available agents zset
-- ARGV[1] = agent id
-- ARGV[2] = now, ms since the epoch
-- ARGV[3] = agent TTL seconds
-- ARGV[4] = entry key prefix
-- ARGV[5] = entry key suffix
-- ARGV[6..] = queue zsets of the lines the agent serves (replacing the stored ones)
-- Returns the agent's status: 'busy' (lines updated, stays on its call) or 'available'.
"""
    + _LUA_AGENT_HELPERS
    + """
local akey, aid, avail, now_ms, ttl = KEYS[1], ARGV[1], KEYS[2], ARGV[2], ARGV[3]
local status = agent_state(akey, aid, avail, now_ms, ttl, ARGV[4], ARGV[5])
for _, f in ipairs(redis.call('HKEYS', akey)) do
  if string.sub(f, 1, 5) == 'line:' then
    redis.call('HDEL', akey, f)
  end
end
for i = 6, #ARGV do
  redis.call('HSET', akey, 'line:' .. ARGV[i], '1')
end
if status == 'busy' then
  -- Back in service during a call: a logout requested meanwhile is withdrawn.
  redis.call('HDEL', akey, 'logout')
  redis.call('EXPIRE', akey, ttl)
  return 'busy'
end
if status ~= 'available' then
  redis.call('HSET', akey, 'status', 'available', 'idle_ms', now_ms)
end
-- An agent already available keeps its idle-since: a repeated login must not cost its turn.
redis.call('ZADD', avail, redis.call('HGET', akey, 'idle_ms'), aid)
redis.call('EXPIRE', akey, ttl)
return 'available'
"""
)
"""Log an agent in or refresh its lines (agent_available)."""

_AGENT_OFFLINE_LUA: Final = (
    """\
-- KEYS[1] = agent hash
-- KEYS[2] = available agents zset
-- ARGV[1] = agent id
-- ARGV[2] = now, ms since the epoch
-- ARGV[3] = agent TTL seconds
-- ARGV[4] = entry key prefix
-- ARGV[5] = entry key suffix
-- Returns 'busy' (flagged to go offline when its call finishes) or 'offline'.
"""
    + _LUA_AGENT_HELPERS
    + """
local akey, aid, avail, ttl = KEYS[1], ARGV[1], KEYS[2], ARGV[3]
if agent_state(akey, aid, avail, ARGV[2], ttl, ARGV[4], ARGV[5]) == 'busy' then
  redis.call('HSET', akey, 'logout', '1')
  redis.call('EXPIRE', akey, ttl)
  return 'busy'
end
set_offline(akey, aid, avail, ttl)
return 'offline'
"""
)
"""Log an agent out, at once or when its call finishes (agent_offline)."""

_AGENT_STATUSES_LUA: Final = (
    """\
-- KEYS[1] = available agents zset
-- KEYS[2..] = agent hashes, in the order of the agent ids
-- ARGV[1] = entry key prefix
-- ARGV[2] = entry key suffix
-- ARGV[3] = now, ms since the epoch
-- ARGV[4] = agent TTL seconds
-- ARGV[5..] = agent ids
-- Returns {status, call SID or '', status, call SID or '', ...} in the order of the ids.
"""
    + _LUA_AGENT_HELPERS
    + """
local out = {}
for i = 5, #ARGV do
  local akey = KEYS[i - 3]
  local status = agent_state(akey, ARGV[i], KEYS[1], ARGV[3], ARGV[4], ARGV[1], ARGV[2])
  out[#out + 1] = status
  out[#out + 1] = (status == 'busy' and redis.call('HGET', akey, 'call')) or ''
end
return out
"""
)
"""Read several agents' statuses and calls, settling stale assignments (agent_statuses, agent_call)."""

_CLAIM_NEXT_LUA: Final = (
    """\
-- KEYS[1] = agent hash
-- KEYS[2] = available agents zset
-- ARGV[1] = agent id
-- ARGV[2] = now, ms since the epoch
-- ARGV[3] = agent TTL seconds
-- ARGV[4] = heartbeat seconds (the least TTL of an assigned entry)
-- ARGV[5] = entry key prefix
-- ARGV[6] = entry key suffix
-- Returns {call SID, agent, queue, language, priority, enqueued_ms, assigned_ms, callback or ''},
-- or nil when the agent is not available or nobody live waits in its lines.
"""
    + _LUA_HELPERS
    + _LUA_AGENT_HELPERS
    + """
local akey, aid, avail, now_ms = KEYS[1], ARGV[1], KEYS[2], ARGV[2]
local prefix, suffix = ARGV[5], ARGV[6]
if agent_state(akey, aid, avail, now_ms, ARGV[3], prefix, suffix) ~= 'available' then
  return nil
end
local best_line, best_member, best_score = nil, nil, nil
for _, f in ipairs(redis.call('HKEYS', akey)) do
  if string.sub(f, 1, 5) == 'line:' then
    local line = string.sub(f, 6)
    -- Prune ghosts at the head until a live caller (or nobody) is first.
    while true do
      local head = redis.call('ZRANGE', line, 0, 0, 'WITHSCORES')
      if #head == 0 then
        break
      end
      if is_live(line, head[1], prefix, suffix) then
        local score = tonumber(head[2])
        -- Lowest score wins; equal scores in two lines go by call SID, as within one line.
        if not best_score or score < best_score or (score == best_score and head[1] < best_member) then
          best_line, best_member, best_score = line, head[1], score
        end
        break
      end
      redis.call('ZREM', line, head[1])
    end
  end
end
if not best_member then
  return nil
end
local entry = prefix .. best_member .. suffix
redis.call('ZREM', best_line, best_member)
redis.call('HSET', entry, 'agent', aid, 'assigned_ms', now_ms)
extend_ttl(entry, ARGV[4])
redis.call('HSET', akey, 'status', 'busy', 'call', best_member, 'call_state', 'assigned')
redis.call('HDEL', akey, 'idle_ms')
redis.call('ZREM', avail, aid)
redis.call('EXPIRE', akey, ARGV[3])
return assignment_of(best_member, entry)
"""
)
"""Hand the best live caller across an available agent's lines to that agent (claim_next)."""

_CONNECTED_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- KEYS[2] = available agents zset
-- ARGV[1] = call SID
-- ARGV[2] = agent key prefix
-- ARGV[3] = agent TTL seconds
-- Returns the assignment as in claim_next (before the entry was dropped), or nil when the call
-- is not assigned.
"""
    + _LUA_AGENT_HELPERS
    + """
local aid = redis.call('HGET', KEYS[1], 'agent')
if not aid then
  return nil
end
local result = assignment_of(ARGV[1], KEYS[1])
local akey = ARGV[2] .. aid
local a = redis.call('HMGET', akey, 'status', 'call')
-- Never take over an agent that is (somehow) on another call; otherwise it is on this one.
if a[1] ~= 'busy' or a[2] == ARGV[1] then
  redis.call('HSET', akey, 'status', 'busy', 'call', ARGV[1], 'call_state', 'connected')
  redis.call('HDEL', akey, 'idle_ms')
  redis.call('ZREM', KEYS[2], aid)
  redis.call('EXPIRE', akey, ARGV[3])
end
redis.call('DEL', KEYS[1])
return result
"""
)
"""Mark an assigned caller as talking to its agent and drop its entry (connected)."""

_FINISH_CALL_LUA: Final = (
    """\
-- KEYS[1] = agent hash
-- KEYS[2] = available agents zset
-- KEYS[3] = entry hash of the call
-- ARGV[1] = agent id
-- ARGV[2] = call SID
-- ARGV[3] = now, ms since the epoch
-- ARGV[4] = agent TTL seconds
-- ARGV[5] = entry key prefix
-- ARGV[6] = entry key suffix
-- Returns the agent's status afterwards.
"""
    + _LUA_AGENT_HELPERS
    + """
local akey, aid, avail = KEYS[1], ARGV[1], KEYS[2]
local a = redis.call('HMGET', akey, 'status', 'call')
if a[1] == 'busy' and a[2] == ARGV[2] then
  -- Ended before `connected` was reported: the assignment ends with it.
  if redis.call('HGET', KEYS[3], 'agent') == aid then
    redis.call('DEL', KEYS[3])
  end
  return release_agent(akey, aid, avail, ARGV[3], ARGV[4])
end
-- Not (or no longer) on this call: a duplicate or stale webhook changes nothing.
return agent_state(akey, aid, avail, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""
)
"""Release an agent whose conversation with one call ended, if it is still on it (finish_call)."""

_RETURN_TO_QUEUE_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- KEYS[2] = available agents zset
-- ARGV[1] = call SID
-- ARGV[2] = entry key prefix
-- ARGV[3] = entry key suffix
-- ARGV[4] = agent key prefix
-- ARGV[5] = agent TTL seconds
-- ARGV[6] = heartbeat seconds
-- Returns {queue, language, priority, position, size, enqueued_ms} back in the line, or nil when
-- the call is not assigned.
"""
    + _LUA_HELPERS
    + _LUA_AGENT_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms', 'agent')
if not (e[1] and e[2] and e[3] and e[4] and e[5] and e[6]) then
  return nil
end
redis.call('HDEL', KEYS[1], 'agent', 'assigned_ms')
extend_ttl(KEYS[1], ARGV[6])
-- The original score: first among the callers of its priority who arrived after it.
redis.call('ZADD', e[3], score_of(e[4], e[5]), ARGV[1])
local akey = ARGV[4] .. e[6]
local a = redis.call('HMGET', akey, 'status', 'call')
if a[1] ~= 'busy' or a[2] == ARGV[1] then
  -- A phone nobody answers must not get the next caller.
  set_offline(akey, e[6], KEYS[2], ARGV[5])
end
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[2], ARGV[3])
return {e[1], e[2], e[4], position, size, e[5]}
"""
)
"""Put an unanswered assignment back at its original place and log the agent out (return_to_queue)."""

_REQUEST_CALLBACK_LUA: Final = (
    """\
-- KEYS[1] = entry hash of the call
-- ARGV[1] = call SID
-- ARGV[2] = callback number
-- ARGV[3] = seconds to keep the place (entry TTL, never shortened)
-- ARGV[4] = entry key prefix
-- ARGV[5] = entry key suffix
-- Returns {queue, language, priority, position, size, enqueued_ms}, or nil when not queued.
"""
    + _LUA_HELPERS
    + """
local e = redis.call('HMGET', KEYS[1], 'queue', 'language', 'queue_key', 'priority',
  'enqueued_ms', 'agent')
if not (e[1] and e[2] and e[3] and e[4] and e[5]) or e[6] then
  return nil
end
redis.call('HSET', KEYS[1], 'callback', ARGV[2])
extend_ttl(KEYS[1], ARGV[3])
redis.call('ZADD', e[3], 'NX', score_of(e[4], e[5]), ARGV[1])
local position, size = prune_and_locate(e[3], ARGV[1], ARGV[4], ARGV[5])
return {e[1], e[2], e[4], position, size, e[5]}
"""
)
"""Keep a waiting caller's place for a callback instead of a heartbeat (request_callback)."""

_LINE_LOAD_LUA: Final = (
    """\
-- KEYS[1] = queue zset
-- KEYS[2] = wait history list
-- KEYS[3] = talk history list
-- KEYS[4] = available agents zset
-- KEYS[5..] = agent hashes, in the order of the agent ids
-- ARGV[1] = entry key prefix
-- ARGV[2] = entry key suffix
-- ARGV[3] = now, ms since the epoch
-- ARGV[4] = agent TTL seconds
-- ARGV[5] = history length
-- ARGV[6..] = agent ids
-- Returns {waiting, available, busy, {wait seconds...}, {talk seconds...}}, newest first.
"""
    + _LUA_HELPERS
    + _LUA_AGENT_HELPERS
    + """
local _, waiting = prune_and_locate(KEYS[1], false, ARGV[1], ARGV[2])
local available, busy = 0, 0
for i = 6, #ARGV do
  local status = agent_state(KEYS[i - 1], ARGV[i], KEYS[4], ARGV[3], ARGV[4], ARGV[1], ARGV[2])
  if status == 'available' then
    available = available + 1
  elseif status == 'busy' then
    busy = busy + 1
  end
end
local last = tonumber(ARGV[5]) - 1
return {waiting, available, busy, redis.call('LRANGE', KEYS[2], 0, last),
  redis.call('LRANGE', KEYS[3], 0, last)}
"""
)
"""Everything the wait estimate of one line needs, in one round trip (line_load)."""


class CallQueue:
    """Callers waiting for an agent, one line per queue and language, and the agents taking them."""

    def __init__(
        self,
        client: redis.Redis,
        clock: Clock,
        heartbeat_seconds: int = 120,
        agent_ttl_seconds: int = _DEFAULT_AGENT_TTL_SECONDS,
    ) -> None:
        if heartbeat_seconds < 1:
            raise ValueError("heartbeat_seconds must be at least 1")
        if agent_ttl_seconds < 1:
            raise ValueError("agent_ttl_seconds must be at least 1")
        self._client = client
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._agent_ttl_seconds = agent_ttl_seconds
        # register_script only hashes the text; each call runs EVALSHA and falls back to EVAL
        # when the server has lost its script cache (restart, SCRIPT FLUSH).
        self._join: Script = client.register_script(_JOIN_LUA)
        self._place: Script = client.register_script(_PLACE_LUA)
        self._heartbeat: Script = client.register_script(_HEARTBEAT_LUA)
        self._hang_up: Script = client.register_script(_HANG_UP_LUA)
        self._size: Script = client.register_script(_SIZE_LUA)
        self._agent_available: Script = client.register_script(_AGENT_AVAILABLE_LUA)
        self._agent_offline: Script = client.register_script(_AGENT_OFFLINE_LUA)
        self._agent_statuses: Script = client.register_script(_AGENT_STATUSES_LUA)
        self._claim_next: Script = client.register_script(_CLAIM_NEXT_LUA)
        self._connected: Script = client.register_script(_CONNECTED_LUA)
        self._finish_call: Script = client.register_script(_FINISH_CALL_LUA)
        self._return_to_queue: Script = client.register_script(_RETURN_TO_QUEUE_LUA)
        self._request_callback: Script = client.register_script(_REQUEST_CALLBACK_LUA)
        self._line_load: Script = client.register_script(_LINE_LOAD_LUA)

    # --- callers ----------------------------------------------------------------------------------

    def join(self, call_sid: str, queue: str, language: str, priority: int) -> Place:
        """Queue a call; atomic (one script); a retry keeps the place, a move keeps the time.

        A call already handed to an agent stays assigned and is not queued again: the place
        returned is in its original line with position 0 (it is next; see `assignment`).
        """
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
        """Where the call stands, or None if not queued (unknown, or handed to an agent: ask
        `assignment` first); atomic (one script, prunes ghosts)."""
        _check_call_sid(call_sid)
        return _to_place(
            self._place(keys=[entry_key(call_sid)], args=[call_sid, _ENTRY_PREFIX, _ENTRY_SUFFIX])
        )

    def heartbeat(self, call_sid: str) -> bool:
        """Keep a waiting or assigned call alive for another heartbeat; False when it is unknown.

        Atomic (one script); never shortens the longer TTL of a place kept for a callback.
        """
        _check_call_sid(call_sid)
        return bool(self._heartbeat(keys=[entry_key(call_sid)], args=[self._heartbeat_seconds]))

    def leave(self, call_sid: str) -> Place | None:
        """Dequeue a call and return where it was, or None; atomic (one script), idempotent.

        Removes a place kept for a callback too. A call handed to an agent but not connected
        yet loses its assignment and the agent is released (returns None: it held no place).
        The status callback should call `hang_up`, which keeps callback places.
        """
        _check_call_sid(call_sid)
        outcome = self._end(call_sid, keep_callback=False)
        return outcome.left

    def hang_up(self, call_sid: str) -> HangUp:
        """The caller's call ended (status callback); atomic (one script), idempotent.

        Waiting with a callback requested: everything is kept. Waiting otherwise: leaves its
        line. Assigned but not connected: the entry is dropped and the agent released
        (available again, or offline if it logged out meanwhile). Connected or unknown: nothing.
        """
        _check_call_sid(call_sid)
        return self._end(call_sid, keep_callback=True)

    def size(self, queue: str, language: str) -> int:
        """Live callers in one line; atomic (one script, prunes ghosts first)."""
        _check_line(queue, language)
        reply = self._size(keys=[queue_key(queue, language)], args=[_ENTRY_PREFIX, _ENTRY_SUFFIX])
        return int(reply)

    def request_callback(
        self, call_sid: str, number: str, keep_seconds: int = _DEFAULT_CALLBACK_KEEP_SECONDS
    ) -> Place | None:
        """Keep a waiting caller's place for a callback to `number` instead of holding on.

        The call keeps its member and score (others still count it); the entry stores the
        number and lives at least `keep_seconds` (no heartbeat will come). None when the call
        is not queued (unknown, or already handed to an agent). Atomic (one script).
        """
        _check_call_sid(call_sid)
        if not number:
            raise ValueError("number must not be empty")
        if keep_seconds < 1:
            raise ValueError("keep_seconds must be at least 1")
        return _to_place(
            self._request_callback(
                keys=[entry_key(call_sid)],
                args=[call_sid, number, keep_seconds, _ENTRY_PREFIX, _ENTRY_SUFFIX],
            )
        )

    # --- agents -----------------------------------------------------------------------------------

    def agent_available(self, agent_id: str, lines: Sequence[tuple[str, str]]) -> AgentStatus:
        """Log an agent in (or refresh it) to serve `lines` of (queue, language); atomic (one script).

        The stored lines are replaced. An agent on a call stays busy (and a logout it asked
        for is withdrawn): "busy". Otherwise it is available, idle since now, or since it
        became available if it already was (a repeated login does not cost its turn).
        """
        _check_agent(agent_id)
        for queue, language in lines:
            _check_line(queue, language)
        line_keys = list(dict.fromkeys(queue_key(q, lang) for q, lang in lines))
        args: list[str | int] = [
            agent_id,
            self._now_ms(),
            self._agent_ttl_seconds,
            _ENTRY_PREFIX,
            _ENTRY_SUFFIX,
            *line_keys,
        ]
        reply = self._agent_available(keys=[agent_key(agent_id), available_agents_key()], args=args)
        return _to_status(reply)

    def agent_offline(self, agent_id: str) -> AgentStatus:
        """Log an agent out; atomic (one script), idempotent.

        An agent on a call stays busy and goes offline when the call finishes ("busy");
        otherwise it is offline at once.
        """
        _check_agent(agent_id)
        reply = self._agent_offline(
            keys=[agent_key(agent_id), available_agents_key()],
            args=[agent_id, self._now_ms(), self._agent_ttl_seconds, _ENTRY_PREFIX, _ENTRY_SUFFIX],
        )
        return _to_status(reply)

    def login_failed(self, agent_id: str, window_seconds: int) -> int:
        """Count a wrong PIN for an agent; the count of this window (atomic: INCR, then EXPIRE once)."""
        key = failed_logins_key(agent_id)
        pipe = self._client.pipeline()
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def login_failures(self, agent_id: str) -> int:
        """Wrong PINs for an agent in the current window."""
        return int(self._client.get(failed_logins_key(agent_id)) or 0)

    def login_succeeded(self, agent_id: str) -> None:
        """Forget an agent's wrong PINs."""
        self._client.delete(failed_logins_key(agent_id))

    def agent_status(self, agent_id: str) -> AgentStatus:
        """One agent's status; atomic (one script, releases an agent whose caller vanished)."""
        return self.agent_statuses([agent_id])[agent_id]

    def agent_statuses(self, agent_ids: Sequence[str]) -> dict[str, AgentStatus]:
        """Several agents' statuses in one round trip; atomic (one script, as `agent_status`)."""
        return {agent: status for agent, (status, _) in self._read_agents(agent_ids).items()}

    def agent_call(self, agent_id: str) -> str | None:
        """The call SID the agent is busy with (assigned or connected), or None; atomic."""
        return self._read_agents([agent_id])[agent_id][1]

    def claim_next(self, agent_id: str) -> Assignment | None:
        """Hand the best caller across the agent's lines to it; atomic (one script).

        Only for an available agent: among the live callers at the heads of its lines (ghosts
        pruned), the lowest score wins (highest priority, then longest waiting). The caller
        leaves its line, its entry records the agent, the agent becomes busy with it. None when
        the agent is not available or nobody waits. Concurrent claims never share a caller, and
        one agent never gets two.
        """
        _check_agent(agent_id)
        reply = self._claim_next(
            keys=[agent_key(agent_id), available_agents_key()],
            args=[
                agent_id,
                self._now_ms(),
                self._agent_ttl_seconds,
                self._heartbeat_seconds,
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
            ],
        )
        return _to_assignment(reply)

    def dispatch(self) -> list[Assignment]:
        """Let every available agent, longest idle first, claim a caller, until none can.

        Safe from any instance at any time, concurrently: each claim is atomic (`claim_next`);
        the whole is not, so another instance's dispatch may take some of the pairs.
        """
        assignments: list[Assignment] = []
        while True:
            agents = [_text(a) for a in self._client.zrange(available_agents_key(), 0, -1)]
            claimed = [a for a in map(self.claim_next, agents) if a is not None]
            if not claimed:
                return assignments
            assignments.extend(claimed)

    def assignment(self, call_sid: str) -> Assignment | None:
        """The agent a caller has been handed to and not yet connected with, or None; atomic
        (one HMGET)."""
        _check_call_sid(call_sid)
        fields = self._client.hmget(
            entry_key(call_sid),
            ["agent", "queue", "language", "priority", "enqueued_ms", "assigned_ms", "callback"],
        )
        if any(value is None for value in fields[:6]):
            return None
        return _to_assignment([call_sid, *(b"" if value is None else value for value in fields)])

    def connected(self, call_sid: str) -> Assignment | None:
        """The assigned caller and its agent are talking now; atomic (one script).

        The caller's entry is dropped (it is no longer queued) and the agent stays busy with
        the call until `finish_call`. Returns the assignment it was, None if not assigned.
        """
        _check_call_sid(call_sid)
        reply = self._connected(
            keys=[entry_key(call_sid), available_agents_key()],
            args=[call_sid, _AGENT_PREFIX, self._agent_ttl_seconds],
        )
        return _to_assignment(reply)

    def finish_call(self, agent_id: str, call_sid: str) -> AgentStatus:
        """The agent's conversation with `call_sid` ended; atomic (one script), idempotent.

        Only if the agent is busy with exactly this call: it becomes available (idle since
        now), or offline if it logged out meanwhile, and an assignment not yet connected ends
        with it. Otherwise (a duplicate or stale webhook) nothing changes. Returns the status.
        """
        _check_agent(agent_id)
        _check_call_sid(call_sid)
        reply = self._finish_call(
            keys=[agent_key(agent_id), available_agents_key(), entry_key(call_sid)],
            args=[
                agent_id,
                call_sid,
                self._now_ms(),
                self._agent_ttl_seconds,
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
            ],
        )
        return _to_status(reply)

    def return_to_queue(self, call_sid: str) -> Place | None:
        """The assigned agent did not answer: requeue the caller, log the agent out; atomic.

        The caller goes back to its original line at its original score (ahead of everyone of
        its priority who arrived later) and its assignment is cleared; that agent goes offline
        so that a phone nobody answers gets no next caller. None if the call is not assigned.
        """
        _check_call_sid(call_sid)
        reply = self._return_to_queue(
            keys=[entry_key(call_sid), available_agents_key()],
            args=[
                call_sid,
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
                _AGENT_PREFIX,
                self._agent_ttl_seconds,
                self._heartbeat_seconds,
            ],
        )
        return _to_place(reply)

    # --- history and load -------------------------------------------------------------------------

    def record_answered(self, queue: str, language: str, wait_seconds: int) -> None:
        """Remember how long an answered caller waited; atomic (MULTI), keeps the newest 50."""
        self._record(stats_key(queue, language, "wait"), queue, language, wait_seconds)

    def record_talk(self, queue: str, language: str, talk_seconds: int) -> None:
        """Remember how long a conversation lasted; atomic (MULTI), keeps the newest 50."""
        self._record(stats_key(queue, language, "talk"), queue, language, talk_seconds)

    def line_load(self, queue: str, language: str, agent_ids: Sequence[str]) -> LineLoad:
        """Live callers, available and busy agents among `agent_ids`, and recent history of one
        line, for the wait estimate; atomic (one script, prunes ghosts, settles stale agents)."""
        _check_line(queue, language)
        agents = list(dict.fromkeys(agent_ids))
        for agent in agents:
            _check_agent(agent)
        reply = self._line_load(
            keys=[
                queue_key(queue, language),
                stats_key(queue, language, "wait"),
                stats_key(queue, language, "talk"),
                available_agents_key(),
                *(agent_key(a) for a in agents),
            ],
            args=[
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
                self._now_ms(),
                self._agent_ttl_seconds,
                HISTORY_LENGTH,
                *agents,
            ],
        )
        if not isinstance(reply, list) or len(reply) != 5:
            raise RuntimeError(f"unexpected reply from the line load script: {reply!r}")
        waiting, available, busy, waits, talks = reply
        return LineLoad(
            waiting=int(waiting),
            agents_available=int(available),
            agents_busy=int(busy),
            recent_talk_seconds=tuple(int(_text(t)) for t in talks),
            recent_wait_seconds=tuple(int(_text(w)) for w in waits),
        )

    def ping(self) -> bool:
        """True when Redis answers; never raises."""
        try:
            return bool(self._client.ping())
        except Exception:  # a health check reports failure, whatever its cause
            return False

    # --- internals --------------------------------------------------------------------------------

    def _end(self, call_sid: str, *, keep_callback: bool) -> HangUp:
        reply = self._hang_up(
            keys=[entry_key(call_sid), available_agents_key()],
            args=[
                call_sid,
                _ENTRY_PREFIX,
                _ENTRY_SUFFIX,
                _AGENT_PREFIX,
                "1" if keep_callback else "0",
                self._now_ms(),
                self._agent_ttl_seconds,
            ],
        )
        if not isinstance(reply, list) or not reply:
            raise RuntimeError(f"unexpected reply from the hang-up script: {reply!r}")
        kind = _text(reply[0])
        if kind == "left":
            return HangUp(left=_to_place(reply[1:]), kept_for_callback=False, freed_agent=None)
        if kind == "kept":
            return HangUp(left=None, kept_for_callback=True, freed_agent=None)
        if kind == "freed" and len(reply) == 2:
            return HangUp(left=None, kept_for_callback=False, freed_agent=_text(reply[1]))
        if kind == "none":
            return HangUp(left=None, kept_for_callback=False, freed_agent=None)
        raise RuntimeError(f"unexpected reply from the hang-up script: {reply!r}")

    def _read_agents(self, agent_ids: Sequence[str]) -> dict[str, tuple[AgentStatus, str | None]]:
        agents = list(dict.fromkeys(agent_ids))
        if not agents:
            return {}
        for agent in agents:
            _check_agent(agent)
        reply = self._agent_statuses(
            keys=[available_agents_key(), *(agent_key(a) for a in agents)],
            args=[_ENTRY_PREFIX, _ENTRY_SUFFIX, self._now_ms(), self._agent_ttl_seconds, *agents],
        )
        if not isinstance(reply, list) or len(reply) != 2 * len(agents):
            raise RuntimeError(f"unexpected reply from the agent status script: {reply!r}")
        return {
            agent: (_to_status(reply[2 * i]), _text(reply[2 * i + 1]) or None)
            for i, agent in enumerate(agents)
        }

    def _record(self, key: str, queue: str, language: str, seconds: int) -> None:
        _check_line(queue, language)
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        with self._client.pipeline(transaction=True) as pipe:
            pipe.lpush(key, seconds)
            pipe.ltrim(key, 0, HISTORY_LENGTH - 1)
            pipe.expire(key, _HISTORY_TTL_SECONDS)
            pipe.execute()

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


def _check_agent(agent_id: str) -> None:
    if not agent_id:
        raise ValueError("agent_id must not be empty")


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


def _instant(ms: object) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(_text(ms)))


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
        enqueued_at=_instant(enqueued_ms),
    )


def _to_assignment(reply: object) -> Assignment | None:
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 8:
        raise RuntimeError(f"unexpected reply from an assignment script: {reply!r}")
    call_sid, agent, queue, language, priority, enqueued_ms, assigned_ms, callback = reply
    return Assignment(
        call_sid=_text(call_sid),
        agent=_text(agent),
        queue=_text(queue),
        language=_text(language),
        priority=int(_text(priority)),
        enqueued_at=_instant(enqueued_ms),
        assigned_at=_instant(assigned_ms),
        callback_number=_text(callback) or None,
    )


def _to_status(value: object) -> AgentStatus:
    status = _text(value)
    if status == "available":
        return "available"
    if status == "busy":
        return "busy"
    if status == "offline":
        return "offline"
    raise RuntimeError(f"unexpected agent status from a script: {status!r}")
