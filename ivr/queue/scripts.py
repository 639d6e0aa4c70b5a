"""The Lua scripts: every multi-step change to queue or agent state is one of these, run atomically.

Every script receives the same first three keys and eight arguments, the context (`CONTEXT_HEADER`),
then its own, numbered from KEYS[4] and ARGV[9]. The shared helpers (`HELPERS`) are pasted into
each script after its header; they are locals only (Redis 7 forbids globals).

Cost: no script walks a line. A line is read only by ZRANK, ZCARD, ZSCORE and the head
(`ZRANGE line 0 0`); expired calls are found through the deadlines zset
(`ZRANGEBYSCORE deadlines -inf now LIMIT 0 n`), at most `n` of them per script. Loops run over
agents (and their few lines), never over callers, and each is bounded. No script on a call's path
walks the agents logged in either: each line keeps its agents by state (available, talking, being
put through; `index_agent` moves an agent at every change of its state), dispatch looks only at the
lines with callers and the longest-idle agents of each, and a line's load reads its own agent sets.
Reading agents by id (`AGENT_STATUSES`) is for the dashboard, the metrics and the background's
settling, a bounded number at a time.

The scripts build other calls' and agents' key names from the prefixes and suffixes in the
context; every such name starts with `KEY_PREFIX` and its `{ivr}` hash tag, so a script's keys are
all in one hash slot and the scripts run on Redis Cluster as on a single Redis (`ivr.queue.keys`).
`now` always comes from the app's clock (ARGV[1]), never from Redis TIME: tests and the simulator
move time.
"""

from __future__ import annotations

from typing import Final

from ivr.queue.keys import ENTRY_READS_UP_TO

NEWER: Final = "newer"
"""The reply of a per-call or per-agent script that found a caller's entry or an agent's hash a
newer release wrote (`newer` below) and left it as it was, having written nothing."""

CONTEXT_HEADER: Final = """\
-- KEYS[1] = deadlines zset (call SID -> heartbeat deadline, ms)
-- KEYS[2] = available agents zset (agent id -> idle since, ms)
-- KEYS[3] = index set of queue zsets
-- ARGV[1] = now, ms since the epoch (the app's clock)
-- ARGV[2] = heartbeat, ms
-- ARGV[3] = grace, ms: how long an entry outlives its deadline (the sweeper's safety net)
-- ARGV[4] = agent TTL, seconds (agent hashes and connection keys)
-- ARGV[5] = per-call key prefix
-- ARGV[6] = entry key suffix
-- ARGV[7] = agent key prefix
-- ARGV[8] = expired calls a request sweeps at most
"""

