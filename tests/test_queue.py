"""The shared waiting line: what callers hear about their place, on fakeredis and real Redis."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
import redis

from ivr.clock import FrozenClock
from ivr.queue import (
    EMBEDDED_URL,
    KEY_PREFIX,
    CallQueue,
    connect,
    entry_key,
    queue_key,
    waiting_queues_key,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def line(redis_client: redis.Redis, clock: FrozenClock) -> CallQueue:
    return CallQueue(redis_client, clock)


def positions(line: CallQueue, *call_sids: str) -> list[int | None]:
    places = [line.place(sid) for sid in call_sids]
    return [p.position if p else None for p in places]


def join_in_order(
    line: CallQueue, clock: FrozenClock, call_sids: list[str], priority: int = 50
) -> None:
    for sid in call_sids:
        line.join(sid, "support", "en", priority)
        clock.advance(1)


def test_callers_are_placed_in_arrival_order(line: CallQueue, clock: FrozenClock) -> None:
    first = line.join("CA1", "support", "en", 50)
    clock.advance(5)
    second = line.join("CA2", "support", "en", 50)

    assert (first.position, first.size) == (1, 1)
    assert (second.position, second.size) == (2, 2)
    assert second.enqueued_at == START + timedelta(seconds=5)
    assert positions(line, "CA1", "CA2") == [1, 2]
    assert line.size("support", "en") == 2


def test_higher_priority_caller_arriving_later_goes_first(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"], priority=50)

    vip = line.join("CAVIP", "support", "en", 100)

    assert (vip.position, vip.size, vip.priority) == (1, 4, 100)
    assert positions(line, "CA1", "CA2", "CA3") == [2, 3, 4]


def test_lower_priority_caller_arriving_earlier_waits_behind(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.join("CALOW", "support", "en", 0)
    clock.advance(60)
    line.join("CAMID", "support", "en", 50)

    assert positions(line, "CAMID", "CALOW") == [1, 2]


def test_callers_a_millisecond_apart_keep_their_order(line: CallQueue, clock: FrozenClock) -> None:
    # Full-precision scores: 15-16 digits must survive the trip through Lua and Redis.
    clock.set(START + timedelta(milliseconds=1))
    line.join("CB-first", "support", "en", 50)
    clock.advance(0.001)
    line.join("CA-second", "support", "en", 50)

    assert positions(line, "CB-first", "CA-second") == [1, 2]


def test_rejoin_keeps_original_place_and_time(line: CallQueue, clock: FrozenClock) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    before = line.place("CA2")
    clock.advance(30)

    # Twilio retries the webhook; the retry must not send the caller to the back.
    again = line.join("CA2", "support", "en", 50)

    assert again == before
    assert again.enqueued_at == START + timedelta(seconds=1)
    assert line.size("support", "en") == 3


def test_rejoin_with_another_priority_keeps_the_original_place(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CA1", "CA2"])

    again = line.join("CA2", "support", "en", 100)

    assert (again.position, again.priority) == (2, 50)


def test_moving_to_another_queue_keeps_arrival_time(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    line.join("CAMOVER", "billing", "en", 50)
    clock.advance(10)
    line.join("CAB1", "billing", "en", 50)
    line.join("CAS1", "support", "en", 50)

    moved = line.join("CAMOVER", "support", "en", 50)

    # It arrived before CAS1, so it goes ahead of it in the new line.
    assert (moved.queue, moved.position, moved.size) == ("support", 1, 2)
    assert moved.enqueued_at == START
    # Gone from the old line itself, not merely hidden, so sweeps and admin agree.
    assert redis_client.zscore(queue_key("billing", "en"), "CAMOVER") is None
    assert positions(line, "CAS1", "CAB1") == [2, 1]
    assert line.size("billing", "en") == 1


def test_leaving_from_the_middle_moves_everyone_behind_up(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3", "CA4"])

    left = line.leave("CA2")

    assert left is not None
    assert (left.position, left.size) == (2, 4)
    assert line.place("CA2") is None
    assert positions(line, "CA1", "CA3", "CA4") == [1, 2, 3]
    assert line.size("support", "en") == 3


def test_leaving_twice_is_harmless(line: CallQueue, clock: FrozenClock) -> None:
    join_in_order(line, clock, ["CA1", "CA2"])

    assert line.leave("CA1") is not None
    assert line.leave("CA1") is None
    assert line.leave("CANEVER") is None
    assert positions(line, "CA2") == [1]


def test_unknown_call_has_no_place(line: CallQueue) -> None:
    assert line.place("CANEVER") is None


def test_ghost_is_pruned_and_positions_behind_correct_themselves(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CAGHOST", "CA3", "CA4"])

    # Same effect as the heartbeat TTL lapsing: the status callback was lost.
    redis_client.delete(entry_key("CAGHOST"))

    assert positions(line, "CA3", "CA4") == [2, 3]
    assert line.size("support", "en") == 3
    assert line.place("CAGHOST") is None


def test_caller_whose_heartbeat_lapses_becomes_a_ghost(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    line = CallQueue(redis_client, clock, heartbeat_seconds=1)
    join_in_order(line, clock, ["CASILENT", "CAALIVE"])

    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        assert line.heartbeat("CAALIVE")
        time.sleep(0.3)

    assert positions(line, "CASILENT", "CAALIVE") == [None, 1]
    assert line.size("support", "en") == 1


def test_rejoining_after_the_heartbeat_lapsed_starts_afresh(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CAGHOST", "CA2"])
    redis_client.delete(entry_key("CAGHOST"))

    back = line.join("CAGHOST", "support", "en", 50)

    assert (back.position, back.size) == (2, 2)
    assert back.enqueued_at == START + timedelta(seconds=2)


def test_a_call_dropped_from_its_line_by_hand_gets_its_place_back(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    redis_client.zrem(queue_key("support", "en"), "CA2")

    # The entry (still heartbeating) is the truth; the caller keeps their turn.
    assert positions(line, "CA2", "CA3") == [2, 3]


def test_heartbeat_extends_the_entry_and_reports_unknown_calls(
    line: CallQueue, redis_client: redis.Redis
) -> None:
    line.join("CA1", "support", "en", 50)
    redis_client.expire(entry_key("CA1"), 5)

    assert line.heartbeat("CA1") is True
    assert redis_client.ttl(entry_key("CA1")) > 5
    assert line.heartbeat("CANEVER") is False
    line.leave("CA1")
    assert line.heartbeat("CA1") is False


def test_languages_are_separate_lines(line: CallQueue, clock: FrozenClock) -> None:
    english = line.join("CAEN", "support", "en", 50)
    clock.advance(1)
    spanish = line.join("CAES", "support", "es", 50)

    assert (english.position, english.size) == (1, 1)
    assert (spanish.position, spanish.size, spanish.language) == (1, 1, "es")
    assert line.size("support", "en") == 1
    assert line.size("support", "es") == 1


def test_every_per_call_key_expires_and_all_keys_share_the_prefix(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2"])
    line.join("CA1", "billing", "es", 10)

    keys = {k.decode() if isinstance(k, bytes) else k for k in redis_client.keys("*")}
    assert keys == {
        entry_key("CA1"),
        entry_key("CA2"),
        queue_key("support", "en"),
        queue_key("billing", "es"),
        waiting_queues_key(),
    }
    assert all(k.startswith(KEY_PREFIX) for k in keys)
    for sid in ("CA1", "CA2"):
        assert redis_client.ttl(entry_key(sid)) > 0
    # The shared lines and the index outlive any one call.
    assert redis_client.ttl(queue_key("support", "en")) == -1
    assert redis_client.ttl(waiting_queues_key()) == -1
    assert redis_client.smembers(waiting_queues_key()) == {
        queue_key("support", "en").encode(),
        queue_key("billing", "es").encode(),
    }


@pytest.mark.parametrize(
    ("call_sid", "queue", "language", "priority"),
    [
        ("", "support", "en", 50),
        ("CA1", "support", "en", -1),
        ("CA1", "support", "en", 101),
        ("CA1", "", "en", 50),
        ("CA1", "support", "", 50),
        ("CA1", "sup:port", "en", 50),
    ],
)
def test_invalid_join_is_rejected(
    line: CallQueue, call_sid: str, queue: str, language: str, priority: int
) -> None:
    with pytest.raises(ValueError):
        line.join(call_sid, queue, language, priority)
    assert line.size("support", "en") == 0


def test_priority_bounds_are_accepted(line: CallQueue) -> None:
    assert line.join("CA0", "support", "en", 0).priority == 0
    assert line.join("CA100", "support", "en", 100).position == 1


def test_embedded_redis_works_in_process(clock: FrozenClock) -> None:
    line = CallQueue(connect(EMBEDDED_URL), clock)

    assert line.ping() is True
    assert line.join("CA1", "support", "en", 50).position == 1


def test_ping_is_false_when_redis_is_unreachable(clock: FrozenClock) -> None:
    line = CallQueue(redis.Redis(port=1, socket_connect_timeout=0.2), clock)

    assert line.ping() is False


def second_instance_client(client: redis.Redis) -> redis.Redis:
    """Another connection to the same data, as a second app instance would have."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return redis.Redis.from_url(url)
    other: redis.Redis = fakeredis.FakeRedis(
        server=client.connection_pool.connection_kwargs["server"]
    )
    return other


def test_two_instances_joining_at_once_get_distinct_places(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    instances = [
        CallQueue(redis_client, clock),
        CallQueue(second_instance_client(redis_client), clock),
    ]
    sizes: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                sizes[n].append(instances[n].join(f"CA{n}-{i:02d}", "support", "en", 50).size)
        except BaseException as exc:  # surface thread failures in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    # Each atomic join added exactly one caller, so the sizes seen are 1..100 with no repeats.
    assert sorted(sizes[0] + sizes[1]) == list(range(1, 101))
    sids = [f"CA{n}-{i:02d}" for n in range(2) for i in range(50)]
    assert sorted(p or 0 for p in positions(instances[0], *sids)) == list(range(1, 101))
    assert instances[1].size("support", "en") == 100
