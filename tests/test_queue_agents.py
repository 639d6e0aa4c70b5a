"""Agents taking callers from the shared lines: claims, dispatch, callbacks, hang-ups, history.

Same fixtures as tests/test_queue.py: fakeredis, or the real Redis when TEST_REDIS_URL is set.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis

from ivr.clock import FrozenClock
from ivr.queue import (
    HISTORY_LENGTH,
    KEY_PREFIX,
    Assignment,
    CallQueue,
    agent_key,
    available_agents_key,
    connect,
    connection_key,
    deadlines_key,
    entry_key,
    line_agents_key,
    lines_waiting_key,
    pin_checks_key,
    queue_key,
    stats_key,
    waiting_queues_key,
)
from ivr.queue.base import ms_of
from tests.test_queue import counted_client, outlive, second_instance_client
from tests.topologies import SentinelSetup, all_keys
from tests.topologies import _plain as private_redis

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FUNDS_EN = ("funds", "en-US")
FUNDS_DE = ("funds", "de-DE")
HEARTBEAT = 120


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def redis_client(every_redis: redis.Redis) -> redis.Redis:
    """Every test here runs against one Redis, a real Redis Cluster and a Sentinel setup."""
    return every_redis


@pytest.fixture
def line(redis_client: redis.Redis, clock: FrozenClock) -> CallQueue:
    return CallQueue(redis_client, clock, heartbeat_seconds=HEARTBEAT)


def wait_in(
    line: CallQueue,
    clock: FrozenClock,
    call_sids: list[str],
    where: tuple[str, str] = FUNDS_EN,
    priority: int = 50,
) -> None:
    for sid in call_sids:
        line.join(sid, where[0], where[1], priority)
        clock.advance(1)


def positions(line: CallQueue, *call_sids: str) -> list[int | None]:
    places = [line.place(sid) for sid in call_sids]
    return [p.position if p else None for p in places]


def claimed(assignment: Assignment | None) -> str | None:
    return assignment.call_sid if assignment else None


def text_keys(client: redis.Redis) -> set[str]:
    return all_keys(client)


# --- claiming --------------------------------------------------------------------------------------


def test_agent_gets_the_highest_priority_caller_across_its_lines(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.join("CAEN-LOW", *FUNDS_EN, 10)
    clock.advance(1)
    line.join("CAEN-MID", *FUNDS_EN, 50)
    clock.advance(1)
    line.join("CADE-HIGH", *FUNDS_DE, 90)
    line.agent_available("AGMAX", [FUNDS_EN, FUNDS_DE])

    assert claimed(line.claim_next("AGMAX")) == "CADE-HIGH"
    line.finish_call("AGMAX", "CADE-HIGH")
    assert claimed(line.claim_next("AGMAX")) == "CAEN-MID"
    line.finish_call("AGMAX", "CAEN-MID")
    assert claimed(line.claim_next("AGMAX")) == "CAEN-LOW"


def test_among_equal_priority_the_longest_waiting_caller_across_lines_goes_first(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.join("CADE-FIRST", *FUNDS_DE, 50)
    clock.advance(0.001)
    line.join("CAEN-SECOND", *FUNDS_EN, 50)
    clock.advance(0.001)
    line.join("CADE-THIRD", *FUNDS_DE, 50)
    line.agent_available("AGMAX", [FUNDS_EN, FUNDS_DE])
    line.agent_available("AGEVA", [FUNDS_EN, FUNDS_DE])
    line.agent_available("AGTOM", [FUNDS_EN, FUNDS_DE])

    assert [claimed(line.claim_next(a)) for a in ("AGMAX", "AGEVA", "AGTOM")] == [
        "CADE-FIRST",
        "CAEN-SECOND",
        "CADE-THIRD",
    ]


def test_a_caller_in_a_line_the_agent_does_not_serve_is_never_claimed(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.join("CASUPPORT", "support", "en-US", 100)
    line.join("CAFRENCH", "funds", "fr-FR", 100)
    line.agent_available("AGMAX", [FUNDS_EN, FUNDS_DE])

    assert line.claim_next("AGMAX") is None
    assert line.dispatch() == []
    assert line.agent_status("AGMAX") == "available"
    assert positions(line, "CASUPPORT", "CAFRENCH") == [1, 1]


def test_claiming_moves_everyone_behind_up_and_names_the_agent(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2", "CA3", "CA4"])
    line.agent_available("AGMAX", [FUNDS_EN])
    clock.advance(30)

    got = line.claim_next("AGMAX")

    assert got == Assignment(
        call_sid="CA1",
        agent="AGMAX",
        queue="funds",
        language="en-US",
        priority=50,
        enqueued_at=START,
        assigned_at=START + timedelta(seconds=34),
        callback_number=None,
    )
    assert positions(line, "CA1", "CA2", "CA3", "CA4") == [None, 1, 2, 3]
    assert line.size(*FUNDS_EN) == 3
    assert line.assignment("CA1") == got
    assert line.assignment("CA2") is None
    assert line.agent_status("AGMAX") == "busy"
    assert line.agent_call("AGMAX") == "CA1"
    # Busy: neither a second claim nor a dispatch gives it another caller.
    assert line.claim_next("AGMAX") is None
    assert line.dispatch() == []
    assert positions(line, "CA2") == [1]


def test_an_agent_that_is_not_logged_in_claims_nobody(line: CallQueue, clock: FrozenClock) -> None:
    wait_in(line, clock, ["CA1"])

    assert line.agent_status("AGNEVER") == "offline"
    assert line.claim_next("AGNEVER") is None
    line.agent_available("AGMAX", [FUNDS_EN])
    assert line.agent_offline("AGMAX") == "offline"
    assert line.claim_next("AGMAX") is None
    assert positions(line, "CA1") == [1]


def test_ghosts_at_the_head_are_skipped_when_claiming(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CAGHOST", "CANOENTRY", "CAALIVE"])
    outlive(line, clock, ["CANOENTRY", "CAALIVE"], HEARTBEAT)  # CAGHOST's heartbeat lapsed
    redis_client.delete(entry_key("CANOENTRY"))  # an entry lost some other way
    line.agent_available("AGMAX", [FUNDS_EN])

    assert claimed(line.claim_next("AGMAX")) == "CAALIVE"
    assert redis_client.zcard(queue_key(*FUNDS_EN)) == 0
    assert redis_client.zcard(deadlines_key()) == 1  # only CAALIVE's, now assigned


def test_a_claim_behind_many_ghosts_is_bounded_and_the_next_one_gets_through(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, [f"CAGHOST{i:02d}" for i in range(40)])
    wait_in(line, clock, ["CAALIVE"])
    outlive(line, clock, ["CAALIVE"], HEARTBEAT)
    line.agent_available("AGMAX", [FUNDS_EN])

    # One claim drops at most 32 heads (a claim never walks the line) ...
    assert line.claim_next("AGMAX") is None
    # ... so the caller behind them is reached by the next one (or after the background sweep).
    assert claimed(line.claim_next("AGMAX")) == "CAALIVE"


def test_an_assigned_caller_has_no_place_and_a_late_join_keeps_the_assignment(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")

    assert line.place("CA1") is None
    # The hold webhook raced the claim and queues the caller again: it stays with its agent.
    again = line.join("CA1", *FUNDS_EN, 50)
    assert (again.position, again.enqueued_at) == (0, START)
    assert claimed(line.assignment("CA1")) == "CA1"
    assert line.place("CA1") is None
    assert positions(line, "CA2") == [1]
    assert line.size(*FUNDS_EN) == 1
    # The hold loop keeps heartbeating while the agent is rung.
    assert line.heartbeat("CA1") is True


def test_an_assigned_call_put_back_in_its_line_by_hand_is_skipped_and_audited_away(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    redis_client.zadd(queue_key(*FUNDS_EN), {"CA1": 0})

    # Positions are ZRANK: the stray member counts until the audit removes it.
    assert positions(line, "CA2") == [2]
    assert line.audit("0", count=10) == "0"
    assert positions(line, "CA2") == [1]
    redis_client.zadd(queue_key(*FUNDS_EN), {"CA1": 0})
    line.agent_available("AGEVA", [FUNDS_EN])
    assert claimed(line.claim_next("AGEVA")) == "CA2"
    assert line.agent_call("AGMAX") == "CA1"


# --- dispatch ---------------------------------------------------------------------------------------


def test_dispatch_pairs_the_longest_idle_agent_with_the_best_caller(
    line: CallQueue, clock: FrozenClock
) -> None:
    for agent in ("AGOLD", "AGMID", "AGNEW"):
        line.agent_available(agent, [FUNDS_EN])
        clock.advance(10)
    wait_in(line, clock, ["CA1", "CA2", "CA3", "CA4", "CA5"])

    pairs = [(a.agent, a.call_sid) for a in line.dispatch()]

    assert pairs == [("AGOLD", "CA1"), ("AGMID", "CA2"), ("AGNEW", "CA3")]
    assert positions(line, "CA4", "CA5") == [1, 2]
    assert line.dispatch() == []


def test_entering_hands_the_caller_to_a_free_agent_in_the_same_script(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1"])
    place, dispatched = line.enter("CA2", *FUNDS_EN, 50)
    assert (place.position, dispatched) == (2, ())  # nobody free: both wait

    line.agent_available("AG1", [FUNDS_EN])
    line.dispatch()  # takes CA1
    line.finish_call("AG1", "CA1")
    clock.advance(1)
    line.agent_available("AG2", [FUNDS_EN])
    place, dispatched = line.enter("CA3", *FUNDS_EN, 50)
    # AG1 (idle longest) takes CA2, who waited longer; AG2 takes the caller entering now.
    assert [(a.agent, a.call_sid) for a in dispatched] == [("AG1", "CA2"), ("AG2", "CA3")]
    assert place.queue == "funds"


def test_dispatch_is_one_round_trip(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for agent in ("AG1", "AG2", "AG3"):
        line.agent_available(agent, [FUNDS_EN])
        clock.advance(1)
    client, sent = counted_client(redis_client, monkeypatch)
    counted = CallQueue(client, clock)
    assert counted.dispatch() == []  # nobody waits yet; loads the script
    wait_in(line, clock, ["CA1", "CA2"])
    sent.clear()

    pairs = [(a.agent, a.call_sid) for a in counted.dispatch()]

    assert sent == ["EVALSHA"]
    assert pairs == [("AG1", "CA1"), ("AG2", "CA2")]


def test_logging_in_again_keeps_the_agents_turn(line: CallQueue, clock: FrozenClock) -> None:
    line.agent_available("AGOLD", [FUNDS_EN])
    clock.advance(10)
    line.agent_available("AGNEW", [FUNDS_EN])
    clock.advance(10)
    # A second click on "ready" (with another line added) must not send it to the back.
    assert line.agent_available("AGOLD", [FUNDS_EN, FUNDS_DE]) == "available"
    wait_in(line, clock, ["CA1"])

    assert [(a.agent, a.call_sid) for a in line.dispatch()] == [("AGOLD", "CA1")]


def test_an_agent_freed_by_a_call_goes_behind_agents_idle_for_longer(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.agent_available("AGMAX", [FUNDS_EN])
    wait_in(line, clock, ["CA1"])
    line.dispatch()
    line.agent_available("AGEVA", [FUNDS_EN])
    clock.advance(5)
    line.connected("CA1")
    line.finish_call("AGMAX", "CA1")
    wait_in(line, clock, ["CA2"])

    assert [(a.agent, a.call_sid) for a in line.dispatch()] == [("AGEVA", "CA2")]


def test_a_forgotten_login_expires_and_is_not_dispatched(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    line.agent_available("AGGONE", [FUNDS_EN])
    wait_in(line, clock, ["CA1"])
    redis_client.delete(agent_key("AGGONE"))  # as its 24 h TTL lapsing

    assert line.dispatch() == []
    assert line.agent_status("AGGONE") == "offline"
    assert redis_client.zcard(available_agents_key()) == 0
    assert positions(line, "CA1") == [1]


def test_two_instances_dispatching_at_once_never_share_a_caller_or_an_agent(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    instances = [
        CallQueue(redis_client, clock),
        CallQueue(second_instance_client(redis_client), clock),
    ]
    sids = [f"CA{i:03d}" for i in range(100)]
    for i, sid in enumerate(sids):
        instances[i % 2].join(sid, *FUNDS_EN, 50)
        clock.advance(0.001)
    results: list[list[Assignment]] = [[], []]
    errors: list[BaseException] = []
    stop = threading.Event()

    def run(n: int) -> None:
        try:
            while not stop.is_set():
                results[n].extend(instances[n].dispatch())
        except BaseException as exc:  # surface thread failures in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    agents = [f"AG{i}" for i in range(10)]
    for i, agent in enumerate(agents):
        instances[i % 2].agent_available(agent, [FUNDS_EN])
        time.sleep(0.005)
    deadline = time.monotonic() + 20
    while len(results[0]) + len(results[1]) < len(agents) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a wrong extra claim to show up
    stop.set()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assignments = results[0] + results[1]
    assert len(assignments) == min(len(agents), len(sids))
    assert len({a.call_sid for a in assignments}) == len(assignments)
    assert sorted(a.agent for a in assignments) == sorted(agents)
    # Each claim took the head of the line: the ten who waited longest, and nobody else.
    assert {a.call_sid for a in assignments} == set(sids[:10])
    for a in assignments:
        assert instances[0].agent_call(a.agent) == a.call_sid
        assert instances[1].assignment(a.call_sid) == a
    assert instances[0].size(*FUNDS_EN) == 90
    assert positions(instances[1], sids[10], sids[99]) == [1, 90]


def claim_at_once(instances: list[CallQueue], agent: str) -> list[Assignment | None]:
    """Both instances claim for the same agent at the same moment."""
    got: list[Assignment | None] = [None, None]
    start = threading.Barrier(2)

    def run(n: int) -> None:
        start.wait()
        got[n] = instances[n].claim_next(agent)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return got


def test_one_agent_claimed_from_two_instances_at_once_gets_one_caller(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    instances = [
        CallQueue(redis_client, clock),
        CallQueue(second_instance_client(redis_client), clock),
    ]
    wait_in(instances[0], clock, [f"CA{i:02d}" for i in range(40)])
    for round_ in range(20):
        agent = f"AG{round_}"
        instances[0].agent_available(agent, [FUNDS_EN])
        got = claim_at_once(instances, agent)
        assert len([a for a in got if a is not None]) == 1
        assert instances[1].agent_call(agent) == next(a.call_sid for a in got if a is not None)
    assert instances[1].size(*FUNDS_EN) == 20


# --- callbacks --------------------------------------------------------------------------------------


def test_a_caller_who_asks_for_a_callback_keeps_the_place_after_hanging_up(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CAA", "CAB", "CAC"])

    kept = line.request_callback("CAB", "+4930123456")
    assert kept is not None
    assert (kept.position, kept.size) == (2, 3)
    hung_up = line.hang_up("CAB")

    assert hung_up.kept_for_callback is True
    assert (hung_up.left, hung_up.freed_agent) == (None, None)
    # B still counts for the others and keeps its own place well past a heartbeat.
    assert positions(line, "CAA", "CAB", "CAC") == [1, 2, 3]
    assert line.size(*FUNDS_EN) == 3
    assert redis_client.ttl(entry_key("CAB")) > HEARTBEAT
    # A hold round that raced the request must not shrink the kept place back to a heartbeat.
    assert line.heartbeat("CAB") is True
    assert redis_client.ttl(entry_key("CAB")) > HEARTBEAT

    line.agent_available("AGMAX", [FUNDS_EN])
    assert claimed(line.claim_next("AGMAX")) == "CAA"
    line.connected("CAA")
    line.finish_call("AGMAX", "CAA")
    callback = line.claim_next("AGMAX")

    assert callback is not None
    assert (callback.call_sid, callback.callback_number) == ("CAB", "+4930123456")
    assert callback.enqueued_at == START + timedelta(seconds=1)
    assert redis_client.ttl(entry_key("CAB")) > HEARTBEAT
    assert positions(line, "CAC") == [1]


def test_callback_only_for_a_waiting_caller(line: CallQueue, clock: FrozenClock) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")

    assert line.request_callback("CANEVER", "+4930123456") is None
    assert line.request_callback("CA1", "+4930123456") is None
    with pytest.raises(ValueError):
        line.request_callback("CA1", "")


def test_leave_removes_a_place_kept_for_a_callback(line: CallQueue, clock: FrozenClock) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.request_callback("CA1", "+4930123456")

    left = line.leave("CA1")

    assert left is not None and left.position == 1
    assert positions(line, "CA1", "CA2") == [None, 1]


# --- hang-ups, returns, finishing -------------------------------------------------------------------


def test_hang_up_of_a_waiting_caller_leaves_the_line(line: CallQueue, clock: FrozenClock) -> None:
    wait_in(line, clock, ["CA1", "CA2", "CA3"])

    hung_up = line.hang_up("CA2")

    assert hung_up.left is not None
    assert (hung_up.left.position, hung_up.left.size) == (2, 3)
    assert (hung_up.kept_for_callback, hung_up.freed_agent) == (False, None)
    assert positions(line, "CA1", "CA2", "CA3") == [1, None, 2]
    assert line.hang_up("CA2").left is None
    assert line.hang_up("CANEVER").left is None


def test_hang_up_before_being_connected_frees_the_agent_for_the_next_caller(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    got = line.claim_next("AGMAX")
    clock.advance(5)

    hung_up = line.hang_up("CA1")

    assert (hung_up.left, hung_up.kept_for_callback, hung_up.freed_agent) == (None, False, "AGMAX")
    # What the assignment was: its line, arrival and when the agent was assigned.
    assert got is not None and hung_up.assigned == got
    assert (got.queue, got.language, got.priority, got.callback_number) == (*FUNDS_EN, 50, None)
    assert (got.enqueued_at, got.assigned_at) == (START, START + timedelta(seconds=2))
    assert line.assignment("CA1") is None
    assert line.agent_status("AGMAX") == "available"
    assert claimed(line.claim_next("AGMAX")) == "CA2"
    # A duplicate status callback changes nothing.
    assert (line.hang_up("CA1").freed_agent, line.hang_up("CA1").assigned) == (None, None)
    assert line.agent_call("AGMAX") == "CA2"


def test_the_end_of_a_callback_being_placed_says_it_was_a_callback(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1"])
    line.request_callback("CA1", "+4930123456")
    line.agent_available("AGMAX", [FUNDS_EN])
    assert claimed(line.claim_next("AGMAX")) == "CA1"  # the callback is being placed

    hung_up = line.hang_up("CA1", leg="CACALLBACK")  # the call we placed was not answered

    assert hung_up.freed_agent == "AGMAX"
    assert hung_up.assigned is not None and hung_up.assigned.callback_number == "+4930123456"


def test_leave_before_being_connected_frees_the_agent_too(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")

    assert line.leave("CA1") is None

    assert line.agent_status("AGMAX") == "available"
    assert line.assignment("CA1") is None


def test_hang_up_after_logout_sends_the_freed_agent_offline(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    assert line.agent_offline("AGMAX") == "busy"

    assert line.hang_up("CA1").freed_agent == "AGMAX"

    assert line.agent_status("AGMAX") == "offline"
    assert line.dispatch() == []


def test_an_agent_whose_caller_vanished_unconnected_is_released(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    # The caller hung up, the status callback was lost and the heartbeat lapsed.
    outlive(line, clock, ["CA2"], HEARTBEAT)

    assert line.assignment("CA1") is None
    assert line.agent_status("AGMAX") == "available"
    assert line.agent_call("AGMAX") is None
    assert redis_client.exists(entry_key("CA1")) == 0
    assert [a.call_sid for a in line.dispatch()] == ["CA2"]


def test_an_agent_whose_caller_lost_its_entry_is_released(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    redis_client.delete(entry_key("CA1"))

    assert line.agent_status("AGMAX") == "available"
    assert [a.call_sid for a in line.dispatch()] == ["CA2"]


def test_the_sweep_releases_the_agent_of_a_caller_who_vanished_unconnected(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.agent_offline("AGMAX")
    outlive(line, clock, ["CA2"], HEARTBEAT)

    [swept] = line.sweep(10)

    assert (swept.call_sid, swept.left, swept.freed_agent) == ("CA1", None, "AGMAX")
    assert line.agent_status("AGMAX") == "offline"  # it had logged out meanwhile
    assert positions(line, "CA2") == [1]


def test_a_caller_hanging_up_during_the_conversation_releases_the_agent(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGMAX", [FUNDS_EN])
    got = line.claim_next("AGMAX")

    assert line.connected("CA1") == got
    assert line.connected("CA1") is None
    assert line.assignment("CA1") is None
    assert line.place("CA1") is None
    assert line.agent_call("AGMAX") == "CA1"
    clock.advance(300)
    # No database needed: the connection key says which agent took the call.
    hung_up = line.hang_up("CA1")

    assert (hung_up.released_agent, hung_up.freed_agent, hung_up.left) == ("AGMAX", None, None)
    assert line.agent_status("AGMAX") == "available"
    assert line.agent_call("AGMAX") is None
    assert redis_client.exists(connection_key("CA1")) == 0
    # The agent's own end of the call arrives afterwards: nothing more changes.
    clock.advance(5)
    line.agent_available("AGEVA", [FUNDS_EN])
    assert line.finish_call("AGMAX", "CA1") == "available"
    assert line.hang_up("CA1").released_agent is None
    wait_in(line, clock, ["CA2"])
    # Released when the caller hung up, so it has been idle longer than AGEVA.
    assert [(a.agent, a.call_sid) for a in line.dispatch()] == [("AGMAX", "CA2")]


def test_a_caller_hanging_up_during_the_conversation_sends_a_logged_out_agent_offline(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.connected("CA1")
    line.agent_offline("AGMAX")

    assert line.hang_up("CA1").released_agent == "AGMAX"
    assert line.agent_status("AGMAX") == "offline"
    assert line.finish_call("AGMAX", "CA1") == "offline"
    assert line.dispatch() == []


def test_a_hang_up_never_releases_an_agent_already_on_another_call(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.connected("CA1")
    line.finish_call("AGMAX", "CA1")
    line.claim_next("AGMAX")

    # A late status callback of the first call (its connection key was already dropped).
    assert line.hang_up("CA1").released_agent is None
    assert line.agent_call("AGMAX") == "CA2"


def test_return_to_queue_puts_the_caller_first_of_its_priority_and_the_agent_offline(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2", "CA3"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    wait_in(line, clock, ["CALATE"])
    line.join("CAVIP", *FUNDS_EN, 90)

    back = line.return_to_queue("CA1")

    assert back is not None
    assert (back.position, back.size, back.enqueued_at) == (2, 5, START)
    assert positions(line, "CAVIP", "CA1", "CA2", "CA3", "CALATE") == [1, 2, 3, 4, 5]
    assert line.assignment("CA1") is None
    assert line.agent_status("AGMAX") == "offline"
    assert line.claim_next("AGMAX") is None
    assert line.return_to_queue("CA1") is None
    assert line.return_to_queue("CANEVER") is None
    line.agent_available("AGEVA", [FUNDS_EN])
    assert [a.call_sid for a in line.dispatch()] == ["CAVIP"]
    line.agent_available("AGTOM", [FUNDS_EN])
    again = line.dispatch()
    assert [(a.call_sid, a.enqueued_at) for a in again] == [("CA1", START)]


def test_finish_call_is_idempotent_and_ignores_stale_webhooks(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.connected("CA1")

    assert line.finish_call("AGMAX", "CA1") == "available"
    assert line.finish_call("AGMAX", "CA1") == "available"
    assert claimed(line.claim_next("AGMAX")) == "CA2"
    # A late duplicate for the first call must not free it from the second.
    assert line.finish_call("AGMAX", "CA1") == "busy"
    assert line.agent_call("AGMAX") == "CA2"
    assert line.finish_call("AGEVA", "CA2") == "offline"
    assert line.agent_call("AGMAX") == "CA2"


def test_a_duplicate_finish_does_not_cost_the_agent_its_turn(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.connected("CA1")
    line.finish_call("AGMAX", "CA1")
    clock.advance(10)
    line.agent_available("AGEVA", [FUNDS_EN])
    clock.advance(10)
    line.finish_call("AGMAX", "CA1")
    wait_in(line, clock, ["CA2"])

    assert [a.agent for a in line.dispatch()] == ["AGMAX"]


def test_an_agent_that_logs_out_during_a_call_goes_offline_when_it_ends(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.connected("CA1")

    assert line.agent_offline("AGMAX") == "busy"
    assert line.agent_status("AGMAX") == "busy"
    assert line.finish_call("AGMAX", "CA1") == "offline"
    assert line.agent_status("AGMAX") == "offline"
    assert line.dispatch() == []
    assert positions(line, "CA2") == [1]


def test_ready_again_during_a_call_withdraws_the_logout_and_updates_the_lines(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1"])
    line.join("CADE", *FUNDS_DE, 50)
    line.agent_available("AGMAX", [FUNDS_EN])
    line.claim_next("AGMAX")
    line.agent_offline("AGMAX")

    assert line.agent_available("AGMAX", [FUNDS_DE]) == "busy"
    assert line.agent_call("AGMAX") == "CA1"
    assert line.finish_call("AGMAX", "CA1") == "available"
    assert claimed(line.claim_next("AGMAX")) == "CADE"


def test_agent_statuses_in_one_call(line: CallQueue, clock: FrozenClock) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGBUSY", [FUNDS_EN])
    line.claim_next("AGBUSY")
    line.agent_available("AGFREE", [FUNDS_DE])
    line.agent_available("AGOUT", [FUNDS_EN])
    line.agent_offline("AGOUT")

    assert line.agent_statuses(["AGBUSY", "AGFREE", "AGOUT", "AGNEVER"]) == {
        "AGBUSY": "busy",
        "AGFREE": "available",
        "AGOUT": "offline",
        "AGNEVER": "offline",
    }
    assert line.agent_statuses([]) == {}
    assert line.agent_call("AGFREE") is None


def test_agents_at_a_glance_read_the_hashes_and_settle_nothing(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGBUSY", [FUNDS_EN])
    line.claim_next("AGBUSY")
    line.agent_available("AGFREE", [FUNDS_DE])
    redis_client.delete(entry_key("CA1"))  # its caller vanished: only settling releases AGBUSY

    glance = line.agents_at_a_glance(["AGBUSY", "AGFREE", "AGNEVER"])

    assert glance == {"AGBUSY": "busy", "AGFREE": "available", "AGNEVER": "offline"}
    assert line.agent_statuses(["AGBUSY"]) == {"AGBUSY": "available"}
    assert line.agents_at_a_glance([]) == {}


def test_an_empty_agent_id_or_a_bad_line_is_rejected(line: CallQueue) -> None:
    with pytest.raises(ValueError):
        line.agent_available("", [FUNDS_EN])
    with pytest.raises(ValueError):
        line.claim_next("")
    with pytest.raises(ValueError):
        line.agent_available("AGMAX", [("fu:nds", "en-US")])
    assert line.agent_status("AGMAX") == "offline"


# --- history and load -------------------------------------------------------------------------------


def test_history_keeps_the_newest_durations(line: CallQueue, redis_client: redis.Redis) -> None:
    for seconds in range(60):
        line.record_answered(*FUNDS_EN, seconds)
        line.record_talk(*FUNDS_EN, 1000 + seconds)
        line.record_connect(*FUNDS_EN, 2000 + seconds)
    line.record_talk(*FUNDS_DE, 7)

    load = line.line_load(*FUNDS_EN)

    assert load.recent_wait_seconds == tuple(range(59, 59 - HISTORY_LENGTH, -1))
    assert load.recent_talk_seconds == tuple(range(1059, 1059 - HISTORY_LENGTH, -1))
    assert load.recent_connect_seconds == tuple(range(2059, 2059 - HISTORY_LENGTH, -1))
    assert line.line_load(*FUNDS_DE).recent_talk_seconds == (7,)
    assert line.line_load(*FUNDS_DE).recent_wait_seconds == ()
    assert line.line_load(*FUNDS_DE).recent_connect_seconds == ()
    for kind in ("wait", "talk", "connect"):
        assert 6 * 24 * 3600 < redis_client.ttl(stats_key(*FUNDS_EN, kind)) <= 7 * 24 * 3600
    with pytest.raises(ValueError):
        line.record_answered(*FUNDS_EN, -1)
    with pytest.raises(ValueError):
        line.record_connect(*FUNDS_EN, -1)


def test_line_load_counts_waiting_callers_and_the_agents_logged_in_to_the_line(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1", "CAGHOST", "CA3", "CA4"])
    line.join("CADE", *FUNDS_DE, 50)
    outlive(line, clock, ["CA1", "CA3", "CA4", "CADE"], HEARTBEAT)
    line.request_callback("CA4", "+4930123456")
    line.agent_available("AGBUSY", [FUNDS_EN])
    line.claim_next("AGBUSY")
    line.agent_available("AGFREE", [FUNDS_EN])
    line.agent_available("AGOUT", [FUNDS_EN])
    line.agent_offline("AGOUT")
    line.agent_available("AGELSEWHERE", [FUNDS_DE])

    load = line.line_load(*FUNDS_EN)

    # CA1 is with an agent, the ghost is swept; the callback caller still counts.
    assert load.waiting == 2
    assert (load.agents_available, load.agents_busy) == (1, 1)
    assert (load.recent_wait_seconds, load.recent_talk_seconds) == ((), ())


# --- a thousand agents ------------------------------------------------------------------------------

OTHER_LINES = [("tech", "en-US"), ("security", "en-US"), ("general", "fr-FR")]


def log_in_elsewhere(line: CallQueue, count: int) -> None:
    """`count` agents logged in, free, on lines nobody calls in these tests."""
    for i in range(count):
        line.agent_available(f"AGFAR{i:04d}", [OTHER_LINES[i % len(OTHER_LINES)]])


def redis_commands(server: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    """The data commands Redis ran for `action` (scripts' commands included), by name; the
    Sentinels' and replicas' own traffic (PING, INFO, PUBLISH, REPLCONF...) left out, and PEXPIRE,
    which an entry gets or not by how much real time passed (its PTTL against the app's clock)."""
    admin = {
        "ping",
        "info",
        "publish",
        "replconf",
        "config",
        "client",
        "hello",
        "subscribe",
        "role",
        "command",
        "select",
        "psync",
        "sync",
        "auth",
        "evalsha",
        "script",
        "eval",
        "pexpire",
    }
    server.config_resetstat()
    action()
    stats = server.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in admin
    }


def on_the_line(line: CallQueue, what: str) -> object:
    """What the request path does on the funds line while CA1-CA3 wait."""
    if what == "hold_round":
        return line.hold_round("CA3", *FUNDS_EN, 50, ms_of(START))
    if what == "enter":
        return line.enter("CA4", *FUNDS_EN, 50)
    return line.line_load(*FUNDS_EN)


@pytest.mark.parametrize("what", ["hold_round", "enter", "line_load"])
def test_agents_of_other_lines_cost_a_hold_round_nothing(
    redis_sentinel: SentinelSetup, clock: FrozenClock, what: str
) -> None:
    """The issue: with 1,000 agents idle on other lines a hold round cost 12.4 ms of Redis (38 us
    with nobody logged in). Counted in Redis commands, not timed: the same with 10 or 1,000."""
    primary = private_redis(redis_sentinel.primary_port())
    counts = []
    for agents in (10, 1000):
        redis_sentinel.flush()
        client = connect(redis_sentinel.url)
        line = CallQueue(client, clock, heartbeat_seconds=HEARTBEAT)
        log_in_elsewhere(line, agents)
        wait_in(line, clock, ["CA1", "CA2", "CA3"])
        counts.append(redis_commands(primary, lambda q=line: on_the_line(q, what)))
        client.close()
    assert counts[0] == counts[1]
    assert sum(counts[1].values()) < 60, counts[1]


def test_a_thousand_agents_busy_on_the_line_are_read_fifty_of_each_kind(
    redis_sentinel: SentinelSetup, clock: FrozenClock
) -> None:
    """A line's load reads at most 50 of its talking and 50 of its connecting agents, evenly spread
    by how long they have been at it; each stands for its share of the rest."""
    redis_sentinel.flush()
    client = connect(redis_sentinel.url)
    line = CallQueue(client, clock, heartbeat_seconds=3600)  # nobody's deadline passes
    sids = [f"CA{i:04d}" for i in range(1000)]
    line.write_waiting(*FUNDS_EN, 50, [(sid, ms_of(START)) for sid in sids])
    for i in range(1000):
        line.agent_available(f"AG{i:04d}", [FUNDS_EN])
    assert len(line.dispatch()) == 500  # a dispatch hands out at most 500; the next goes on
    assert len(line.dispatch()) == 500
    for i, sid in enumerate(sids[:600]):
        clock.set(START + timedelta(seconds=i))  # connected 0 to 599 s before the hold round
        line.connected(sid)
    clock.set(START + timedelta(seconds=600))
    wait_in(line, clock, ["CAWAIT"])
    primary = private_redis(redis_sentinel.primary_port())

    commands = redis_commands(primary, lambda: line.hold_round("CAWAIT", *FUNDS_EN, 50, 0))
    load = line.line_load(*FUNDS_EN)

    assert (load.waiting, load.agents_available, load.agents_busy) == (1, 0, 1000)
    assert len(load.busy_seconds) == 1000 and len(load.connecting_seconds) == 400
    talking = sorted(load.busy_seconds, reverse=True)[:600]
    # 50 of the 600 read, every 12th from the one who has talked longest: 601 s, 589 s, ...
    assert len(set(talking)) == 50 and talking[0] == pytest.approx(601, abs=0.01)
    assert statistics.mean(talking) == pytest.approx(statistics.mean(range(2, 602)), rel=0.02)
    assert load.busy_seconds.count(0.0) == 400
    assert commands.get("zrange", 0) <= 2 * 50 + 2 and commands.get("hmget", 0) <= 4, commands
    client.close()


def test_dispatch_hands_callers_to_the_longest_idle_agent_of_any_line_with_callers(
    line: CallQueue, clock: FrozenClock
) -> None:
    log_in_elsewhere(line, 30)
    line.agent_available("AGBOTH", [FUNDS_EN, FUNDS_DE])
    clock.advance(1)
    line.agent_available("AGDE", [FUNDS_DE])
    clock.advance(1)
    line.agent_available("AGEN", [FUNDS_EN])
    clock.advance(1)
    line.join("CADE", *FUNDS_DE, 50)
    clock.advance(1)
    wait_in(line, clock, ["CA1", "CA2", "CA3"])

    made = line.dispatch()

    # AGBOTH, idle longest, takes the earliest caller of its two lines; then AGDE has nobody
    # left in its line, and AGEN takes the next English caller.
    assert [(a.agent, a.call_sid) for a in made] == [("AGBOTH", "CADE"), ("AGEN", "CA1")]
    assert positions(line, "CA2", "CA3") == [1, 2]
    assert line.line_load(*FUNDS_DE).agents_available == 1


def test_an_agent_moving_lines_leaves_the_old_lines_agents(
    line: CallQueue, clock: FrozenClock
) -> None:
    line.agent_available("AGMAX", [FUNDS_EN])
    line.agent_available("AGMAX", [FUNDS_DE])
    wait_in(line, clock, ["CA1"])

    assert line.dispatch() == []
    assert line.line_load(*FUNDS_EN).agents_available == 0
    assert line.line_load(*FUNDS_DE).agents_available == 1
    line.agent_offline("AGMAX")
    assert line.line_load(*FUNDS_DE).agents_available == 0


def test_a_free_agent_whose_login_expired_is_dropped_when_dispatch_meets_it(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    line.agent_available("AGGONE", [FUNDS_EN])
    clock.advance(1)
    line.agent_available("AGMAX", [FUNDS_EN])
    redis_client.delete(agent_key("AGGONE"))  # its 24 h TTL ran out
    wait_in(line, clock, ["CA1"])

    [made] = line.dispatch()

    assert made.agent == "AGMAX"
    assert line.line_load(*FUNDS_EN).agents_available == 0
    assert redis_client.zscore(line_agents_key(*FUNDS_EN, "free"), "AGGONE") is None


def test_reading_agents_puts_them_back_in_their_lines_agents(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    """Agents logged in before the per-line agent sets existed (or whose sets were lost) are
    found again by the first settling read (the background's first round reads every agent)."""
    line.agent_available("AGMAX", [FUNDS_EN])
    clock.advance(1)
    line.agent_available("AGEVA", [FUNDS_EN])
    wait_in(line, clock, ["CA1"])
    assert [a.agent for a in line.dispatch()] == ["AGMAX"]
    line.connected("CA1")
    for state in ("free", "talking", "connecting"):
        redis_client.delete(line_agents_key(*FUNDS_EN, state))
    assert line.line_load(*FUNDS_EN).agents_busy == 0

    line.agent_statuses(["AGMAX", "AGEVA"])

    load = line.line_load(*FUNDS_EN)
    assert (load.agents_available, load.agents_busy) == (1, 1)
    wait_in(line, clock, ["CA2"])
    assert [a.agent for a in line.dispatch()] == ["AGEVA"]


# --- keys -------------------------------------------------------------------------------------------


def test_every_per_call_and_agent_key_expires(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    wait_in(line, clock, ["CA1", "CA2", "CA3", "CA4"])
    line.request_callback("CA3", "+4930123456")
    line.agent_available("AGTALK", [FUNDS_EN])
    line.agent_available("AGRING", [FUNDS_EN])
    line.agent_available("AGIDLE", [FUNDS_DE])
    line.agent_available("AGOUT", [FUNDS_EN])
    line.agent_offline("AGOUT")
    line.dispatch()
    line.connected("CA1")
    line.record_answered(*FUNDS_EN, 30)
    line.record_talk(*FUNDS_EN, 300)
    line.record_connect(*FUNDS_EN, 9)

    keys = text_keys(redis_client)
    shared = {queue_key(*FUNDS_EN), waiting_queues_key(), available_agents_key(), deadlines_key()}
    per_call = {entry_key(sid) for sid in ("CA2", "CA3", "CA4")} | {connection_key("CA1")}
    agents = {agent_key(a) for a in ("AGTALK", "AGRING", "AGIDLE", "AGOUT")}
    stats = {stats_key(*FUNDS_EN, kind) for kind in ("wait", "talk", "connect")}
    # Each line's agents by state (AGOUT, offline, is in none; sets left empty are gone).
    shared |= {lines_waiting_key(), line_agents_key(*FUNDS_DE, "free")}
    shared |= {line_agents_key(*FUNDS_EN, state) for state in ("talking", "connecting")}
    assert keys == shared | per_call | agents | stats
    assert all(k.startswith(KEY_PREFIX) for k in keys)
    for key in per_call | agents | stats:
        assert redis_client.ttl(key) > 0, key
    for key in shared:
        assert redis_client.ttl(key) == -1, key
    assert 23 * 3600 < redis_client.ttl(agent_key("AGOUT")) <= 24 * 3600
    assert 23 * 3600 < redis_client.ttl(connection_key("CA1")) <= 24 * 3600


# --- the PIN throttle ------------------------------------------------------------------------------

PIN_SCHEDULE = (0, 0, 60, 120)
"""Two free checks, then a minute, then two minutes from then on (the app's is in ivr.throttle)."""


def test_pin_checks_from_one_source_wait_longer_and_longer_others_not_at_all(
    line: CallQueue, clock: FrozenClock
) -> None:
    waits = [line.start_pin_check("phone:+15550000666", PIN_SCHEDULE, 86400) for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 60.0]  # the third is let through and starts the first wait
    assert line.start_pin_check("phone:+4930000000104", PIN_SCHEDULE, 86400) == 0.0
    clock.advance(59.5)
    assert line.start_pin_check("phone:+15550000666", PIN_SCHEDULE, 86400) == 0.5
    clock.advance(0.5)
    assert line.start_pin_check("phone:+15550000666", PIN_SCHEDULE, 86400) == 0.0
    assert line.start_pin_check("phone:+15550000666", PIN_SCHEDULE, 86400) == 120.0
    for _ in range(2):  # the last delay repeats
        clock.advance(120)
        assert line.start_pin_check("phone:+15550000666", PIN_SCHEDULE, 86400) == 0.0


def test_a_right_pin_or_a_quiet_window_starts_the_count_afresh(
    line: CallQueue, clock: FrozenClock, redis_client: redis.Redis
) -> None:
    for source in ("http:203.0.113.9", "http:198.51.100.4"):
        for _ in range(3):
            line.start_pin_check(source, PIN_SCHEDULE, 3600)
    ttl = redis_client.ttl(pin_checks_key("http:203.0.113.9"))
    assert 3600 < ttl <= 3600 + 120  # a safety net: the window and the longest wait
    line.pin_right("http:203.0.113.9")
    assert line.start_pin_check("http:203.0.113.9", PIN_SCHEDULE, 3600) == 0.0
    clock.advance(3600)
    assert line.start_pin_check("http:198.51.100.4", PIN_SCHEDULE, 3600) == 0.0
    assert line.start_pin_check("http:198.51.100.4", PIN_SCHEDULE, 3600) == 0.0


def test_concurrent_pin_checks_from_one_source_cannot_slip_past_the_count(
    redis_client: redis.Redis, clock: FrozenClock
) -> None:
    instances = [CallQueue(second_instance_client(redis_client), clock) for _ in range(8)]
    start = threading.Barrier(len(instances))
    waits: list[float] = []

    def guess(queue: CallQueue) -> None:
        start.wait()
        waits.append(queue.start_pin_check("http:203.0.113.9", PIN_SCHEDULE, 86400))

    threads = [threading.Thread(target=guess, args=(queue,)) for queue in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(waits) == [0.0] * 3 + [60.0] * 5


def test_an_agent_connected_longer_than_any_twilio_call_is_released(
    line: CallQueue, clock: FrozenClock
) -> None:
    """Twilio's <Dial> page (https://www.twilio.com/docs/voice/twiml/dial): "By default, there is
    a four hour time limit set on calls." An agent still connected after that (and a margin) is
    on a call whose Dial action and status callback were both lost: it is free again."""
    wait_in(line, clock, ["CA1"])
    line.agent_available("AGMAX", [FUNDS_EN])
    assert claimed(line.claim_next("AGMAX")) == "CA1"
    line.connected("CA1")
    clock.advance(4 * 3600)
    assert line.agent_status("AGMAX") == "busy"  # a long call, but it could still be going on
    clock.advance(16 * 60)
    assert line.agent_status("AGMAX") == "available"
    assert line.agent_call("AGMAX") is None


def test_the_line_load_says_how_long_each_busy_agent_has_been_talking(
    line: CallQueue, clock: FrozenClock
) -> None:
    for agent in ("AGMAX", "AGEVA", "AGIDLE"):
        line.agent_available(agent, [FUNDS_EN])
    wait_in(line, clock, ["CA1", "CA2"])
    line.dispatch()
    line.connected("CA1")  # AGMAX talks from now; AGEVA's caller is still being put through
    clock.advance(90)

    load = line.line_load(*FUNDS_EN)

    assert (load.agents_available, load.agents_busy) == (1, 2)
    assert sorted(load.busy_seconds) == [0.0, 90.0]
    assert load.connecting_seconds == (90.0,)  # AGEVA's caller was assigned 90 s ago


def test_the_line_load_says_how_long_each_agent_being_put_through_has_been_at_it(
    line: CallQueue, clock: FrozenClock
) -> None:
    wait_in(line, clock, ["CA1", "CA2", "CA3"])
    line.agent_available("AGMAX", [FUNDS_EN])
    line.dispatch()  # CA1 to AGMAX
    clock.advance(4.5)
    line.agent_available("AGEVA", [FUNDS_EN])
    line.dispatch()  # CA2 to AGEVA
    clock.advance(2)

    load = line.line_load(*FUNDS_EN)

    assert (load.waiting, load.agents_busy) == (1, 2)
    assert load.busy_seconds == (0.0, 0.0)
    assert sorted(load.connecting_seconds) == [2.0, 6.5]
    # Put through, then back in line unanswered: neither counts as being put through any more.
    line.connected("CA1")
    line.return_to_queue("CA2")
    after = line.line_load(*FUNDS_EN)
    assert (after.agents_busy, after.busy_seconds, after.connecting_seconds) == (1, (0.0,), ())