HELPERS: Final = (
    f"""
-- The newest version of a caller's entry or an agent's hash this code reads (`v`, absent = 1).
local READS_UP_TO = {ENTRY_READS_UP_TO}"""
    + """
local NOW = tonumber(ARGV[1])
local HEARTBEAT_MS = tonumber(ARGV[2])
local GRACE_MS = tonumber(ARGV[3])
local AGENT_TTL = ARGV[4]
local CALL_PREFIX, ENTRY_SUFFIX, AGENT_PREFIX = ARGV[5], ARGV[6], ARGV[7]
local REQUEST_SWEEP = tonumber(ARGV[8])
local DEADLINES, AVAILABLE, LINES = KEYS[1], KEYS[2], KEYS[3]
-- The lines that may have callers (a subset of LINES): every script that puts a caller in a line
-- adds it, dispatch takes out those it finds empty.
local WAITING = LINES .. ':waiting'
-- Each line's agents, by what they are doing, suffixed to the line's key: available (idle since,
-- ms), talking (connected since) and being put through (assigned since). Kept by index_agent at
-- every change of an agent's state, so that dispatch and line_load read the agents of the lines
-- they look at, never the whole roster.
local FREE, TALKING, CONNECTING = ':free', ':talking', ':connecting'
local AGENT_SETS = {FREE, TALKING, CONNECTING}
-- Heads of one line a claim may drop before giving up on that line for now (the sweep and the
-- audit clean up the rest): keeps a claim bounded whatever the line holds.
local CLAIM_TRIES = 32
-- Agents a dispatch hands callers to at most (the next dispatch goes on), and the longest-idle
-- agents of a line it looks at for one that has not already come away empty this dispatch.
local DISPATCH_CLAIMS = 500
local DISPATCH_PEEK = 8
-- Twilio ends a call after four hours unless told otherwise (<Dial timeLimit>): an agent connected
-- for longer, plus a margin, is on a call whose Dial action and status callback both never came.
local MAX_CONNECTED_MS = (4 * 3600 + 15 * 60) * 1000

-- '%.0f' prints the whole double: tostring() would round it to 14 significant digits.
local function int_str(x)
  return string.format('%.0f', x)
end

-- Higher priority first, then earlier arrival. Below 2^53, so exact as a double in Lua and Redis.
local function score_of(priority, enqueued_ms)
  return int_str((100 - tonumber(priority)) * 1e13 + tonumber(enqueued_ms))
end

local function entry_of(sid)
  return CALL_PREFIX .. sid .. ENTRY_SUFFIX
end

local function agent_of(aid)
  return AGENT_PREFIX .. aid
end

-- True when a newer release wrote the hash at `key` (a caller's entry, an agent's hash): its `v`
-- is above READS_UP_TO (absent = 1). This process then leaves it as it is, for a newer one.
local function newer(key)
  local v = redis.call('HGET', key, 'v')
  return v ~= false and (tonumber(v) or math.huge) > READS_UP_TO
end

-- A call is live while its deadline has not passed; a call without a deadline is not.
local function is_live(sid)
  local deadline = redis.call('ZSCORE', DEADLINES, sid)
  if not deadline then
    return false
  end
  return tonumber(deadline) >= NOW
end

-- Move a call's deadline to now + ms unless it is already later (ZADD GT: a place kept for a
-- callback keeps its longer deadline), and keep its entry until GRACE_MS past the deadline.
local function extend_deadline(sid, ms)
  redis.call('ZADD', DEADLINES, 'GT', int_str(NOW + ms), sid)
  local ttl = tonumber(redis.call('ZSCORE', DEADLINES, sid)) - NOW + GRACE_MS
  local entry = entry_of(sid)
  if redis.call('PTTL', entry) < ttl then
    redis.call('PEXPIRE', entry, int_str(ttl))
  end
end

-- A call's entry as a table, or nil when it has none (or only part of one).
local function read_entry(sid)
  local e = redis.call('HMGET', entry_of(sid), 'queue', 'language', 'queue_key', 'priority',
    'enqueued_ms', 'agent', 'assigned_ms', 'callback', 'our_number', 'reference', 'callback_code')
  if not (e[1] and e[2] and e[3] and e[4] and e[5]) then
    return nil
  end
  return {queue = e[1], language = e[2], line = e[3], priority = e[4], enqueued_ms = e[5],
    agent = e[6] or nil, assigned_ms = e[7] or nil, callback = e[8] or nil,
    our_number = e[9] or nil, reference = e[10] or nil, callback_code = e[11] or nil}
end

-- {queue, language, priority, position, size, enqueued_ms}: where a waiting call stands.
local function place_of(sid, e)
  local rank = redis.call('ZRANK', e.line, sid)
  return {e.queue, e.language, e.priority, rank and rank + 1 or 0, redis.call('ZCARD', e.line),
    e.enqueued_ms}
end

-- {call SID, agent, queue, language, priority, enqueued_ms, assigned_ms, callback, our number,
-- reference, callback code} of an assigned call ('' for what is absent); `e`: its entry, if read.
local function assignment_of(sid, e)
  e = e or read_entry(sid)
  return {sid, e.agent, e.queue, e.language, e.priority, e.enqueued_ms, e.assigned_ms,
    e.callback or '', e.our_number or '', e.reference or '', e.callback_code or ''}
end

-- The queue zsets of the lines an agent serves (its hash's `line:` fields).
local function lines_of(akey)
  local lines = {}
  for _, field in ipairs(redis.call('HKEYS', akey)) do
    if string.sub(field, 1, 5) == 'line:' then
      lines[#lines + 1] = string.sub(field, 6)
    end
  end
  return lines
end

-- Put an agent in the `kind` set of each of `lines` at `score`, and out of their other agent
-- sets (out of all of them when `kind` is nil).
local function place_agent(aid, lines, kind, score)
  for _, line in ipairs(lines) do
    for _, k in ipairs(AGENT_SETS) do
      if k == kind then
        redis.call('ZADD', line .. k, score, aid)
      else
        redis.call('ZREM', line .. k, aid)
      end
    end
  end
end

-- Put an agent in the per-line agent sets its hash says, in each of its lines (`lines`, when
-- already read): FREE when available, TALKING when connected, CONNECTING when assigned a caller
-- not yet put through, none when offline (or gone). Every script that changes an agent's status
-- or call state calls it.
local function index_agent(aid, lines)
  local akey = agent_of(aid)
  local a = redis.call('HMGET', akey, 'status', 'call_state', 'idle_ms', 'connected_ms',
    'assigned_ms', 'call')
  local kind, score = nil, nil
  if a[1] == 'available' then
    kind, score = FREE, a[3] or int_str(NOW)
  elseif a[1] == 'busy' and a[2] == 'connected' then
    kind, score = TALKING, a[4] or int_str(NOW)
  elseif a[1] == 'busy' then
    kind = CONNECTING
    score = a[5] or (a[6] and redis.call('HGET', entry_of(a[6]), 'assigned_ms')) or int_str(NOW)
  end
  place_agent(aid, lines or lines_of(akey), kind, score)
end

-- Put `sid` in `line` at `score` (NX: only if it is not there) and note that the line has callers.
local function add_to_line(line, score, sid, nx)
  if nx then
    redis.call('ZADD', line, 'NX', score, sid)
  else
    redis.call('ZADD', line, score, sid)
  end
  redis.call('SADD', WAITING, line)
end

-- The agent's call ended or never started: available again (idle from now), or offline if it
-- logged out meanwhile. Returns the new status.
local function release_agent(aid)
  local akey = agent_of(aid)
  redis.call('HDEL', akey, 'call', 'call_state', 'connected_ms', 'assigned_ms')
  if redis.call('HGET', akey, 'logout') then
    redis.call('HDEL', akey, 'logout', 'idle_ms')
    redis.call('HSET', akey, 'status', 'offline')
    redis.call('ZREM', AVAILABLE, aid)
    redis.call('EXPIRE', akey, AGENT_TTL)
    index_agent(aid)
    return 'offline'
  end
  redis.call('HSET', akey, 'status', 'available', 'idle_ms', int_str(NOW))
  redis.call('ZADD', AVAILABLE, int_str(NOW), aid)
  redis.call('EXPIRE', akey, AGENT_TTL)
  index_agent(aid)
  return 'available'
end

local function set_offline(aid)
  local akey = agent_of(aid)
  redis.call('HDEL', akey, 'call', 'call_state', 'connected_ms', 'assigned_ms', 'logout', 'idle_ms')
  redis.call('HSET', akey, 'status', 'offline')
  redis.call('ZREM', AVAILABLE, aid)
  redis.call('EXPIRE', akey, AGENT_TTL)
  index_agent(aid)
end

-- Remove every trace of a call that is gone: it leaves its line, an agent it was assigned to
-- (not yet connected) is released, its entry and deadline go. Returns {call SID, queue,
-- language, priority, position, size, enqueued_ms, released agent, callback number}, where
-- position is 0 (and the line's fields '') when it held no place, and the agent '' when none.
-- Version-agnostic (docs/operators/upgrading.md's contract: the deadlines, an entry's queue_key and agent),
-- so that any release drops a lapsed call; an agent a newer release wrote is left to a newer
-- process, which releases it once it finds its caller's entry gone.
local function drop_call(sid)
  local out = {sid, '', '', '0', 0, 0, '0', '', ''}
  local e = read_entry(sid)
  if e and e.agent then
    local a = redis.call('HMGET', agent_of(e.agent), 'status', 'call')
    if a[1] == 'busy' and a[2] == sid and not newer(agent_of(e.agent)) then
      release_agent(e.agent)
      out[8] = e.agent
    end
  elseif e then
    local rank = redis.call('ZRANK', e.line, sid)
    if rank then
      out = {sid, e.queue, e.language, e.priority, rank + 1, redis.call('ZCARD', e.line),
        e.enqueued_ms, '', e.callback or ''}
      redis.call('ZREM', e.line, sid)
    end
  end
  redis.call('DEL', entry_of(sid))
  redis.call('ZREM', DEADLINES, sid)
  return out
end

-- Drop at most `limit` calls whose deadline passed, oldest deadline first; returns the list of
-- what drop_call returned for each.
local function sweep(limit)
  local dropped = {}
  if limit < 1 then
    return dropped
  end
  local expired = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', '(' .. int_str(NOW),
    'LIMIT', '0', int_str(limit))
  for _, sid in ipairs(expired) do
    dropped[#dropped + 1] = drop_call(sid)
  end
  return dropped
end

-- The entry of a live call, or nil; a call whose deadline passed is dropped on the way, as the
-- sweep would drop it.
local function live_entry(sid)
  local e = read_entry(sid)
  if e and not is_live(sid) then
    drop_call(sid)
    return nil
  end
  return e
end

-- The agent's status, settling inconsistencies on the way: a busy agent whose assigned caller is
-- gone (the entry no longer names it, or the caller's deadline passed), or who has been connected
-- longer than any Twilio call lasts (MAX_CONNECTED_MS), is released, and the available zset is
-- made to agree with the hash (which is the truth; no hash = offline). A newer release's agent
-- is 'offline' to this process and left untouched.
local function agent_state(aid)
  local akey = agent_of(aid)
  if newer(akey) then
    return 'offline'  -- a newer release's agent: not for this process to read or settle
  end
  local a = redis.call('HMGET', akey, 'status', 'call', 'call_state', 'idle_ms', 'connected_ms')
  if a[1] == 'busy' then
    if not a[2] then
      return release_agent(aid)
    end
    if a[3] == 'connected' and a[5] and NOW - tonumber(a[5]) > MAX_CONNECTED_MS then
      return release_agent(aid)
    end
    if a[3] ~= 'connected' then
      if redis.call('HGET', entry_of(a[2]), 'agent') ~= aid then
        return release_agent(aid)
      end
      if not is_live(a[2]) then
        drop_call(a[2])
        return redis.call('HGET', akey, 'status')
      end
    end
    redis.call('ZREM', AVAILABLE, aid)
    return 'busy'
  elseif a[1] == 'available' then
    redis.call('ZADD', AVAILABLE, 'NX', a[4] or int_str(NOW), aid)
    return 'available'
  end
  redis.call('ZREM', AVAILABLE, aid)
  return 'offline'
end

-- The live caller at the head of a line and its score (nil when none), dropping heads that are
-- not live on the way: lapsed (dropped as the sweep would), without an entry, naming another
-- line or assigned (only taken out of this line). At most CLAIM_TRIES heads. A head a newer
-- release wrote is left where it is, and so is the line: nil (a newer process's dispatch takes it).
local function live_head(line)
  for _ = 1, CLAIM_TRIES do
    local head = redis.call('ZRANGE', line, 0, 0, 'WITHSCORES')
    if #head == 0 then
      return nil
    end
    local sid = head[1]
    if newer(entry_of(sid)) then
      return nil
    end
    local e = redis.call('HMGET', entry_of(sid), 'queue_key', 'agent')
    if e[1] == line and not e[2] then
      if is_live(sid) then
        return sid, tonumber(head[2])
      end
      drop_call(sid)
    else
      redis.call('ZREM', line, sid)
      if not e[1] then
        redis.call('ZREM', DEADLINES, sid)
      end
    end
  end
  return nil
end

-- An available agent takes the best live caller at the heads of its lines (lowest score; equal
-- scores go by call SID, as within one line). Returns the assignment, or nil.
local function claim(aid)
  if agent_state(aid) ~= 'available' then
    return nil
  end
  local akey = agent_of(aid)
  local lines = lines_of(akey)
  local best_line, best_sid, best_score = nil, nil, nil
  for _, line in ipairs(lines) do
    local sid, score = live_head(line)
    if sid and (not best_score or score < best_score or (score == best_score and sid < best_sid)) then
      best_line, best_sid, best_score = line, sid, score
    end
  end
  if not best_sid then
    return nil
  end
  redis.call('ZREM', best_line, best_sid)
  redis.call('HSET', entry_of(best_sid), 'agent', aid, 'assigned_ms', int_str(NOW))
  -- At least a heartbeat to ring the agent; a callback's longer deadline stays.
  extend_deadline(best_sid, HEARTBEAT_MS)
  redis.call('HSET', akey, 'status', 'busy', 'call', best_sid, 'call_state', 'assigned',
    'assigned_ms', int_str(NOW))
  redis.call('HDEL', akey, 'idle_ms')
  redis.call('ZREM', AVAILABLE, aid)
  redis.call('EXPIRE', akey, AGENT_TTL)
  index_agent(aid, lines)
  return assignment_of(best_sid)
end

-- Every available agent, longest idle first, claims as claim() does, until nobody can. Returns
-- the assignments made, in order.
--
-- Only agents of lines with callers can claim, and lines only lose callers during a dispatch, so
-- the next agent to claim is always the longest idle among the available agents of the lines
-- with callers: the heads of those lines' FREE sets. That is the order in which walking every
-- available agent, longest idle first, would have made the same claims, at a cost that grows
-- with the lines holding callers and the claims made, not with the agents logged in.
local function dispatch()
  local made, empty_handed = {}, {}
  for _ = 1, DISPATCH_CLAIMS do
    local aid, idle, line_of_aid = nil, nil, nil
    for _, line in ipairs(redis.call('SMEMBERS', WAITING)) do
      if redis.call('ZCARD', line) == 0 then
        redis.call('SREM', WAITING, line)
      else
        local free = redis.call('ZRANGE', line .. FREE, 0, DISPATCH_PEEK - 1, 'WITHSCORES')
        for i = 1, #free, 2 do
          if not empty_handed[free[i]] then
            local since = tonumber(free[i + 1])
            if not idle or since < idle or (since == idle and free[i] < aid) then
              aid, idle, line_of_aid = free[i], since, line
            end
            break
          end
        end
      end
    end
    if not aid then
      break
    end
    local got = claim(aid)
    if got then
      made[#made + 1] = got
    elseif newer(agent_of(aid)) then
      -- A newer release's agent: left in its sets as it is, for a newer process's dispatch.
      empty_handed[aid] = true
    elseif agent_state(aid) ~= 'available' then
      -- Not available after all (its hash expired, say): out of the sets it is still in.
      index_agent(aid)
      redis.call('ZREM', line_of_aid .. FREE, aid)
    elseif redis.call('HEXISTS', agent_of(aid), 'line:' .. line_of_aid) == 0 then
      redis.call('ZREM', line_of_aid .. FREE, aid)
    else
      -- Its lines' heads were all gone (CLAIM_TRIES each): the sweep and the audit clean up.
      empty_handed[aid] = true
    end
  end
  return made
end

-- Queue a call in `line`: a live waiting call keeps its arrival time (and, in the same line, its
-- priority: a retried webhook); a call without a live entry arrives at `enqueued_ms`; an
-- assigned call stays assigned (position 0, in its original line). Returns its place.
local function join_line(sid, line, queue, language, priority, enqueued_ms)
  local entry = entry_of(sid)
  local e = live_entry(sid)
  if e and e.agent then
    extend_deadline(sid, HEARTBEAT_MS)
    return {e.queue, e.language, e.priority, 0, redis.call('ZCARD', e.line), e.enqueued_ms}
  end
  if e then
    enqueued_ms = e.enqueued_ms
    if e.line == line then
      priority = e.priority
    else
      redis.call('ZREM', e.line, sid)
    end
  else
    redis.call('DEL', entry)
  end
  redis.call('HSET', entry, 'queue', queue, 'language', language, 'queue_key', line,
    'priority', priority, 'enqueued_ms', enqueued_ms)
  extend_deadline(sid, HEARTBEAT_MS)
  -- Plain ZADD, not NX: on a retry the score is unchanged anyway, and a stale member left by
  -- an expired call gets the new score.
  add_to_line(line, score_of(priority, enqueued_ms), sid, false)
  redis.call('SADD', LINES, line)
  return place_of(sid, {queue = queue, language = language, line = line, priority = priority,
    enqueued_ms = enqueued_ms})
end

-- At most this many of a line's talking (and of its connecting) agents are read for its load,
-- evenly spread over them by how long they have been at it; the client stands each for its
-- share of the rest (`to_line_load`), so a line of a thousand busy agents reads fifty.
local LOAD_SAMPLE = 50

-- NOW - score, in ms, of at most LOAD_SAMPLE members of an agent set, evenly spread by rank
-- (oldest first), and how many members it has.
local function ages(key)
  local count = redis.call('ZCARD', key)
  local out = {}
  if count <= LOAD_SAMPLE then
    local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for i = 2, #members, 2 do
      out[#out + 1] = NOW - tonumber(members[i])
    end
  else
    for i = 0, LOAD_SAMPLE - 1 do
      local rank = math.floor(i * count / LOAD_SAMPLE)
      local member = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
      out[#out + 1] = NOW - tonumber(member[2])
    end
  end
  return out, count
end

-- The load of one line: {waiting, available, busy, {wait seconds...}, {talk seconds...},
-- {talking ms...}, {connect seconds...}, {connecting ms...}, talking}, read from the line's agent
-- sets (the agents logged in to serve it). KEYS[first_key..first_key + 3] are the line's zset and
-- its wait, talk and connect history lists; ARGV[history_arg] is the history length. Busy counts
-- the agents talking (`talking` of them) and those putting a caller through; talking ms: how long
-- each talking agent has been talking; connecting ms: for each agent putting a caller through, how
-- long since the caller was assigned to it. Each of the two lists has at most LOAD_SAMPLE items
-- (see `ages`).
local function line_load(first_key, history_arg)
  local line, waits, talks, connects = KEYS[first_key], KEYS[first_key + 1],
    KEYS[first_key + 2], KEYS[first_key + 3]
  local talking, talking_count = ages(line .. TALKING)
  local connecting, connecting_count = ages(line .. CONNECTING)
  local last = tonumber(ARGV[history_arg]) - 1
  return {redis.call('ZCARD', line), redis.call('ZCARD', line .. FREE),
    talking_count + connecting_count, redis.call('LRANGE', waits, 0, last),
    redis.call('LRANGE', talks, 0, last), talking, redis.call('LRANGE', connects, 0, last),
    connecting, talking_count}
end
"""
)


