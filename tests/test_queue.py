"""The shared waiting line: what callers hear about their place, on fakeredis and real Redis.

Also deadlines, the sweep and the audit, hold rounds, callbacks kept and restored, the epoch, and
the cost of every request-path script (it must not grow with the line).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
import redis
from fakeredis.commands_mixins.scripting_mixin import ScriptingCommandsMixin
from redis.crc import key_slot

from ivr.clock import FrozenClock
from ivr.queue import (
    EMBEDDED_URL,
    KEY_PREFIX,
    REQUEST_SWEEP_LIMIT,
    CallQueue,
    Place,
    Swept,
    connect,
    deadlines_key,
    entry_key,
    epoch_key,
    lines_waiting_key,
    queue_key,
    waiting_queues_key,
)
from ivr.queue.callers import REMEMBER_SECONDS
from ivr.queue.keys import ended_key
from ivr.signing import CLOCK_SKEW, SEAL_MAX_AGE
from tests.topologies import TOPOLOGY_URLS, all_keys

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HEARTBEAT = 120
"""The default heartbeat of `CallQueue`, which the `line` fixture uses."""


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def redis_client(every_redis: redis.Redis) -> redis.Redis:
    """Every test here runs against one Redis, a real Redis Cluster and a Sentinel setup."""
    return every_redis


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


def ms(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(milliseconds=1)


def outlive(
    line: CallQueue, clock: FrozenClock, alive: list[str], heartbeat: int = HEARTBEAT
) -> None:
    """Let a heartbeat and a second pass with only `alive` heartbeating: every other call's
    deadline passes (its status callback was lost), theirs does not."""
    clock.advance(heartbeat / 2)
    for sid in alive:
        assert line.heartbeat(sid)
    clock.advance(heartbeat / 2 + 1)


def deadline_of(client: redis.Redis, call_sid: str) -> datetime | None:
    score = client.zscore(deadlines_key(), call_sid)
    return None if score is None else EPOCH + timedelta(milliseconds=score)


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

    # The ghost's status callback was lost: it stops heartbeating, the others go on.
    outlive(line, clock, ["CA1", "CA3", "CA4"])

    assert positions(line, "CA3", "CA4") == [2, 3]
    assert line.size("support", "en") == 3
    assert line.place("CAGHOST") is None
    # Pruned for good, not merely hidden: entry, deadline and member are gone.
    assert redis_client.exists(entry_key("CAGHOST")) == 0
    assert deadline_of(redis_client, "CAGHOST") is None
    assert redis_client.zscore(queue_key("support", "en"), "CAGHOST") is None


def test_caller_whose_heartbeat_lapses_becomes_a_ghost(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    line = CallQueue(redis_client, clock, heartbeat_seconds=1)
    join_in_order(line, clock, ["CASILENT", "CAALIVE"])

    for _ in range(4):
        assert line.heartbeat("CAALIVE")
        clock.advance(0.3)

    # The app's clock decides, not Redis's: no real time passed at all.
    assert line.heartbeat("CASILENT") is False
    assert positions(line, "CASILENT", "CAALIVE") == [None, 1]
    assert line.size("support", "en") == 1


def test_a_lapsed_entry_outlives_its_deadline_until_the_sweep(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    line.join("CAGHOST", "support", "en", 50)
    clock.advance(HEARTBEAT + 1)

    # The TTL is only a safety net (deadline + grace): the sweeper still finds the entry.
    assert 3600 < redis_client.ttl(entry_key("CAGHOST")) <= 3600 + HEARTBEAT
    [swept] = line.sweep(10)

    assert swept.call_sid == "CAGHOST"
    assert swept.left is not None and (swept.left.position, swept.left.size) == (1, 1)
    assert redis_client.exists(entry_key("CAGHOST")) == 0


def test_rejoining_after_the_heartbeat_lapsed_starts_afresh(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CAGHOST", "CA2"])
    outlive(line, clock, ["CA2"])

    back = line.join("CAGHOST", "support", "en", 50)

    assert (back.position, back.size) == (2, 2)
    assert back.enqueued_at == clock.now()


def test_a_call_dropped_from_its_line_by_hand_gets_its_place_back(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    redis_client.zrem(queue_key("support", "en"), "CA2")

    # The entry (still heartbeating) is the truth; the caller keeps their turn.
    assert positions(line, "CA2", "CA3") == [2, 3]


def test_heartbeat_extends_the_entry_and_reports_unknown_calls(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    line.join("CA1", "support", "en", 50)
    assert deadline_of(redis_client, "CA1") == START + timedelta(seconds=HEARTBEAT)
    redis_client.expire(entry_key("CA1"), 5)
    clock.advance(60)

    assert line.heartbeat("CA1") is True
    assert deadline_of(redis_client, "CA1") == START + timedelta(seconds=60 + HEARTBEAT)
    assert redis_client.ttl(entry_key("CA1")) > HEARTBEAT
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

    keys = all_keys(redis_client)
    assert keys == {
        entry_key("CA1"),
        entry_key("CA2"),
        queue_key("support", "en"),
        queue_key("billing", "es"),
        waiting_queues_key(),
        lines_waiting_key(),
        deadlines_key(),
    }
    assert all(k.startswith(KEY_PREFIX) for k in keys)
    # One hash slot for all of them, so that every script runs on a Redis Cluster.
    assert len({key_slot(k.encode()) for k in keys}) == 1
    for sid in ("CA1", "CA2"):
        assert redis_client.ttl(entry_key(sid)) > 0
    # The shared lines, the index and the deadlines outlive any one call.
    for key in (
        queue_key("support", "en"),
        waiting_queues_key(),
        lines_waiting_key(),
        deadlines_key(),
    ):
        assert redis_client.ttl(key) == -1, key
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
    if id(client) in TOPOLOGY_URLS:
        return connect(TOPOLOGY_URLS[id(client)])
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


# --- arrival times carried by the caller ----------------------------------------------------------


def test_callers_rejoining_after_redis_lost_its_data_get_their_order_and_waited_time_back(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    arrivals: dict[str, int] = {}
    for sid in ("CA1", "CA2", "CA3"):
        arrivals[sid] = ms(line.join(sid, "support", "en", 50).enqueued_at)
        clock.advance(10)
    redis_client.flushdb()  # Redis restarted without persistence
    clock.advance(30)

    # Their next hold rounds come in any order, each with the arrival its webhook URL carries.
    for sid in ("CA3", "CA1", "CA2"):
        line.join(sid, "support", "en", 50, enqueued_ms=arrivals[sid])

    assert positions(line, "CA1", "CA2", "CA3") == [1, 2, 3]
    first = line.place("CA1")
    assert first is not None and first.enqueued_at == START
    assert clock.now() - first.enqueued_at == timedelta(seconds=60)


def test_an_arrival_time_is_ignored_for_a_caller_already_waiting(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.join("CA1", "support", "en", 50)
    clock.advance(10)
    line.join("CA2", "support", "en", 50)

    again = line.join("CA2", "support", "en", 50, enqueued_ms=ms(START) - 1000)

    assert (again.position, again.enqueued_at) == (2, START + timedelta(seconds=10))


def test_an_arrival_time_in_the_future_counts_as_now(line: CallQueue, clock: FrozenClock) -> None:
    place = line.join("CA1", "support", "en", 50, enqueued_ms=ms(START) + 3_600_000)

    assert place.enqueued_at == START


@pytest.mark.parametrize("enqueued_ms", [-1, 10**13])
def test_an_arrival_time_the_score_cannot_hold_is_rejected(
    redis_client: redis.Redis, enqueued_ms: int
) -> None:
    line = CallQueue(redis_client, FrozenClock(datetime(2300, 1, 1, tzinfo=UTC)))

    with pytest.raises(ValueError):
        line.join("CA1", "support", "en", 50, enqueued_ms=enqueued_ms)


# --- deadlines, sweep, audit ----------------------------------------------------------------------


def test_sweep_removes_the_oldest_expired_calls_first_and_says_where_they_were(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CAOLD", "CAMID", "CAALIVE", "CANEW"])
    outlive(line, clock, ["CAALIVE"])

    first = line.sweep(2)
    rest = line.sweep(2)

    assert first == [
        Swept("CAOLD", Place("support", "en", 50, 1, 4, START), None, None),
        Swept("CAMID", Place("support", "en", 50, 1, 3, START + timedelta(seconds=1)), None, None),
    ]
    assert [s.call_sid for s in rest] == ["CANEW"]
    assert line.sweep(2) == []
    assert positions(line, "CAALIVE") == [1]
    assert redis_client.zcard(deadlines_key()) == 1


def test_every_request_sweeps_a_few_expired_calls_first(
    line: CallQueue, clock: FrozenClock
) -> None:
    ghosts = [f"CAGHOST{i:02d}" for i in range(REQUEST_SWEEP_LIMIT + 4)]
    join_in_order(line, clock, [*ghosts, "CAALIVE"])
    outlive(line, clock, ["CAALIVE"])

    # Bounded: one request prunes at most REQUEST_SWEEP_LIMIT ghosts, the next one the rest.
    assert line.size("support", "en") == 5
    assert line.size("support", "en") == 1
    assert positions(line, "CAALIVE") == [1]


def test_a_place_kept_for_a_callback_expires_when_its_keep_time_is_over(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CAKEPT", "CA2"])
    line.request_callback("CAKEPT", "+4930123456", keep_seconds=600)
    line.hang_up("CAKEPT")
    for _ in range(5):
        clock.advance(100)
        assert line.heartbeat("CA2")

    assert positions(line, "CAKEPT", "CA2") == [1, 2]
    clock.advance(101)
    [swept] = line.sweep(10)

    assert (swept.call_sid, swept.callback_number) == ("CAKEPT", "+4930123456")
    assert positions(line, "CAKEPT", "CA2") == [None, 1]


def test_audit_removes_left_over_members_from_every_line_in_bounded_steps(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    # Over 128 members, so that real Redis scans the zset in chunks rather than all at once.
    sids = [f"CA{i:03d}" for i in range(300)]
    line.write_waiting("support", "en", 50, [(sid, ms(START) + i) for i, sid in enumerate(sids)])
    line.join("CAEN", "billing", "en", 50)
    line.join("CAES", "billing", "es", 50)
    support = queue_key("support", "en")
    redis_client.delete(entry_key("CA003"))  # no entry
    redis_client.zadd(support, {"CAEN": 1})  # its entry names another line
    redis_client.zadd(queue_key("billing", "es"), {"CANOENTRY": 5})
    redis_client.hset(entry_key("CA007"), "agent", "AGMAX")  # assigned, member left behind

    cursor, steps = "0", 0
    while True:
        cursor = line.audit(cursor, count=20)
        steps += 1
        if cursor == "0" or steps > 1000:
            break

    assert cursor == "0" and steps > 5  # several bounded steps, then the pass is complete
    members = {m.decode() for m in redis_client.zrange(support, 0, -1)}
    assert members == set(sids) - {"CA003", "CA007"}
    assert redis_client.zrange(queue_key("billing", "es"), 0, -1) == [b"CAES"]
    assert positions(line, "CAEN", "CAES", "CA299") == [1, 1, 298]


def test_audit_of_nothing_is_done_at_once(line: CallQueue) -> None:
    assert line.audit("0", count=10) == "0"


def test_bulk_written_callers_are_exactly_what_joins_write(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    callers = [(f"CA{i}", ms(START) - 1000 * (10 - i)) for i in range(10)]

    for sid, arrival in callers:
        line.join(sid, "support", "en", 70, enqueued_ms=arrival)
    joined = snapshot(redis_client)
    redis_client.flushdb()
    line.write_waiting("support", "en", 70, callers)

    assert snapshot(redis_client) == joined
    assert positions(line, "CA0", "CA9") == [1, 10]


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key with its value and its TTL to the minute."""
    found: dict[str, Any] = {}
    for key in sorted(all_keys(client)):
        kind = client.type(key).decode()
        value: Any
        if kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = client.smembers(key)
        else:
            value = client.get(key)
        found[key] = (kind, value, round(client.ttl(key) / 60))
    return found


