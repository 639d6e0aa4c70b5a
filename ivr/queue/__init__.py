"""Callers waiting for an agent and the agents taking them, shared by every app instance through Redis.

This package is the only code that talks to Redis (rq is the model): `keys` builds every key name,
all under `KEY_PREFIX`; `scripts` holds the Lua scripts; every change to queue or agent state is one
script (the call history lists: one MULTI), so that concurrent webhooks on different instances never
see (or leave) a half-updated line. `callers`, `agents` and `history` are the parts of `CallQueue`.
Every operation on the request path costs O(log n) in the length of a line: no script walks a line.

Data model:

* `queue_key(queue, language)` — ZSET of call SIDs. Score = (100 - priority) * 10**13 +
  enqueued_ms, so higher priority sorts first and, within a priority, earlier arrival; callers
  who arrive in the same millisecond are ordered by call SID. Scores stay below 2**53, so they
  are exact as doubles (Redis and Lua both store doubles). Position = ZRANK + 1, size = ZCARD.
* `entry_key(call_sid)` — HASH (queue, language, queue_key, priority, enqueued_ms) of a waiting
  call. Once an agent claims the call it leaves the zset and the entry gains `agent` and
  `assigned_ms` (until the two are connected, when the entry is dropped). A caller who asked
  to be called back keeps their member and score, and the entry gains `callback` (the number),
  `our_number` (the number they called, to call back from) and `reference` (the ticket).
  Its TTL is only a safety net: the deadline plus `grace_seconds` (1 h), so that the sweep
  still finds the entry of a call whose deadline passed. An entry or agent hash a newer release
  wrote carries `v` above `keys.ENTRY_READS_UP_TO` (absent = 1): this code leaves it alone (it
  is not claimed, released or rewritten; a script on it replies `NEWER` and the client raises
  `NewerEntry`), except that the sweep drops a lapsed one (docs/operators/upgrading.md).
* `deadlines_key()` — ZSET: call SID -> heartbeat deadline (ms), for every waiting or assigned
  call. A call is live while its deadline >= now (the app's clock). Joins, heartbeats and claims
  move it to now + `heartbeat_seconds` with ZADD GT, so it never shortens the longer deadline of
  a place kept for a callback (now + keep_seconds). A call whose status callback was lost stops
  heartbeating and its deadline passes: it is a ghost until swept.
* `connection_key(call_sid)` — STRING: the agent a call is talking to, from `connected` until the
  caller's hang-up or the agent's `finish_call`; TTL `agent_ttl_seconds`. With it the hang-up
  releases the agent without asking the database.
* `waiting_queues_key()` — SET of every queue zset that ever had callers, for the audit and admin.
* `lines_waiting_key()` — SET of the queue zsets that may have callers: every script that puts a
  caller in a line adds it, dispatch removes those it finds empty. Dispatch looks only at these.
* `line_agents_key(queue, language, state)` — ZSET per line and state of the logged-in agents who
  serve it: "free" (available, by idle-since ms), "talking" (by connected-since ms) and
  "connecting" (assigned a caller not yet put through, by assigned ms). Every script that changes an
  agent's status or call state moves it (`index_agent`), so dispatch takes the longest-idle agent of
  the lines with callers and a line's load reads its own agents, whatever the size of the roster.
  A member left by an agent whose hash expired is dropped when dispatch meets it.
* `agent_key(agent_id)` — HASH: `status` ("available", "busy" or "offline"; no hash = offline),
  `idle_ms` while available, `call`, `call_state` ("assigned", then "connected"), `assigned_ms`
  and `connected_ms` while busy,
  `logout` when the agent logged out during a call, and one field `line:<queue key>` per line
  served. TTL `agent_ttl_seconds`, refreshed on every change, so a forgotten login expires.
* `available_agents_key()` — ZSET of available agent ids scored by idle-since ms (longest idle
  first). The agent hash is the truth: a member whose hash says otherwise is dropped when seen.
* `stats_key(queue, language, kind)` — LIST of the newest `HISTORY_LENGTH` wait, talk or connect
  (assigned to answered) durations in seconds, newest first, for the wait estimate; TTL 7 days,
  refreshed on write.
* `pin_checks_key(source)` — HASH (count, last_ms, next_ms) of the PIN checks from one calling
  number or client address since its last right PIN, for the growing waits between them
  (`ivr.throttle`); per source, never per agent. TTL the window plus the longest wait.
* `call_reference_key(call_sid)` — STRING: the ticket reference the call was given first, so a
  retried first webhook on any instance keeps it. TTL 8 hours.
* `ended_session_key(session_id)` — STRING: an admin session that was logged out (its cookie opens
  nothing any more). TTL the longest an admin session lasts.
* `epoch_key()` — STRING set once (`claim_epoch`, no TTL): missing means this Redis is new or
  lost its data, and whoever claims it rebuilds kept callbacks and logins from the database.

Ghosts: `sweep(limit)` drops calls whose deadline passed, oldest deadline first
(ZRANGEBYSCORE on the deadlines): a waiting one leaves its line, an assigned one releases its agent,
its entry and deadline go. Every request-path script that reports a position or a size first sweeps
at most 16; the app also sweeps in the background. Between sweeps a position may count a ghost or
two. A claim drops heads that are not live (lapsed, no entry, naming another line, assigned), at
most 32 per line; a busy agent whose assigned caller is gone is released by the next script that
reads that agent (the background reads a bounded share of the roster every second).
`audit(cursor, count)` is a bounded background pass (ZSCAN) that removes members with no entry,
naming another line, or assigned.

The scripts build other callers' entry keys and the agents' keys from prefixes passed in ARGV. On
Redis Cluster that is allowed because every key they build carries the `{ivr}` hash tag, so all of
them live in one hash slot (see `ivr.queue.keys`); a single Redis, Sentinel or Cluster all serve.
"""

from __future__ import annotations

from ivr.queue.agents import AgentOps
from ivr.queue.base import REQUEST_SWEEP_LIMIT, AgentStatus, Assignment, NewerEntry, Place
from ivr.queue.callers import CallerOps, HangUp, HoldRound, Swept
from ivr.queue.client import EMBEDDED_URL, connect
from ivr.queue.history import HISTORY_LENGTH, HistoryOps, LineLoad
from ivr.queue.keys import (
    KEY_PREFIX,
    HistoryKind,
    agent_key,
    available_agents_key,
    connection_key,
    deadlines_key,
    entry_key,
    epoch_key,
    line_agents_key,
    lines_waiting_key,
    pin_checks_key,
    queue_key,
    stats_key,
    waiting_queues_key,
)


class CallQueue(CallerOps, AgentOps, HistoryOps):
    """Callers waiting for an agent, one line per queue and language, and the agents taking them.

    `CallQueue(client, clock, heartbeat_seconds=120, agent_ttl_seconds=86400, grace_seconds=3600)`;
    the methods are grouped by part: callers.py, agents.py, history.py (and base.py).
    """


__all__ = [
    "EMBEDDED_URL",
    "HISTORY_LENGTH",
    "KEY_PREFIX",
    "REQUEST_SWEEP_LIMIT",
    "AgentStatus",
    "Assignment",
    "CallQueue",
    "HangUp",
    "HistoryKind",
    "HoldRound",
    "LineLoad",
    "NewerEntry",
    "Place",
    "Swept",
    "agent_key",
    "available_agents_key",
    "connect",
    "connection_key",
    "deadlines_key",
    "entry_key",
    "epoch_key",
    "line_agents_key",
    "lines_waiting_key",
    "pin_checks_key",
    "queue_key",
    "stats_key",
    "waiting_queues_key",
]