def _script(header: str, body: str) -> str:
    return CONTEXT_HEADER + header + HELPERS + body


# --- callers ---------------------------------------------------------------------------------------

JOIN: Final = _script(
    """\
-- KEYS[4] = entry hash of the joining call
-- KEYS[5] = queue zset to join
-- ARGV[9] = call SID
-- ARGV[10] = queue name
-- ARGV[11] = language
-- ARGV[12] = priority (0..100)
-- ARGV[13] = arrival, ms, for a call without a live entry (the original arrival, or now)
-- Returns {queue, language, priority, position, size, enqueued_ms}; position 0 when the call
-- has already been handed to an agent (it then stays assigned, in its original line's terms).
-- NEWER (nothing written) when a newer release wrote the call's entry.
""",
    """
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
return join_line(ARGV[9], KEYS[5], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
""",
)
"""Add a call to a line, keep its place on a retry, or move it to another line (join)."""

ENTER: Final = _script(
    """\
-- KEYS[4] = entry hash of the joining call
-- KEYS[5] = queue zset to join
-- ARGV[9] = call SID
-- ARGV[10] = queue name
-- ARGV[11] = language
-- ARGV[12] = priority (0..100)
-- ARGV[13] = arrival, ms, for a call without a live entry (the original arrival, or now)
-- KEYS[6] = the ended marker of the call leg asking (see HANG_UP)
-- Returns {place as join returns it, {assignment...} made by the dispatch that follows}, or
-- {{}, {}} when that leg has ended: a late or replayed webhook never queues a dead call; NEWER
-- (nothing written) when a newer release wrote the call's entry.
""",
    """
if redis.call('EXISTS', KEYS[6]) == 1 then
  return {{}, {}}
end
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
local place = join_line(ARGV[9], KEYS[5], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
return {place, dispatch()}
""",
)
"""Join a line, then let free agents claim callers, this one included, in one go (enter)."""

