"""Recent wait, talk and connect durations of each line, and the load the wait estimate needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ivr.queue.base import QueueBase, check_agent, check_line, text
from ivr.queue.keys import queue_key, stats_key

HISTORY_LENGTH: Final = 50
"""How many recent wait, talk and connect durations each line keeps."""
HISTORY_TTL_SECONDS: Final = 7 * 24 * 3600


@dataclass(frozen=True)
class LineLoad:
    """What the wait estimate of one line needs."""

    waiting: int
    """Callers in the line (ZCARD), callers waiting for a callback included."""
    agents_available: int
    """Agents logged in to serve the line and free."""
    agents_busy: int
    """Agents logged in to serve the line and on a call (talking, or being put through)."""
    recent_talk_seconds: tuple[int, ...]
    """Newest first, at most `HISTORY_LENGTH`."""
    recent_wait_seconds: tuple[int, ...]
    """Newest first, at most `HISTORY_LENGTH`."""
    busy_seconds: tuple[float, ...] = ()
    """How long each busy agent has been talking (0 while its caller is being put through)."""
    recent_connect_seconds: tuple[int, ...] = ()
    """How long agents took from being assigned a holding caller to answering (ringing and the
    whisper), newest first, at most `HISTORY_LENGTH`."""
    connecting_seconds: tuple[float, ...] = ()
    """For each busy agent whose caller is still being put through (counted as 0 in
    `busy_seconds`): how long since that caller was assigned to it."""


class HistoryOps(QueueBase):
    """The history and load part of `CallQueue`."""

    def record_answered(self, queue: str, language: str, wait_seconds: int) -> None:
        """Remember how long an answered caller waited; atomic (MULTI), keeps the newest 50."""
        self._record(stats_key(queue, language, "wait"), queue, language, wait_seconds)

    def record_talk(self, queue: str, language: str, talk_seconds: int) -> None:
        """Remember how long a conversation lasted; atomic (MULTI), keeps the newest 50."""
        self._record(stats_key(queue, language, "talk"), queue, language, talk_seconds)

    def record_connect(self, queue: str, language: str, connect_seconds: int) -> None:
        """Remember how long an agent took from being assigned a holding caller to answering;
        atomic (MULTI), keeps the newest 50."""
        self._record(stats_key(queue, language, "connect"), queue, language, connect_seconds)

    def line_load(self, queue: str, language: str) -> LineLoad:
        """Callers, available and busy agents (those logged in to serve the line), and recent
        history of one line, for the wait estimate; atomic (one script: sweeps first). Its cost
        grows with the line's busy agents, not with the agents logged in."""
        check_line(queue, language)
        reply = self._run(
            self._line_load, keys=line_load_keys(queue, language), args=[HISTORY_LENGTH]
        )
        return to_line_load(reply)

    def _record(self, key: str, queue: str, language: str, seconds: int) -> None:
        check_line(queue, language)
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        with self._client.pipeline(transaction=True) as pipe:
            pipe.lpush(key, seconds)
            pipe.ltrim(key, 0, HISTORY_LENGTH - 1)
            pipe.expire(key, HISTORY_TTL_SECONDS)
            pipe.execute()


def unique_agents(agent_ids: Sequence[str]) -> list[str]:
    """The agent ids, checked, without repeats, in their first order."""
    agents = list(dict.fromkeys(agent_ids))
    for agent in agents:
        check_agent(agent)
    return agents


def line_load_keys(queue: str, language: str) -> list[str]:
    """The keys a line's load is read from, in the order the scripts take them (see
    `scripts.HELPERS` line_load): the line's zset, its wait, talk and connect histories."""
    return [
        queue_key(queue, language),
        stats_key(queue, language, "wait"),
        stats_key(queue, language, "talk"),
        stats_key(queue, language, "connect"),
    ]


def to_line_load(reply: object) -> LineLoad:
    """A {waiting, available, busy, {waits}, {talks}, {talking ms}, {connects}, {connecting ms},
    talking} reply (LINE_LOAD's, and HOLD_ROUND's fifth item) as a LineLoad. The two lists of ms
    are at most the scripts' LOAD_SAMPLE agents each, evenly spread by how long they have been at
    it; each stands for its share of the agents when there are more."""
    if not isinstance(reply, list) or len(reply) != 9:
        raise RuntimeError(f"unexpected reply from a line load script: {reply!r}")
    waiting, available, busy, waits, talks, talking, connects, connecting, talking_count = reply
    talkers = int(talking_count)
    connecting_seconds = _spread([int(text(ms)) / 1000 for ms in connecting], int(busy) - talkers)
    return LineLoad(
        waiting=int(waiting),
        agents_available=int(available),
        agents_busy=int(busy),
        recent_talk_seconds=tuple(int(text(t)) for t in talks),
        recent_wait_seconds=tuple(int(text(w)) for w in waits),
        # Agents putting a caller through count as 0 s into their conversation.
        busy_seconds=_spread([int(text(ms)) / 1000 for ms in talking], talkers)
        + (0.0,) * len(connecting_seconds),
        recent_connect_seconds=tuple(int(text(c)) for c in connects),
        connecting_seconds=connecting_seconds,
    )


def _spread(sample: list[float], count: int) -> tuple[float, ...]:
    """`count` values from an evenly spread `sample` of them (sorted by rank): each sampled value
    stands for its share (the sample itself when it is all of them)."""
    if not sample or len(sample) >= count:
        return tuple(sample)
    return tuple(sample[i * len(sample) // count] for i in range(count))