# --- hold rounds ----------------------------------------------------------------------------------


def test_a_hold_round_heartbeats_and_reports_place_and_load(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    line.record_talk("support", "en", 240)
    line.record_answered("support", "en", 30)
    line.record_connect("support", "en", 12)
    line.agent_available("AGOUT", [("support", "en")])
    line.agent_offline("AGOUT")
    clock.advance(60)

    held = line.hold_round("CA2", "support", "en", 50, ms(START))

    assert held.rejoined is False
    assert held.place == Place("support", "en", 50, 2, 3, START + timedelta(seconds=1))
    assert (held.assignment, held.dispatched) == (None, ())
    assert (held.load.waiting, held.load.agents_available, held.load.agents_busy) == (3, 0, 0)
    assert (held.load.recent_talk_seconds, held.load.recent_wait_seconds) == ((240,), (30,))
    assert held.load.recent_connect_seconds == (12,)
    assert deadline_of(redis_client, "CA2") == clock.now() + timedelta(seconds=HEARTBEAT)


def test_a_hold_round_of_a_caller_redis_lost_rejoins_at_the_original_arrival(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    redis_client.flushdb()
    clock.advance(30)
    line.join("CA3", "support", "en", 50, enqueued_ms=ms(START) + 2000)

    held = line.hold_round("CA1", "support", "en", 50, ms(START))

    assert held.rejoined is True
    assert held.place is not None
    assert (held.place.position, held.place.size, held.place.enqueued_at) == (1, 2, START)
    assert line.hold_round("CA1", "support", "en", 50, ms(START)).rejoined is False


def test_a_hold_round_after_the_heartbeat_lapsed_rejoins_in_order(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CASLOW", "CA2"])
    outlive(line, clock, ["CA2"])

    held = line.hold_round("CASLOW", "support", "en", 50, ms(START))

    assert held.rejoined is True
    assert held.place is not None and (held.place.position, held.place.enqueued_at) == (1, START)


def test_a_hold_round_hands_waiting_callers_to_free_agents(
    line: CallQueue, clock: FrozenClock
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    line.agent_available("AGMAX", [("support", "en")])

    # CA2's round dispatches CA1 (ahead of it) to the free agent; CA2 moves up.
    held = line.hold_round("CA2", "support", "en", 50, ms(START))

    assert [(a.call_sid, a.agent) for a in held.dispatched] == [("CA1", "AGMAX")]
    assert held.place is not None and held.place.position == 1
    assert held.assignment is None
    assert (held.load.waiting, held.load.agents_available, held.load.agents_busy) == (2, 0, 1)
    assert (held.load.busy_seconds, held.load.connecting_seconds) == ((0.0,), (0.0,))

    clock.advance(7)
    line.agent_available("AGEVA", [("support", "en")])
    mine = line.hold_round("CA2", "support", "en", 50, ms(START))

    assert mine.place is None
    assert sorted(mine.load.connecting_seconds) == [0.0, 7.0]  # AGMAX rings CA1 for 7 s
    assert mine.assignment is not None and mine.assignment.agent == "AGEVA"
    assert mine.dispatched == (mine.assignment,)
    # The next round still reports the assignment (made before), dispatching nothing new.
    again = line.hold_round("CA2", "support", "en", 50, ms(START))
    assert (again.assignment, again.dispatched) == (mine.assignment, ())


def counted_client(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> tuple[redis.Redis, list[object]]:
    """A connection of its own to the same data, and the commands it sends (each is one round
    trip: no pipelines here). Its own, so that nobody else's commands are counted."""
    own = second_instance_client(client)
    sent: list[object] = []
    original = own.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return original(*args, **options)

    monkeypatch.setattr(own, "execute_command", counting)
    return own, sent


def test_a_hold_round_is_one_round_trip(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    join_in_order(line, clock, ["CA1", "CA2", "CA3"])
    line.agent_available("AGMAX", [("support", "en")])
    line.agent_available("AGEVA", [("funds", "en")])
    client, sent = counted_client(redis_client, monkeypatch)
    counted = CallQueue(client, clock)
    counted.hold_round("CA2", "support", "en", 50, ms(START))  # loads the script
    sent.clear()

    held = counted.hold_round("CA3", "support", "en", 50, ms(START))

    assert sent == ["EVALSHA"]
    assert held.place is not None and held.place.position == 2
    # The agent of the line took its first caller; the agent of another line is not counted.
    assert (held.load.agents_available, held.load.agents_busy) == (0, 1)


# --- callbacks ------------------------------------------------------------------------------------


def test_a_callback_request_stores_our_number_and_the_reference(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CA2"])

    kept = line.request_callback(
        "CA1",
        "+4930123456",
        our_number="+18005550199",
        reference="T-1234",
        code="0472",
        keep_seconds=3600,
    )
    line.request_callback("CA2", "+4930999999")

    assert kept is not None and kept.position == 1
    assert deadline_of(redis_client, "CA1") == clock.now() + timedelta(seconds=3600)
    line.agent_available("AGMAX", [("support", "en")])
    got = line.claim_next("AGMAX")
    assert got is not None
    assert (got.callback_number, got.our_number, got.reference, got.callback_code) == (
        "+4930123456",
        "+18005550199",
        "T-1234",
        "0472",
    )
    assert line.assignment("CA1") == got
    line.finish_call("AGMAX", "CA1")
    other = line.claim_next("AGMAX")
    assert other is not None
    assert (other.our_number, other.reference, other.callback_code) == (None, None, None)


def test_a_kept_callback_is_restored_at_its_original_place_after_redis_lost_its_data(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    join_in_order(line, clock, ["CA1", "CAKEPT", "CA3"])
    redis_client.flushdb()
    clock.advance(60)
    keep_until = clock.now() + timedelta(hours=2)

    restored = line.restore_callback(
        "CAKEPT",
        "support",
        "en",
        50,
        ms(START) + 1000,
        "+4930123456",
        our_number="+18005550199",
        reference="T-1",
        keep_until_ms=ms(keep_until),
        code="0472",
    )
    line.join("CA3", "support", "en", 50, enqueued_ms=ms(START) + 2000)
    line.join("CA1", "support", "en", 50, enqueued_ms=ms(START))

    assert restored is True
    assert positions(line, "CA1", "CAKEPT", "CA3") == [1, 2, 3]
    assert deadline_of(redis_client, "CAKEPT") == keep_until
    assert line.hang_up("CAKEPT").kept_for_callback is True
    # A second rebuild (another instance) changes nothing.
    assert not line.restore_callback(
        "CAKEPT",
        "support",
        "en",
        90,
        ms(START),
        "+49",
        our_number=None,
        reference=None,
        keep_until_ms=ms(keep_until) + 1,
    )
    assert positions(line, "CAKEPT") == [2]
    line.agent_available("AGMAX", [("support", "en")])
    line.claim_next("AGMAX")
    line.finish_call("AGMAX", "CA1")
    callback = line.claim_next("AGMAX")
    assert callback is not None
    assert (callback.call_sid, callback.callback_number, callback.our_number) == (
        "CAKEPT",
        "+4930123456",
        "+18005550199",
    )
    assert (callback.reference, callback.enqueued_at) == ("T-1", START + timedelta(seconds=1))
    assert callback.callback_code == "0472"


def test_a_callback_whose_keep_time_passed_is_not_restored(
    line: CallQueue, clock: FrozenClock
) -> None:
    restored = line.restore_callback(
        "CAOLD",
        "support",
        "en",
        50,
        ms(START) - 10_000,
        "+4930123456",
        our_number=None,
        reference=None,
        keep_until_ms=ms(START) - 1,
    )

    assert restored is False
    assert line.size("support", "en") == 0


# --- the epoch ------------------------------------------------------------------------------------


def test_the_epoch_is_claimed_once_per_redis_data_set(
    line: CallQueue, redis_client: redis.Redis, clock: FrozenClock
) -> None:
    other = CallQueue(second_instance_client(redis_client), clock)

    assert line.claim_epoch() is True
    assert other.claim_epoch() is False
    assert other.release_epoch() is False  # not its claim
    assert redis_client.ttl(epoch_key()) == -1  # marks the data set, not a call
    redis_client.flushdb()
    assert other.claim_epoch() is True
    assert line.claim_epoch() is False
    # A failed rebuild gives the epoch back for the next try.
    assert other.release_epoch() is True
    assert line.claim_epoch() is True


# --- cost: no request-path script walks a line ----------------------------------------------------


@pytest.fixture
def command_counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountedServer]:
    """A fakeredis server of its own that counts the commands its scripts issue (redis.call), by
    name, and the items their replies carry ("reply items"): a walk would show as a reply that
    grows with the line."""
    counted = CountedServer(fakeredis.FakeServer(), Counter())
    original = ScriptingCommandsMixin._lua_redis_call

    def counting(self: Any, lua_runtime: Any, expected_globals: Any, op: bytes, *args: Any) -> Any:
        result = original(self, lua_runtime, expected_globals, op, *args)
        if self._server is counted.server:  # not scripts other threads run elsewhere
            counted.counts[op.decode().upper()] += 1
            if type(result).__name__ == "_LuaTable":
                counted.counts["reply items"] += len(result)
        return result

    monkeypatch.setattr(ScriptingCommandsMixin, "_lua_redis_call", counting)
    yield counted


@dataclass
class CountedServer:
    server: fakeredis.FakeServer
    counts: Counter[str]


def script_costs(size: int, counted: CountedServer) -> dict[str, Counter[str]]:
    """The commands each request-path operation's script issues with `size` callers waiting."""
    clock = FrozenClock(START)
    counted.server = fakeredis.FakeServer()
    counts = counted.counts
    # Its own fakeredis whatever TEST_REDIS_URL says: the count is a property of the scripts, and
    # the shared server's INFO commandstats would count other people's commands too.
    line = CallQueue(fakeredis.FakeRedis(server=counted.server), clock)
    callers = [(f"CA{i:06d}", ms(START) - 10 * size + i) for i in range(size)]
    line.write_waiting("support", "en", 50, callers)
    line.join("CAGHOST", "support", "en", 50)
    clock.advance(HEARTBEAT + 1)
    line.write_waiting("support", "en", 50, callers)  # everybody live again but the ghost
    middle = f"CA{size // 2:06d}"

    def log_in() -> None:
        line.agent_available("AGMAX", [("support", "en")])

    def log_out() -> None:
        line.agent_offline("AGMAX")

    operations: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("join", log_out, lambda: line.join("CANEW", "support", "en", 50)),
        ("place", log_out, lambda: line.place(middle)),
        ("size", log_out, lambda: line.size("support", "en")),
        ("heartbeat", log_out, lambda: line.heartbeat(middle)),
        ("line_load", log_out, lambda: line.line_load("support", "en")),
        ("hold_round", log_out, lambda: line.hold_round("CANEW", "support", "en", 50, 0)),
        ("request_callback", log_out, lambda: line.request_callback(middle, "+4930123456")),
        ("hang_up", log_out, lambda: line.hang_up(f"CA{size // 3:06d}")),
        ("claim", log_in, lambda: line.claim_next("AGMAX")),
        ("return_to_queue", log_out, lambda: line.return_to_queue("CA000000")),
        ("dispatch", log_in, line.dispatch),
        (
            "hold_round dispatching",
            lambda: line.agent_available("AGEVA", [("support", "en")]),
            lambda: line.hold_round(middle, "support", "en", 50, 0),
        ),
    ]
    costs: dict[str, Counter[str]] = {}
    for name, setup, operation in operations:
        setup()
        counts.clear()
        operation()
        costs[name] = Counter(counts)
    return costs


def test_no_request_path_script_walks_a_line(command_counter: CountedServer) -> None:
    small = script_costs(50, command_counter)
    large = script_costs(5000, command_counter)

    for name in small:
        assert sum(small[name].values()) > 0, name
        assert large[name] == small[name], name
    # The claims did read the line (its head), and there were callers to claim.
    assert small["claim"]["ZRANGE"] >= 1
    assert small["hold_round dispatching"]["ZRANGE"] >= 2


def test_a_hold_round_counts_the_callers_an_agent_would_take_first_in_other_lines(
    line: CallQueue, clock: FrozenClock
) -> None:
    # Our caller: priority 30, arrived at START + 10 s. In another line: two callers of the same
    # priority who came earlier, one who came later, and one urgent caller who came later still.
    clock.advance(60)  # an arrival is never later than now
    for sid, queue, priority, at in [
        ("CAearly1", "security", 30, 0),
        ("CAearly2", "security", 30, 5),
        ("CAlater", "security", 30, 20),
        ("CAurgent", "security", 100, 30),
        ("CAother", "tech", 10, 0),
        ("CAours", "support", 30, 10),
    ]:
        line.join(sid, queue, "en", priority, enqueued_ms=ms(START) + at * 1000)
    others = [("security", "en"), ("tech", "en"), ("account", "en")]

    held = line.hold_round("CAours", "support", "en", 30, ms(START) + 10_000, sharing=others)

    assert held.waiting_before == {("security", "en"): 3, ("tech", "en"): 0, ("account", "en"): 0}
    assert line.hold_round("CAours", "support", "en", 30, 0).waiting_before == {}


def test_an_ended_call_is_remembered_while_any_url_issued_to_it_could_still_be_obeyed(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    # A sealed URL is obeyed for SEAL_MAX_AGE (and the clock skew) after it was issued, so a
    # replayed hold round can come that long after the last one: the marker must outlive that.
    join_in_order(line, clock, ["CA1"])
    line.hang_up("CA1", leg="CA1")

    assert redis_client.exists(ended_key("CA1"))
    assert SEAL_MAX_AGE + CLOCK_SKEW < redis_client.ttl(ended_key("CA1")) <= REMEMBER_SECONDS
    replayed = line.hold_round("CA1", "support", "en", 50, ms(START), leg="CA1")
    assert replayed.ended and positions(line, "CA1") == [None]