PLACE: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- ARGV[9] = call SID
-- Returns {queue, language, priority, position, size, enqueued_ms}, or nil when not queued
-- (unknown, lapsed, or already handed to an agent); NEWER when a newer release wrote the entry.
""",
    """
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
local sid = ARGV[9]
local e = live_entry(sid)
if not e or e.agent then
  return nil
end
-- The entry is the truth; put the member back if the zset lost it (e.g. deleted by hand).
add_to_line(e.line, score_of(e.priority, e.enqueued_ms), sid, true)
return place_of(sid, e)
""",
)
"""Report where a call stands (place)."""

HEARTBEAT: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- ARGV[9] = call SID
-- Returns 1 when the call is live (its deadline is now at least a heartbeat away), else 0;
-- NEWER (nothing written) when a newer release wrote the entry.
""",
    """
if newer(KEYS[4]) then
  return 'newer'
end
local sid = ARGV[9]
if not live_entry(sid) then
  return 0
end
extend_deadline(sid, HEARTBEAT_MS)
return 1
""",
)
"""Keep a live call alive for another heartbeat, never shortening a callback's deadline."""

HANG_UP: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- KEYS[5] = connection key of the call
-- ARGV[9] = call SID
-- ARGV[10] = '1' for a hang-up (keeps a live place kept for a callback, releases the agent of a
--            connected call), '0' for leave (removes any place, leaves a connected call alone)
-- KEYS[6] = the ended marker of the call leg that ended (its SID may differ from ARGV[9]: a
--           callback we placed holds the original call's place)
-- ARGV[11] = seconds to keep that marker ('0': no leg ended, leave it alone)
-- Returns one of
--   {'left', queue, language, priority, position, size, enqueued_ms}  was waiting, now removed
--   {'kept'}                                                          waiting for a callback, kept
--   {'freed', agent, assignment}         was assigned, not connected: entry gone, agent released;
--                                        the assignment as claim_next returns it (queue, language,
--                                        priority, enqueued_ms, assigned_ms, callback, ...)
--   {'released', agent}                 was talking to this agent, which is now released
--   {'none'}                                                          nothing to do
-- or NEWER when a newer release wrote the entry (or the hash of the agent to release): left as it
-- is (only the ended marker is set); a newer process's sweep drops it once its deadline lapses.
""",
    """
local sid, hanging_up = ARGV[9], ARGV[10] == '1'
local result = {'none'}
if tonumber(ARGV[11]) > 0 then
  redis.call('SET', KEYS[6], '1', 'EX', ARGV[11])
end
if newer(KEYS[4]) then
  return 'newer'
end
local e = read_entry(sid)
if e and e.agent then
  local assigned = assignment_of(sid, e)
  local gone = drop_call(sid)
  if gone[8] ~= '' then
    result = {'freed', gone[8], assigned}
  end
elseif e and e.callback and hanging_up and is_live(sid) then
  result = {'kept'}
elseif e then
  local gone = drop_call(sid)
  if gone[5] > 0 then
    result = {'left', gone[2], gone[3], gone[4], gone[5], gone[6], gone[7]}
  end
else
  redis.call('DEL', KEYS[4])
  local aid = hanging_up and redis.call('GET', KEYS[5])
  if aid and newer(agent_of(aid)) then
    return 'newer'
  end
  if aid then
    redis.call('DEL', KEYS[5])
    local a = redis.call('HMGET', agent_of(aid), 'status', 'call', 'call_state')
    if a[1] == 'busy' and a[2] == sid and a[3] == 'connected' then
      release_agent(aid)
      result = {'released', aid}
    end
  end
end
-- After this call's own change, so that the place reported is the one the caller had.
sweep(REQUEST_SWEEP)
return result
""",
)
"""End a call's stay: leave its line, keep a callback's place, or release its agent (leave, hang_up)."""

SIZE: Final = _script(
    """\
-- KEYS[4] = queue zset
-- Returns the number of callers in the line.
""",
    """
sweep(REQUEST_SWEEP)
return redis.call('ZCARD', KEYS[4])
""",
)
"""Count the callers in one line (size)."""

REQUEST_CALLBACK: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- ARGV[9] = call SID
-- ARGV[10] = callback number
-- ARGV[11] = the number the caller called (the callback is placed from it), or ''
-- ARGV[12] = ticket reference, or ''
-- ARGV[13] = ms to keep the place from now (the deadline; never shortened)
-- ARGV[14] = the callback code the caller was given (the callback opens with it), or ''
-- Returns {queue, language, priority, position, size, enqueued_ms}, or nil when not queued;
-- NEWER (nothing written) when a newer release wrote the entry.
""",
    """
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
local sid, entry = ARGV[9], KEYS[4]
local e = live_entry(sid)
if not e or e.agent then
  return nil
end
redis.call('HSET', entry, 'callback', ARGV[10])
for _, set in ipairs({{'our_number', ARGV[11]}, {'reference', ARGV[12]},
    {'callback_code', ARGV[14]}}) do
  local field, value = set[1], set[2]
  if value == '' then
    redis.call('HDEL', entry, field)
  else
    redis.call('HSET', entry, field, value)
  end
end
extend_deadline(sid, tonumber(ARGV[13]))
add_to_line(e.line, score_of(e.priority, e.enqueued_ms), sid, true)
return place_of(sid, e)
""",
)
"""Keep a waiting caller's place for a callback instead of a heartbeat (request_callback)."""

