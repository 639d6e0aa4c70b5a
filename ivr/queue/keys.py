"""Every Redis key name the queue uses, one function per key, all under `KEY_PREFIX`.

The scripts build some of these names themselves (another caller's entry, an agent's hash) from the
prefixes and suffixes below, which every script receives in its context arguments (see scripts.py).

**One hash slot for the queue state.** Redis Cluster runs a script or a transaction only when
every key it touches is in one hash slot, and a key's slot is the hash of its hash tag, the part
between the first `{` and `}`. Every key the queue's scripts touch starts with `KEY_PREFIX`, whose
tag is `{ivr}`, so all of them are in one slot. That is a choice, not an accident: an agent serves
several lines, and handing the longest-waiting caller of any of an agent's lines to the longest-idle
agent must read the agents and all those lines in one atomic step. Lines per slot would need a
two-phase hand-over that can strand an agent or a caller between slots. The state is small (a few
hundred bytes per caller or agent), so one slot on one primary, with a replica for failover, serves
thousands of waiting callers. The keys no script shares with another key (`seen_key`,
`call_reference_key`, `known_caller_key`, `pin_checks_key`, `ended_session_key`,
`agent_callback_key`, `callback_step_key`, `texted_key`) have no tag and spread over the cluster;
they are the many, short-lived ones.
"""

from __future__ import annotations

from typing import Final, Literal

HASH_TAG: Final = "{ivr}"
KEY_PREFIX: Final = f"ivr:{HASH_TAG}:"
UNTAGGED_PREFIX: Final = "ivr:"
"""Keys that are only ever touched alone (one command, no script with other keys)."""

CALL_PREFIX: Final = f"{KEY_PREFIX}call:"
"""Per-call keys are `CALL_PREFIX + call SID + suffix`."""
ENTRY_SUFFIX: Final = ":entry"
CONNECTION_SUFFIX: Final = ":agent"
AGENT_PREFIX: Final = f"{KEY_PREFIX}agent:"

ENTRY_READS_UP_TO: Final = 1
"""The newest version of a caller's entry (`entry_key`) or an agent's hash (`agent_key`) this code
reads. A hash carries its version in a field `v` only when it is above 1 (absent = 1); nothing
writes `v` today, so the previous release reads everything this one writes. Bump it, and write `v`
only on the hashes that need it, when a hash gains a field whose absence means something else or
a value gains a new meaning: an older process then leaves such a hash to a newer one (see
scripts.py's `newer` and docs/operators/upgrading.md). An additive field an older reader ignores needs no
bump. The deadlines zset, the lines' zsets and the fields of an entry the sweep reads (`queue_key`,
`agent`, `queue`, `language`, `priority`, `enqueued_ms`) are a contract every version keeps, so that
any release's sweep may drop a lapsed call (docs/operators/upgrading.md)."""

HistoryKind = Literal["wait", "talk", "connect"]
"""What a history list holds: how long answered callers waited, conversations lasted, or agents
took from being assigned a holding caller to answering (ringing and the whisper)."""


def queue_key(queue: str, language: str) -> str:
    """ZSET of the calls waiting in `queue` for an agent speaking `language`, by priority and arrival."""
    return f"{KEY_PREFIX}queue:{queue}:{language}"


def entry_key(call_sid: str) -> str:
    """HASH describing one waiting or assigned call; its TTL is a safety net past the deadline."""
    return f"{CALL_PREFIX}{call_sid}{ENTRY_SUFFIX}"


def connection_key(call_sid: str) -> str:
    """STRING: the agent a call is talking to (from `connected` until the call ends); agent TTL."""
    return f"{CALL_PREFIX}{call_sid}{CONNECTION_SUFFIX}"


def deadlines_key() -> str:
    """ZSET of waiting and assigned call SIDs scored by heartbeat deadline (ms since the epoch)."""
    return f"{KEY_PREFIX}deadlines"


def waiting_queues_key() -> str:
    """SET of the queue keys that ever had callers (for the audit and admin)."""
    return f"{KEY_PREFIX}queues"


