"""Agents: logging in and out, taking callers (claim, dispatch), connecting, finishing; PIN throttle."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from redis.commands.core import Script

from ivr.queue.base import (
    AgentStatus,
    Assignment,
    Place,
    QueueBase,
    check_agent,
    check_call_sid,
    check_line,
    ms_of,
    text,
    to_assignment,
    to_place,
    to_status,
)
from ivr.queue.history import unique_agents
from ivr.queue.keys import (
    agent_callback_key,
    agent_key,
    connection_key,
    deadlines_key,
    ended_session_key,
    entry_key,
    pin_checks_key,
    queue_key,
)
from ivr.queue.scripts import PIN_CHECK


class AgentOps(QueueBase):
    """The agent part of `CallQueue`."""

    def agent_available(self, agent_id: str, lines: Sequence[tuple[str, str]]) -> AgentStatus:
        """Log an agent in (or refresh it) to serve `lines` of (queue, language); atomic (one script).

        The stored lines are replaced. An agent on a call stays busy (and a logout it asked
        for is withdrawn): "busy". Otherwise it is available, idle since now, or since it
        became available if it already was (a repeated login does not cost its turn).
        """
        check_agent(agent_id)
        for queue, language in lines:
            check_line(queue, language)
        line_keys = list(dict.fromkeys(queue_key(q, lang) for q, lang in lines))
        reply = self._run(self._agent_available, [agent_key(agent_id)], [agent_id, *line_keys])
        return to_status(reply)

    def agent_offline(self, agent_id: str) -> AgentStatus:
        """Log an agent out; atomic (one script), idempotent.

        An agent on a call stays busy and goes offline when the call finishes ("busy");
        otherwise it is offline at once.
        """
        check_agent(agent_id)
        return to_status(self._run(self._agent_offline, [agent_key(agent_id)], [agent_id]))

    def start_pin_check(self, source: str, delays: Sequence[int], window_seconds: int) -> float:
        """Let `source` have its PIN checked now, or say how long it must wait; atomic (one script).

        0.0: go ahead. The check is counted as a wrong PIN at once (`pin_right` forgets it), so
        that concurrent requests from one source cannot slip in between a check and its count.
        Otherwise the seconds until the next check is allowed; nothing is counted. `delays[n-1]`
        is the wait after the n-th check, the last one repeating; the count starts afresh when
        the last check is `window_seconds` old.
        """
        if not source or not delays:
            raise ValueError("a PIN check needs a source and a schedule of delays")
        ttl = window_seconds + max(delays)
        args = [self._now_ms(), window_seconds * 1000, ttl, *(d * 1000 for d in delays)]
        wait_ms = self._pin_check(keys=[pin_checks_key(source)], args=args)
        return int(wait_ms) / 1000

    def pin_right(self, source: str) -> None:
        """A right PIN from `source`: its count starts afresh (one DEL)."""
        self._client.delete(pin_checks_key(source))

    def claim_agent_callback(self, agent_id: str, seconds: int) -> bool:
        """True when no call to the agent's phone was placed in the last `seconds` (one SET NX):
        a stranger spoofing the agent's number cannot make their phone ring more often."""
        return bool(self._client.set(agent_callback_key(agent_id), "1", nx=True, ex=seconds))

    def end_session(self, session_id: str, seconds: int) -> None:
        """Remember for `seconds` that an admin session was logged out (one SET)."""
        self._client.set(ended_session_key(session_id), "1", ex=max(1, seconds))

    def session_ended(self, session_id: str) -> bool:
        """True when an admin session was logged out (one EXISTS)."""
        return bool(self._client.exists(ended_session_key(session_id)))

    @cached_property
    def _pin_check(self) -> Script:
        # Registered here, not in QueueBase: its only user is `start_pin_check`, and it needs none
        # of the common context the other scripts share.
        return self._client.register_script(PIN_CHECK)

    def agent_status(self, agent_id: str) -> AgentStatus:
        """One agent's status; atomic (one script, releases an agent whose caller vanished)."""
        return self.agent_statuses([agent_id])[agent_id]

    def agent_statuses(self, agent_ids: Sequence[str]) -> dict[str, AgentStatus]:
        """Several agents' statuses in one round trip; atomic (one script, as `agent_status`)."""
        return {agent: status for agent, (status, _) in self._read_agents(agent_ids).items()}

    def agents_at_a_glance(self, agent_ids: Sequence[str]) -> dict[str, AgentStatus]:
        """Several agents' statuses as their hashes say, settling nothing: one pipeline of HGETs,
        which never holds Redis up for other requests however many agents there are (metrics,
        the dashboard). An agent whose caller vanished shows busy until the background settles
        it (`agent_statuses`, a bounded share of the roster every second)."""
        agents = unique_agents(agent_ids)
        with self._client.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hget(agent_key(agent), "status")
            replies = pipe.execute()
        return {
            agent: to_status(reply) if reply is not None else "offline"
            for agent, reply in zip(agents, replies, strict=True)
        }

    def agent_call(self, agent_id: str) -> str | None:
        """The call SID the agent is busy with (assigned or connected), or None; atomic."""
        return self._read_agents([agent_id])[agent_id][1]

    def claim_next(self, agent_id: str) -> Assignment | None:
        """Hand the best caller across the agent's lines to it; atomic (one script).

        Only for an available agent: among the live callers at the heads of its lines (heads
        that are not live are dropped, at most 32 per line), the lowest score wins (highest
        priority, then longest waiting). The caller leaves its line, its entry records the
        agent, the agent becomes busy with it. None when the agent is not available or nobody
        waits. Concurrent claims never share a caller, and one agent never gets two.
        """
        check_agent(agent_id)
        return to_assignment(self._run(self._claim_next, [agent_key(agent_id)], [agent_id]))

    def dispatch(self) -> list[Assignment]:
        """Let every available agent, longest idle first, claim a caller, until none can.

        Atomic (one script, one round trip): each agent claims as `claim_next` does. Safe from
        any instance at any time, concurrently.
        """
        reply = self._run(self._dispatch, [], [])
        return to_assignments(reply)

    def assignment(self, call_sid: str) -> Assignment | None:
        """The agent a caller has been handed to and not yet connected with, or None; atomic
        (one MULTI of HMGET and ZSCORE: a call whose deadline passed has none)."""
        check_call_sid(call_sid)
        fields = ["agent", "queue", "language", "priority", "enqueued_ms", "assigned_ms"]
        optional = ["callback", "our_number", "reference", "callback_code"]
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hmget(entry_key(call_sid), [*fields, *optional])
            pipe.zscore(deadlines_key(), call_sid)
            values, deadline = pipe.execute()
        if any(value is None for value in values[: len(fields)]):
            return None
        if deadline is None or deadline < ms_of(self._clock.now()):
            return None
        return to_assignment([call_sid, *(b"" if value is None else value for value in values)])

    def connected(self, call_sid: str) -> Assignment | None:
        """The assigned caller and its agent are talking now; atomic (one script).

        The caller's entry and deadline are dropped (it is no longer queued), the agent stays
        busy with the call until `finish_call` or the caller's `hang_up`, and the connection
        key remembers the agent for that hang-up. Returns the assignment it was, None if not
        assigned.
        """
        check_call_sid(call_sid)
        reply = self._run(
            self._connected, [entry_key(call_sid), connection_key(call_sid)], [call_sid]
        )
        return to_assignment(reply)

    def finish_call(self, agent_id: str, call_sid: str) -> AgentStatus:
        """The agent's conversation with `call_sid` ended; atomic (one script), idempotent.

        Only if the agent is busy with exactly this call: it becomes available (idle since
        now), or offline if it logged out meanwhile, and an assignment not yet connected ends
        with it. Otherwise (a duplicate or stale webhook, or the caller's hang-up already
        released it) nothing changes. Returns the status.
        """
        check_agent(agent_id)
        check_call_sid(call_sid)
        reply = self._run(
            self._finish_call,
            [agent_key(agent_id), entry_key(call_sid), connection_key(call_sid)],
            [agent_id, call_sid],
        )
        return to_status(reply)

    def return_to_queue(self, call_sid: str) -> Place | None:
        """The assigned agent did not answer: requeue the caller, log the agent out; atomic.

        The caller goes back to its original line at its original score (ahead of everyone of
        its priority who arrived later) and its assignment is cleared; that agent goes offline
        so that a phone nobody answers gets no next caller. None if the call is not assigned.
        """
        check_call_sid(call_sid)
        return to_place(self._run(self._return_to_queue, [entry_key(call_sid)], [call_sid]))

    def _read_agents(self, agent_ids: Sequence[str]) -> dict[str, tuple[AgentStatus, str | None]]:
        agents = unique_agents(agent_ids)
        if not agents:
            return {}
        reply = self._run(self._agent_statuses, [agent_key(a) for a in agents], agents)
        if not isinstance(reply, list) or len(reply) != 2 * len(agents):
            raise RuntimeError(f"unexpected reply from the agent status script: {reply!r}")
        return {
            agent: (to_status(reply[2 * i]), text(reply[2 * i + 1]) or None)
            for i, agent in enumerate(agents)
        }


def to_assignments(reply: object) -> list[Assignment]:
    """A list-of-assignments reply."""
    if not isinstance(reply, list):
        raise RuntimeError(f"unexpected reply from a dispatch: {reply!r}")
    return [a for a in map(to_assignment, reply) if a is not None]