RESTORE_CALLBACK: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- KEYS[5] = queue zset of its line
-- KEYS[6] = connection key of the call
-- ARGV[9] = call SID
-- ARGV[10] = queue name
-- ARGV[11] = language
-- ARGV[12] = priority (0..100)
-- ARGV[13] = original arrival, ms
-- ARGV[14] = callback number
-- ARGV[15] = the number the caller called, or ''
-- ARGV[16] = ticket reference, or ''
-- ARGV[17] = keep the place until, ms (the deadline)
-- ARGV[18] = the callback code the caller was given, or ''
-- Returns 1 when the place was rebuilt; 0 (nothing changed) when the call has a live entry or
-- an entry a newer release wrote (left for a newer process), is talking to an agent, or the time
-- to keep it has passed.
""",
    """
local sid, entry, line = ARGV[9], KEYS[4], KEYS[5]
if newer(entry) or live_entry(sid) or redis.call('EXISTS', KEYS[6]) == 1 or tonumber(ARGV[17]) < NOW then
  return 0
end
redis.call('DEL', entry)
redis.call('ZREM', DEADLINES, sid)
redis.call('HSET', entry, 'queue', ARGV[10], 'language', ARGV[11], 'queue_key', line,
  'priority', ARGV[12], 'enqueued_ms', ARGV[13], 'callback', ARGV[14])
