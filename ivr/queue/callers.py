"""Callers: joining a line, where they stand, heartbeats, hang-ups, callbacks, hold rounds, sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from redis.commands.core import Script

from ivr.queue.agents import to_assignments
from ivr.queue.base import (
    MAX_ENQUEUED_MS,
    Assignment,
    Place,
    QueueBase,
    check_call_sid,
    check_enqueued_ms,
    check_line,
    check_priority,
    instant,
    text,
    to_assignment,
    to_place,
)
from ivr.queue.history import (
    HISTORY_LENGTH,
    LineLoad,
    line_load_keys,
    to_line_load,
)
from ivr.queue.keys import (
    call_reference_key,
    call_rules_version_key,
    callback_step_key,
    connection_key,
    deadlines_key,
    ended_key,
    entry_key,
    known_caller_key,
    lines_waiting_key,
    queue_key,
    seen_key,
    texted_key,
    waiting_queues_key,
)

DEFAULT_CALLBACK_KEEP_SECONDS: Final = 24 * 3600
REMEMBER_SECONDS: Final = 8 * 3600
"""How long Redis remembers that a call leg ended, or that a request took effect: longer than a
sealed URL is good for (`ivr.signing.SEAL_MAX_AGE`, 6 h, and `CLOCK_SKEW`), after which a replay is
refused anyway. Not shorter: a hold-round URL issued just before the caller hung up is obeyed for
6 h, and a replay of it must find the call ended. The 2 h beyond cost one 120-byte key per call that
ended in them (about 0.3 MB at 1,200 calls an hour), too little to trade the margin for."""
_BULK_BATCH: Final = 5000
ADMIN_SCAN_LIMIT: Final = 1000
"""Members of a line `earliest_arrival` reads at most (the admin dashboard polls it)."""


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
    released_agent: str | None = None
    """They were talking to this agent, which is released as `finish_call` would release it
    (a `finish_call` afterwards changes nothing)."""
    assigned: Assignment | None = None
    """With `freed_agent`: the assignment that ended unconnected (its line, arrival, when the
    agent was assigned, and the callback number when it was a callback being placed)."""


@dataclass(frozen=True)
class HoldRound:
    """What one round of holding found and changed (see `CallQueue.hold_round`)."""

    place: Place | None
    """Where the caller stands; None when they have been handed to an agent."""
    assignment: Assignment | None
    """The agent they have been handed to (this round or before), not yet connected."""
    load: LineLoad
    dispatched: tuple[Assignment, ...]
    """Every assignment this round's dispatch made, this caller's included: deliver them."""
    rejoined: bool
    """The caller had no live place (Redis lost it, or the heartbeat lapsed) and joined again
    at the arrival time given."""
    ended: bool = False
    """The call holding has ended (its status callback came): nothing was changed for it."""
    waiting_before: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """While the caller waits: for each of the other lines asked about, the callers an agent
    would take before this one (higher priority, or the same and earlier)."""


@dataclass(frozen=True)
class Swept:
    """A call the sweep removed because its deadline passed."""

    call_sid: str
    left: Place | None
    """Where it was, if it was waiting (a place kept for a callback included)."""
    freed_agent: str | None
    """It had been assigned but not connected: this agent is released."""
    callback_number: str | None
    """It was waiting for a callback to this number, which will now not be placed."""


class CallerOps(QueueBase):
    """The caller part of `CallQueue`."""

    def join(
        self,
        call_sid: str,
        queue: str,
        language: str,
        priority: int,
        *,
        enqueued_ms: int | None = None,
    ) -> Place:
        """Queue a call; atomic (one script); a retry keeps the place, a move keeps the time.

        A call without a live entry arrives at `enqueued_ms` when given (its original arrival,
        carried in the webhook URL, so that after Redis lost its data it gets its place in the
        order back; never later than now) and now otherwise. A call already handed to an agent
        stays assigned and is not queued again: the place returned is in its original line
        with position 0 (it is next; see `assignment`).
        """
        place = to_place(
            self._joining(self._join, call_sid, queue, language, priority, enqueued_ms)
        )
        if place is None:
            raise RuntimeError(f"join of {call_sid} returned no place")
        return place

    def enter(
        self,
        call_sid: str,
        queue: str,
        language: str,
        priority: int,
        *,
        enqueued_ms: int | None = None,
        leg: str | None = None,
    ) -> tuple[Place | None, tuple[Assignment, ...]]:
        """`join`, then `dispatch`, in one script and one round trip: where the caller stands, and
        the assignments the dispatch made (this caller's too, when an agent was free).

        `leg`: the call asking (default `call_sid`). When it has ended (`hang_up`), nothing
        changes and the place is None."""
        reply = self._joining(
            self._enter, call_sid, queue, language, priority, enqueued_ms, leg=leg or call_sid
        )
        if not isinstance(reply, list) or len(reply) != 2:
            raise RuntimeError(f"unexpected reply from the enter script: {reply!r}")
        if not reply[0]:
            return None, ()  # that leg has ended
        place = to_place(reply[0])
        if place is None:
            raise RuntimeError(f"enter of {call_sid} returned no place")
        return place, tuple(to_assignments(reply[1]))

    def _joining(
        self,
        script: Script,
        call_sid: str,
        queue: str,
        language: str,
        priority: int,
        enqueued_ms: int | None,
        *,
        leg: str | None = None,
    ) -> Any:
        """Run a script that joins a call to a line (`join`, `enter`), arguments checked; `leg`
        adds the ended marker of that leg to the keys (`enter`)."""
        check_call_sid(call_sid)
        check_line(queue, language)
        check_priority(priority)
        now = self._now_ms()
        arrival = now if enqueued_ms is None else min(enqueued_ms, now)
        check_enqueued_ms(arrival)
        keys = [entry_key(call_sid), queue_key(queue, language)]
        if leg is not None:
            check_call_sid(leg)
            keys.append(ended_key(leg))
        return self._run(script, keys, [call_sid, queue, language, priority, arrival], now)

    def place(self, call_sid: str) -> Place | None:
        """Where the call stands, or None if not queued (unknown, lapsed, or handed to an agent:
        ask `assignment` first); atomic (one script, sweeps first)."""
        check_call_sid(call_sid)
        return to_place(self._run(self._place, [entry_key(call_sid)], [call_sid]))

    def heartbeat(self, call_sid: str) -> bool:
        """Keep a waiting or assigned call alive for another heartbeat; False when it is unknown
        or its deadline already passed (it is gone: join again).

        Atomic (one script): ZADD GT on its deadline, never shortening the longer deadline of a
        place kept for a callback, and the entry's TTL follows.
        """
        check_call_sid(call_sid)
        return bool(self._run(self._heartbeat, [entry_key(call_sid)], [call_sid]))

    def leave(self, call_sid: str) -> Place | None:
        """Dequeue a call and return where it was, or None; atomic (one script), idempotent.

        Removes a place kept for a callback too. A call handed to an agent but not connected
        yet loses its assignment and the agent is released (returns None: it held no place).
        A connected call is left alone. The status callback should call `hang_up`.
        """
        check_call_sid(call_sid)
        return self._end(call_sid, hanging_up=False).left

    def hang_up(self, call_sid: str, *, leg: str | None = None) -> HangUp:
        """The caller's call ended (status callback); atomic (one script), idempotent.

        Waiting with a callback requested: everything is kept. Waiting otherwise: leaves its
        line. Assigned but not connected: the entry is dropped and the agent released
        (`freed_agent`; `assigned` says what the assignment was). Connected: the agent still
        busy with this call is released (`released_agent`), as `finish_call` would. Unknown:
        nothing.

        `leg`: the call that ended (`call_sid` itself, or a callback we placed for it). It is
        remembered for `REMEMBER_SECONDS`, and `enter` and `hold_round` for it change nothing.
        """
        check_call_sid(call_sid)
        return self._end(call_sid, hanging_up=True, leg=leg)

    def first_time(self, request_key: str) -> bool:
        """True the first time a request (by its fingerprint) asks; False for a replay within
        `REMEMBER_SECONDS` (one SET NX)."""
        return bool(self._client.set(seen_key(request_key), "1", nx=True, ex=REMEMBER_SECONDS))

    def claim_text(self, call_sid: str) -> bool:
        """True the first time a call's caller is to be texted their ticket number; False for
        every later try within `REMEMBER_SECONDS` (one SET NX)."""
        check_call_sid(call_sid)
        return bool(self._client.set(texted_key(call_sid), "1", nx=True, ex=REMEMBER_SECONDS))

    def claim_reference(self, call_sid: str, reference: str) -> str:
        """The call's ticket reference: `reference` the first time a call asks, the first one it
        was given afterwards, for `REMEMBER_SECONDS` (one SET NX GET)."""
        check_call_sid(call_sid)
        earlier = self._client.set(
            call_reference_key(call_sid), reference, nx=True, get=True, ex=REMEMBER_SECONDS
        )
        return reference if earlier is None else text(earlier)

    def pin_rules_version(self, call_sid: str, version: int) -> None:
        """Remember the rules version a call queues with, for `REMEMBER_SECONDS` (one SET)."""
        check_call_sid(call_sid)
        self._client.set(call_rules_version_key(call_sid), str(version), ex=REMEMBER_SECONDS)

    def pinned_rules_version(self, call_sid: str) -> int | None:
        """The rules version `pin_rules_version` remembered for a call, if any (one GET)."""
        check_call_sid(call_sid)
        found = self._client.get(call_rules_version_key(call_sid))
        return int(found) if found is not None and text(found).isdigit() else None

    def remember_caller(self, call_sid: str, facts: Mapping[str, str]) -> None:
        """Add to what is known of a call's caller (`ivr.exchange`); one pipeline (HSET, EXPIRE)."""
        check_call_sid(call_sid)
        key = known_caller_key(call_sid)
        fields: dict[Any, Any] = dict(facts)  # redis-py's mapping type is invariant in its keys
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, REMEMBER_SECONDS)
            pipe.execute()

    def known_caller(self, call_sid: str) -> dict[str, str]:
        """What is known of a call's caller; empty when nothing yet (one HGETALL)."""
        check_call_sid(call_sid)
        found: Any = self._client.hgetall(known_caller_key(call_sid))
        return {text(k): text(v) for k, v in (found or {}).items()}

    def size(self, queue: str, language: str) -> int:
        """Callers in one line; atomic (one script: sweeps first, then ZCARD)."""
        check_line(queue, language)
        return int(self._run(self._size, [queue_key(queue, language)], []))

    def earliest_arrival(
        self, queue: str, language: str, *, scan: int = ADMIN_SCAN_LIMIT
    ) -> datetime | None:
        """When the longest-waiting caller of one line arrived (a place kept for a callback
        included), or None when nobody waits; read-only (one ZRANGE of at most `scan` members).

        For the admin dashboard's "longest wait": the score orders by priority first, so the
        earliest arrival is the smallest arrival part among the members read, not the head.
        Ghosts not yet swept count until the sweep removes them (call `size` first to sweep)."""
        check_line(queue, language)
        members: list[Any] = self._client.zrange(
            queue_key(queue, language), 0, scan - 1, withscores=True
        )
        arrivals = [int(score) % MAX_ENQUEUED_MS for _, score in members]
        return instant(min(arrivals)) if arrivals else None

    def request_callback(
        self,
        call_sid: str,
        number: str,
        *,
        our_number: str | None = None,
        reference: str | None = None,
        code: str | None = None,
        keep_seconds: int = DEFAULT_CALLBACK_KEEP_SECONDS,
    ) -> Place | None:
        """Keep a waiting caller's place for a callback to `number` instead of holding on.

        The call keeps its member and score (others still count it); the entry stores the
        number, `our_number` (the number the caller called: the callback is placed from it),
        `reference` (the ticket) and `code` (the callback code the caller was given, which the
        callback opens with), and the deadline moves to now + `keep_seconds` (never
        earlier: no heartbeat will come). None when the call is not queued (unknown, lapsed, or
        already handed to an agent). Atomic (one script).
        """
        check_call_sid(call_sid)
        if not number:
            raise ValueError("number must not be empty")
        if keep_seconds < 1:
            raise ValueError("keep_seconds must be at least 1")
        reply = self._run(
            self._request_callback,
            [entry_key(call_sid)],
            [
                call_sid,
                number,
                our_number or "",
                reference or "",
                keep_seconds * 1000,
                code or "",
            ],
        )
        return to_place(reply)

    def restore_callback(
        self,
        call_sid: str,
        queue: str,
        language: str,
        priority: int,
        enqueued_ms: int,
        number: str,
        *,
        our_number: str | None,
        reference: str | None,
        keep_until_ms: int,
        code: str | None = None,
    ) -> bool:
        """Rebuild a place kept for a callback after Redis lost its data (from the database), or
        put an after-hours request in its line (`ivr.callbacks`).

        The call gets its entry, its original score and the deadline `keep_until_ms`; `code` is
        the callback code the caller was given (the callback opens with it). Nothing
        happens (False) when the call already has a live entry or is talking to an agent, or
        when `keep_until_ms` has passed. Atomic (one script).
        """
        check_call_sid(call_sid)
        check_line(queue, language)
        check_priority(priority)
        check_enqueued_ms(enqueued_ms)
        if not number:
            raise ValueError("number must not be empty")
        reply = self._run(
            self._restore_callback,
            [entry_key(call_sid), queue_key(queue, language), connection_key(call_sid)],
            [
                call_sid,
                queue,
                language,
                priority,
                enqueued_ms,
                number,
                our_number or "",
                reference or "",
                keep_until_ms,
                code or "",
            ],
        )
        return bool(reply)

    def hold_round(
        self,
        call_sid: str,
        queue: str,
        language: str,
        priority: int,
        enqueued_ms: int,
        *,
        leg: str | None = None,
        sharing: Sequence[tuple[str, str]] = (),
    ) -> HoldRound:
        """One round of holding, which writes; atomic (one script, one round trip).

        In order: sweep (at most 16 expired calls); heartbeat this call, or, if it has no live
        place (Redis lost it, or its heartbeat lapsed), join (queue, language) again at
        `enqueued_ms` with `priority` (`rejoined`); dispatch (every available agent claims as
        `dispatch` does); then this call's assignment or place, and the load of (queue,
        language) as `line_load` gives it.

        `leg`: the call holding (default `call_sid`); when it has ended (`hang_up`) nothing
        changes and the round says so (`ended`): a late or replayed poll never rejoins the line.
        `sharing`: other lines (queue, language) the line's agents serve; while the caller waits,
        the round counts the callers of each whom an agent would take first (`waiting_before`).
        """
        check_call_sid(call_sid)
        leg = leg or call_sid
        check_call_sid(leg)
        check_line(queue, language)
        check_priority(priority)
        for other in sharing:
            check_line(*other)
        now = self._now_ms()
        arrival = min(enqueued_ms, now)
        check_enqueued_ms(arrival)
        reply = self._run(
            self._hold_round,
            [
                entry_key(call_sid),
                ended_key(leg),
                *line_load_keys(queue, language),
                *(queue_key(*other) for other in sharing),
            ],
            [call_sid, queue, language, priority, arrival, HISTORY_LENGTH],
            now,
        )
        if not isinstance(reply, list) or len(reply) != 7:
            raise RuntimeError(f"unexpected reply from the hold round script: {reply!r}")
        rejoined, place, assignment, dispatched, load, ended, before = reply
        return HoldRound(
            place=to_place(place) if place else None,
            assignment=to_assignment(assignment) if assignment else None,
            load=to_line_load(load),
            dispatched=tuple(to_assignments(dispatched)),
            rejoined=bool(rejoined),
            ended=bool(ended),
            waiting_before=dict(zip(sharing, map(int, before), strict=False)),
        )

    def sweep(self, limit: int = 1000) -> list[Swept]:
        """Remove at most `limit` calls whose deadline passed, oldest deadline first; atomic
        (one script). For the background timer; returns what was removed, for logging.

        A waiting one leaves its line, an assigned-not-connected one releases its agent (as
        `hang_up` does); its entry and deadline go.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        reply = self._run(self._sweep, [], [limit])
        if not isinstance(reply, list):
            raise RuntimeError(f"unexpected reply from the sweep script: {reply!r}")
        return [_to_swept(item) for item in reply]

    def audit(self, cursor: str = "0", count: int = 100) -> str:
        """Check one bounded chunk of the lines for left-over members; returns the next cursor.

        Removes members that have no entry, whose entry names another line, or that are
        assigned. Start with "0" and pass each returned cursor back; "0" again means a whole
        pass over every line in `waiting_queues_key()` is done. Each step is one script over at
        most about `count` members (ZSCAN COUNT) plus an SMEMBERS of the small line index: for
        the background only, never on the request path.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if cursor == "0":
            line, scan = self._next_line(None), "0"
        else:
            scan, _, line_text = cursor.partition(" ")
            line = line_text or None
        if line is None:
            return "0"
        reply = self._run(self._audit, [line], [scan, count])
        if not isinstance(reply, list) or len(reply) != 2:
            raise RuntimeError(f"unexpected reply from the audit script: {reply!r}")
        next_scan = text(reply[0])
        if next_scan != "0":
            return f"{next_scan} {line}"
        following = self._next_line(line)
        return "0" if following is None else f"0 {following}"

    def write_waiting(
        self, queue: str, language: str, priority: int, callers: Sequence[tuple[str, int]]
    ) -> None:
        """Write many new waiting callers of one line at once (benchmarks, tests): not atomic.

        `callers` are (call SID, enqueued ms) of calls without an entry; each gets exactly the
        keys and values `join` writes for such a call, now, in pipelined batches.
        """
        check_line(queue, language)
        check_priority(priority)
        now = self._now_ms()
        line = queue_key(queue, language)
        deadline = now + self._heartbeat_seconds * 1000
        ttl_ms = self._heartbeat_seconds * 1000 + self._grace_seconds * 1000
        for start in range(0, len(callers), _BULK_BATCH):
            batch = callers[start : start + _BULK_BATCH]
            with self._client.pipeline(transaction=False) as pipe:
                for call_sid, enqueued_ms in batch:
                    check_call_sid(call_sid)
                    check_enqueued_ms(enqueued_ms)
                    entry = entry_key(call_sid)
                    pipe.hset(
                        entry,
                        mapping={
                            "queue": queue,
                            "language": language,
                            "queue_key": line,
                            "priority": priority,
                            "enqueued_ms": enqueued_ms,
                        },
                    )
                    pipe.pexpire(entry, ttl_ms)
                pipe.zadd(deadlines_key(), {sid: deadline for sid, _ in batch}, gt=True)
                pipe.zadd(line, {sid: (100 - priority) * 10**13 + ms for sid, ms in batch})
                pipe.sadd(waiting_queues_key(), line)
                pipe.sadd(lines_waiting_key(), line)
                pipe.execute()

    def _end(self, call_sid: str, *, hanging_up: bool, leg: str | None = None) -> HangUp:
        if leg is not None:
            check_call_sid(leg)
        reply = self._run(
            self._hang_up,
            [entry_key(call_sid), connection_key(call_sid), ended_key(leg or call_sid)],
            [call_sid, "1" if hanging_up else "0", REMEMBER_SECONDS if leg else 0],
        )
        if not isinstance(reply, list) or not reply:
            raise RuntimeError(f"unexpected reply from the hang-up script: {reply!r}")
        kind = text(reply[0])
        if kind == "left":
            return HangUp(left=to_place(reply[1:]), kept_for_callback=False, freed_agent=None)
        if kind == "kept":
            return HangUp(left=None, kept_for_callback=True, freed_agent=None)
        if kind == "freed" and len(reply) == 3:
            return HangUp(
                left=None,
                kept_for_callback=False,
                freed_agent=text(reply[1]),
                assigned=to_assignment(reply[2]),
            )
        if kind == "released" and len(reply) == 2:
            return HangUp(
                left=None, kept_for_callback=False, freed_agent=None, released_agent=text(reply[1])
            )
        if kind == "none":
            return HangUp(left=None, kept_for_callback=False, freed_agent=None)
        raise RuntimeError(f"unexpected reply from the hang-up script: {reply!r}")

    def _next_line(self, after: str | None) -> str | None:
        lines = sorted(text(k) for k in self._client.smembers(waiting_queues_key()))
        later = [k for k in lines if after is None or k > after]
        return later[0] if later else None

    def claim_callback_step(self, call_sid: str, step: str, seconds: int) -> bool:
        """True for the one process that first claims this step of an after-hours callback
        (`ivr.callbacks`) within `seconds`; False for every other (one SET NX EX)."""
        check_call_sid(call_sid)
        if seconds < 1:
            raise ValueError("seconds must be at least 1")
        return bool(self._client.set(callback_step_key(call_sid, step), "1", nx=True, ex=seconds))


def _to_swept(item: object) -> Swept:
    if not isinstance(item, list) or len(item) != 9:
        raise RuntimeError(f"unexpected item from the sweep script: {item!r}")
    sid, queue, language, priority, position, size, enqueued_ms, agent, callback = item
    left = None
    if int(position) > 0:
        left = to_place([queue, language, priority, position, size, enqueued_ms])
    return Swept(
        call_sid=text(sid),
        left=left,
        freed_agent=text(agent) or None,
        callback_number=text(callback) or None,
    )
