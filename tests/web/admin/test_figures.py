"""The read-only queue query the dashboard's "longest wait" uses."""

from __future__ import annotations

import redis

from ivr.clock import FrozenClock
from ivr.queue import CallQueue


def test_earliest_arrival_is_the_longest_waiting_caller_whatever_the_priorities(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    queue = CallQueue(redis_client, clock)
    assert queue.earliest_arrival("funds", "en-US") is None
    first = clock.now()
    queue.join("CA" + "1" * 32, "funds", "en-US", priority=10)
    clock.advance(30)
    queue.join("CA" + "2" * 32, "funds", "en-US", priority=90)  # sorts first, arrived later
    assert queue.earliest_arrival("funds", "en-US") == first
    queue.leave("CA" + "1" * 32)
    assert queue.earliest_arrival("funds", "en-US") == clock.now()
    assert queue.earliest_arrival("funds", "de-DE") is None