if ARGV[15] ~= '' then
  redis.call('HSET', entry, 'our_number', ARGV[15])
end
if ARGV[16] ~= '' then
  redis.call('HSET', entry, 'reference', ARGV[16])
end
if ARGV[18] ~= '' then
  redis.call('HSET', entry, 'callback_code', ARGV[18])
end
extend_deadline(sid, tonumber(ARGV[17]) - NOW)
add_to_line(line, score_of(ARGV[12], ARGV[13]), sid, false)
redis.call('SADD', LINES, line)
return 1
""",
)
"""Rebuild a place kept for a callback after Redis lost its data (restore_callback)."""

HOLD_ROUND: Final = _script(
    """\
-- KEYS[4] = entry hash of the holding call
-- KEYS[5] = the ended marker of the call leg holding (see HANG_UP)
-- KEYS[6] = queue zset of the line it holds for (to rejoin; its load is reported)
-- KEYS[7] = wait history list of that line
-- KEYS[8] = talk history list of that line
-- KEYS[9] = connect history list of that line
-- ARGV[9] = call SID
-- ARGV[10] = queue name
-- ARGV[11] = language
-- ARGV[12] = priority (0..100), for a rejoin
-- ARGV[13] = original arrival, ms, for a rejoin
-- ARGV[14] = history length
-- KEYS[10..] = queue zsets of other lines the line's agents serve
-- Returns {rejoined (0 or 1), place or {}, assignment or {}, {assignment...} made by this
-- round's dispatch, the line's load as LINE_LOAD returns it, ended (0 or 1), {callers...}}: the
-- last, for each of the other lines while the caller waits, the callers an agent would take
-- before this one (a lower score: higher priority, or the same and earlier). A leg that has
-- ended changes nothing: a late or replayed poll never rejoins the line. NEWER (nothing written)
-- when a newer release wrote the call's entry.
""",
    """
local sid = ARGV[9]
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {0, {}, {}, {}, line_load(6, 14), 1, {}}
end
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
local rejoined = 0
local e = live_entry(sid)
if e then
  extend_deadline(sid, HEARTBEAT_MS)
  if not e.agent then
    add_to_line(e.line, score_of(e.priority, e.enqueued_ms), sid, true)
  end