def lines_waiting_key() -> str:
    """SET of the queue keys that may have callers; dispatch looks only at these (the scripts
    build it as `waiting_queues_key() + ":waiting"`)."""
    return f"{waiting_queues_key()}:waiting"


LineAgentState = Literal["free", "talking", "connecting"]


def line_agents_key(queue: str, language: str, state: LineAgentState) -> str:
    """ZSET of the logged-in agents serving one line in one state: free (by idle-since ms),
    talking (by connected-since ms), connecting (by assigned ms); the scripts build it as the
    line's `queue_key` + ":" + state."""
    return f"{queue_key(queue, language)}:{state}"


def agent_key(agent_id: str) -> str:
    """HASH describing one agent (status, current call, lines); long TTL."""
    return f"{AGENT_PREFIX}{agent_id}"


def available_agents_key() -> str:
    """ZSET of available agent ids, scored by idle-since ms (longest idle first)."""
    return f"{KEY_PREFIX}agents:available"


ENDED_SUFFIX: Final = ":ended"


def ended_key(call_sid: str) -> str:
    """STRING: the call's final status callback came (its status); no webhook puts it in a line again."""
    return f"{CALL_PREFIX}{call_sid}{ENDED_SUFFIX}"


def seen_key(request_key: str) -> str:
    """STRING: a webhook request (by its fingerprint) that took effect once; a replay changes nothing."""
    return f"{UNTAGGED_PREFIX}seen:{request_key}"


def call_reference_key(call_sid: str) -> str:
    """STRING: the ticket reference a call was given first; a retry of its first webhook keeps it."""
    return f"{UNTAGGED_PREFIX}call-reference:{call_sid}"


def call_rules_version_key(call_sid: str) -> str:
    """STRING: the rules version a queued call started with, for the URL an agent's turn moves it
    to (`Switchboard._deliver`), which is built without the call's own URL."""
    return f"{UNTAGGED_PREFIX}call-rules-version:{call_sid}"


def stats_key(queue: str, language: str, kind: HistoryKind) -> str:
    """LIST of recent wait, talk or connect durations (seconds, newest first) of one line."""
    return f"{KEY_PREFIX}stats:{queue}:{language}:{kind}"


def epoch_key() -> str:
    """STRING set once per Redis data set: missing means this Redis is new or lost its data."""
    return f"{KEY_PREFIX}epoch"


def pin_checks_key(source: str) -> str:
    """HASH: the PIN checks from one source (a calling number, a client address) since its last right
    PIN: how many, the last, the earliest next; TTL the throttle window and the longest wait."""
    return f"{UNTAGGED_PREFIX}pin-checks:{source}"


def known_caller_key(call_sid: str) -> str:
    """HASH: what the exchange said of a call's caller (account, language, tier, or known=0) and what
    they did in the call (verified, locked_ms), for every instance's webhooks (`ivr.exchange`)."""
    return f"{UNTAGGED_PREFIX}known-caller:{call_sid}"


def ended_session_key(session_id: str) -> str:
    """STRING: an admin session that was logged out; its cookie opens nothing until the key expires
    (when the session would have ended anyway)."""
    return f"{UNTAGGED_PREFIX}session-ended:{session_id}"


def agent_callback_key(agent_id: str) -> str:
    """STRING: the agent line called this agent back lately (a throttled call from their phone);
    no other callback is placed until it expires."""
    return f"{UNTAGGED_PREFIX}agent-callback:{agent_id}"


def callback_step_key(call_sid: str, step: str) -> str:
    """STRING: one step of an after-hours callback ("try-2", "give-up") that one process claimed
    (`ivr.callbacks`), so that several workers running the same round take it once; TTL per claim."""
    return f"{UNTAGGED_PREFIX}callback:{call_sid}:{step}"


def texted_key(call_sid: str) -> str:
    """STRING: the call's caller was texted their ticket number (`Switchboard.apply`); a retry or
    replay of the request that did it texts nothing more."""
    return f"{UNTAGGED_PREFIX}texted:{call_sid}"