else
  -- Redis lost the call, or its heartbeat lapsed: back at its original arrival.
  join_line(sid, KEYS[6], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
  rejoined = 1
end
-- After the heartbeat and any rejoin, so that this caller can be handed to an agent this round.
local dispatched = dispatch()
local place, assignment, before = {}, {}, {}
e = read_entry(sid)
if e and e.agent then
  assignment = assignment_of(sid)
elseif e then
  place = place_of(sid, e)
  local below = '(' .. score_of(e.priority, e.enqueued_ms)
  for i = 10, #KEYS do
    before[#before + 1] = redis.call('ZCOUNT', KEYS[i], '-inf', below)
  end
end
return {rejoined, place, assignment, dispatched, line_load(6, 14), 0, before}
""",
)
"""One round of holding: heartbeat or rejoin, dispatch, assignment or place, line load (hold_round)."""

SWEEP: Final = _script(
    """\
-- ARGV[9] = how many expired calls to drop at most
-- Returns {{call SID, queue, language, priority, position, size, enqueued_ms, released agent,
-- callback number}, ...}, oldest deadline first; position 0 and '' where it held no place.
""",
    """
return sweep(tonumber(ARGV[9]))
""",
)
"""Drop calls whose deadline passed, oldest first (sweep)."""

AUDIT: Final = _script(
    """\
-- KEYS[4] = queue zset to audit
-- ARGV[9] = ZSCAN cursor ('0' to start)
-- ARGV[10] = ZSCAN COUNT
-- Returns {next cursor ('0' when this line is done), members removed}.
""",
    """
local line = KEYS[4]
local scan = redis.call('ZSCAN', line, ARGV[9], 'COUNT', ARGV[10])
local members, removed = scan[2], 0
for i = 1, #members, 2 do
  local e = redis.call('HMGET', entry_of(members[i]), 'queue_key', 'agent')
  -- No entry, an entry naming another line, or assigned: the member is left over.
  if e[1] ~= line or e[2] then
    redis.call('ZREM', line, members[i])
    removed = removed + 1
  end
end
return {scan[1], removed}
""",
)
"""Remove left-over members from one chunk of a line (audit)."""

# --- agents ----------------------------------------------------------------------------------------

AGENT_AVAILABLE: Final = _script(
    """\
-- KEYS[4] = agent hash
-- ARGV[9] = agent id
-- ARGV[10..] = queue zsets of the lines the agent serves (replacing the stored ones)
-- Returns the agent's status: 'busy' (lines updated, stays on its call) or 'available'; NEWER
-- (nothing written) when a newer release wrote the agent's hash.
""",
    """
local akey, aid = KEYS[4], ARGV[9]
if newer(akey) then
  return 'newer'
end
local status = agent_state(aid)
local old_lines = lines_of(akey)
place_agent(aid, old_lines, nil)
for _, line in ipairs(old_lines) do
  redis.call('HDEL', akey, 'line:' .. line)
end
for i = 10, #ARGV do
  redis.call('HSET', akey, 'line:' .. ARGV[i], '1')
end
if status == 'busy' then
  -- Back in service during a call: a logout requested meanwhile is withdrawn.
  redis.call('HDEL', akey, 'logout')
  redis.call('EXPIRE', akey, AGENT_TTL)
  index_agent(aid)
  return 'busy'
end
if status ~= 'available' then
  redis.call('HSET', akey, 'status', 'available', 'idle_ms', int_str(NOW))
end
-- An agent already available keeps its idle-since: a repeated login must not cost its turn.
redis.call('ZADD', AVAILABLE, redis.call('HGET', akey, 'idle_ms'), aid)
redis.call('EXPIRE', akey, AGENT_TTL)
index_agent(aid)
return 'available'
""",
)
"""Log an agent in or refresh its lines (agent_available)."""

AGENT_OFFLINE: Final = _script(
    """\
-- KEYS[4] = agent hash
-- ARGV[9] = agent id
-- Returns 'busy' (flagged to go offline when its call finishes) or 'offline'; NEWER (nothing
-- written) when a newer release wrote the agent's hash.
""",
    """
local akey, aid = KEYS[4], ARGV[9]
if newer(akey) then
  return 'newer'
end
if agent_state(aid) == 'busy' then
  redis.call('HSET', akey, 'logout', '1')
  redis.call('EXPIRE', akey, AGENT_TTL)
  return 'busy'
end
set_offline(aid)
return 'offline'
""",
)
"""Log an agent out, at once or when its call finishes (agent_offline)."""

AGENT_STATUSES: Final = _script(
    """\
-- KEYS[4..] = agent hashes, in the order of the agent ids
-- ARGV[9..] = agent ids
-- Returns {status, call SID or '', status, call SID or '', ...} in the order of the ids.
-- Settles each agent as agent_state does and puts it in the right per-line agent sets; a newer
-- release's agent is 'offline' here and left untouched.
""",
    """
local out = {}
for i = 9, #ARGV do
  local status = agent_state(ARGV[i])
  if not newer(agent_of(ARGV[i])) then
    index_agent(ARGV[i])
  end
  out[#out + 1] = status
  out[#out + 1] = (status == 'busy' and redis.call('HGET', agent_of(ARGV[i]), 'call')) or ''
end
return out
""",
)
"""Read several agents' statuses and calls, settling stale assignments (agent_statuses, agent_call)."""

CLAIM_NEXT: Final = _script(
    """\
-- KEYS[4] = agent hash
-- ARGV[9] = agent id
-- Returns {call SID, agent, queue, language, priority, enqueued_ms, assigned_ms, callback,
-- our number, reference} ('' where absent), or nil when the agent is not available or nobody
-- live waits at the heads of its lines.
""",
    """
return claim(ARGV[9])
""",
)
"""Hand the best live caller across an available agent's lines to that agent (claim_next)."""

DISPATCH: Final = _script(
    """\
-- Returns {assignment, ...} as claim_next returns them, in the order they were made.
""",
    """
return dispatch()
""",
)
"""Let every available agent, longest idle first, claim a caller until none can (dispatch)."""

CONNECTED: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- KEYS[5] = connection key of the call
-- ARGV[9] = call SID
-- Returns the assignment as in claim_next (before the entry was dropped), or nil when the call
-- is not assigned; NEWER (nothing written) when a newer release wrote the entry or the agent's hash.
""",
    """
local sid = ARGV[9]
if newer(KEYS[4]) then
  return 'newer'
end
local aid = redis.call('HGET', KEYS[4], 'agent')
if not aid then
  return nil
end
if newer(agent_of(aid)) then
  return 'newer'
end
local result = assignment_of(sid)
local akey = agent_of(aid)
local a = redis.call('HMGET', akey, 'status', 'call')
-- Never take over an agent that is (somehow) on another call; otherwise it is on this one.
if a[1] ~= 'busy' or a[2] == sid then
  redis.call('HSET', akey, 'status', 'busy', 'call', sid, 'call_state', 'connected',
    'connected_ms', int_str(NOW))
  redis.call('HDEL', akey, 'idle_ms')
  redis.call('ZREM', AVAILABLE, aid)
  redis.call('EXPIRE', akey, AGENT_TTL)
  index_agent(aid)
  -- So that the caller's hang-up can release the agent without asking the database.
  redis.call('SET', KEYS[5], aid, 'EX', AGENT_TTL)
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', DEADLINES, sid)
return result
""",
)
"""Mark an assigned caller as talking to its agent and drop its entry (connected)."""

FINISH_CALL: Final = _script(
    """\
-- KEYS[4] = agent hash
-- KEYS[5] = entry hash of the call
-- KEYS[6] = connection key of the call
-- ARGV[9] = agent id
-- ARGV[10] = call SID
-- Returns the agent's status afterwards; NEWER (nothing written) when a newer release wrote the
-- agent's hash or the call's entry.
""",
    """
local akey, aid, sid = KEYS[4], ARGV[9], ARGV[10]
if newer(akey) or newer(KEYS[5]) then
  return 'newer'
end
local a = redis.call('HMGET', akey, 'status', 'call')
if a[1] == 'busy' and a[2] == sid then
  -- Ended before `connected` was reported: the assignment ends with it.
  if redis.call('HGET', KEYS[5], 'agent') == aid then
    redis.call('DEL', KEYS[5])
    redis.call('ZREM', DEADLINES, sid)
  end
  if redis.call('GET', KEYS[6]) == aid then
    redis.call('DEL', KEYS[6])
  end
  return release_agent(aid)
end
-- Not (or no longer) on this call: a duplicate or stale webhook changes nothing.
return agent_state(aid)
""",
)
"""Release an agent whose conversation with one call ended, if it is still on it (finish_call)."""

RETURN_TO_QUEUE: Final = _script(
    """\
-- KEYS[4] = entry hash of the call
-- ARGV[9] = call SID
-- Returns {queue, language, priority, position, size, enqueued_ms} back in the line, or nil when
-- the call is not assigned; NEWER (nothing written) when a newer release wrote the entry or the
-- hash of its agent.
""",
    """
if newer(KEYS[4]) then
  return 'newer'
end
sweep(REQUEST_SWEEP)
local sid = ARGV[9]
local e = live_entry(sid)
if not e or not e.agent then
  return nil
end
if newer(agent_of(e.agent)) then
  return 'newer'
end
redis.call('HDEL', KEYS[4], 'agent', 'assigned_ms')
extend_deadline(sid, HEARTBEAT_MS)
-- The original score: first among the callers of its priority who arrived after it.
add_to_line(e.line, score_of(e.priority, e.enqueued_ms), sid, false)
local a = redis.call('HMGET', agent_of(e.agent), 'status', 'call')
if a[1] ~= 'busy' or a[2] == sid then
  -- A phone nobody answers must not get the next caller.
  set_offline(e.agent)
end
return place_of(sid, e)
""",
)
"""Put an unanswered assignment back at its original place and log the agent out (return_to_queue)."""

# --- history ---------------------------------------------------------------------------------------

LINE_LOAD: Final = _script(
    """\
-- KEYS[4] = queue zset
-- KEYS[5] = wait history list
-- KEYS[6] = talk history list
-- KEYS[7] = connect history list
-- ARGV[9] = history length
-- Returns {waiting, available, busy, {wait seconds...}, {talk seconds...}, {talking ms...},
-- {connect seconds...}, {connecting ms...}, talking}: the histories newest first, at most the
-- history length; talking ms for the agents talking (`talking` of them), connecting ms since the
-- caller was assigned for the agents putting one through, at most LOAD_SAMPLE each (see line_load).
""",
    """
sweep(REQUEST_SWEEP)
return line_load(4, 9)
""",
)
"""Everything the wait estimate of one line needs, in one round trip (line_load)."""

# --- the data set ----------------------------------------------------------------------------------

RELEASE_EPOCH: Final = _script(
    """\
-- KEYS[4] = epoch key
-- ARGV[9] = the token this instance set when it claimed the epoch
-- Returns 1 when the epoch was ours and is gone now, else 0.
""",
    """
if redis.call('GET', KEYS[4]) == ARGV[9] then
  return redis.call('DEL', KEYS[4])
end
return 0
""",
)
"""Give back an epoch this instance claimed, so that another can claim it (release_epoch)."""

PIN_CHECK: Final = """\
-- KEYS[1] = the source's PIN checks (HASH: count, last_ms, next_ms)
-- ARGV[1] = now, ms since the epoch (the app's clock)
-- ARGV[2] = window, ms: the count starts afresh when the last check is this old
-- ARGV[3] = TTL of the hash, seconds (the window and the longest wait: a safety net)
-- ARGV[4], ARGV[5], ... = the wait after the 1st, 2nd, ... check, ms; the last one repeats
-- Returns 0 when the check may go ahead (it is counted now), else the ms still to wait.
local now = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'count', 'last_ms', 'next_ms')
local count = tonumber(found[1]) or 0
local next_ms = tonumber(found[3]) or 0
if now - (tonumber(found[2]) or 0) >= tonumber(ARGV[2]) then
  count, next_ms = 0, 0
end
if now < next_ms then
  return next_ms - now
end
count = count + 1
local wait = tonumber(ARGV[math.min(3 + count, #ARGV)])
-- '%.0f': tostring() would round a ms timestamp to 14 significant digits.
redis.call('HSET', KEYS[1], 'count', count, 'last_ms', ARGV[1],
  'next_ms', string.format('%.0f', now + wait))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"""
"""Count a PIN check of one source, or say how long it must wait first (start_pin_check). Runs on
its own: it needs none of the helpers or the context arguments above."""
