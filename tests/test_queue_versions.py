"""Queue entries and agents across releases: an older process leaves what a newer one wrote alone.

A caller's entry or an agent's hash a newer release wrote carries `v` above what this code reads
(`ENTRY_READS_UP_TO`). This code never claims, overwrites, releases, re-indexes or deletes such a
live hash; the webhook answering the caller hands the call back to the proxy, as for a newer URL
state. Twilio, on `<Redirect>`: "The <Redirect> verb transfers control of a call to the TwiML at a
different URL. All verbs after <Redirect> are unreachable and ignored." and of its `method`: "POST
is the default." So the handed-back request is the same webhook, POSTed again, to the URL we give,
and the proxy may give it to a newer instance. Only the sweep (the deadlines zset, a contract
every release keeps) drops a newer call, once its deadline lapsed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.queue import (
    CallQueue,
    NewerEntry,
    agent_key,
    available_agents_key,
    deadlines_key,
    entry_key,
    keys,
    line_agents_key,
    queue_key,
    scripts,
)
from ivr.queue.keys import ENTRY_READS_UP_TO
from ivr.web.inbound import HAND_BACKS
from tests.support import Phone, ticket_of

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEWER = str(ENTRY_READS_UP_TO + 1)
"""The version a newer release writes in `v`."""


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def store(every_redis: redis.Redis) -> redis.Redis:
    """One Redis, a real Redis Cluster and a Sentinel setup in turn, as the queue tests use."""
    return every_redis


@pytest.fixture
def older(store: redis.Redis, clock: FrozenClock) -> CallQueue:
    """A process of this release."""
    return CallQueue(store, clock)


@pytest.fixture
def newer(
    store: redis.Redis, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CallQueue]:
    """A process of a release that reads version `NEWER`: the same scripts, built to read it."""
    monkeypatch.setattr(keys, "ENTRY_READS_UP_TO", int(NEWER))
    importlib.reload(scripts)
    try:
        yield CallQueue(store, clock)
    finally:
        monkeypatch.undo()
        importlib.reload(scripts)


def snapshot(client: redis.Redis, *names: str) -> dict[str, Any]:
    """What each key holds (hash, zset or absent), to show that nothing changed."""
    held: dict[str, Any] = {}
    for name in names:
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            held[name] = client.hgetall(name)
        elif kind == "zset":
            held[name] = client.zrange(name, 0, -1, withscores=True)
        else:
            held[name] = kind
    return held


def write_newer(client: redis.Redis, key: str) -> None:
    """Make a hash a newer release's: its version, and a field this release does not know."""
    client.hset(key, mapping={"v": NEWER, "tier": "gold"})


SUPPORT, SALES = queue_key("support", "en"), queue_key("sales", "en")


def waiting_for_one_agent(queue: CallQueue, clock: FrozenClock) -> None:
    """CA-old waits in support (first), CA-new in sales (second); agent a1 serves both lines."""
    queue.join("CA-new", "support", "en", 50)
    clock.advance(1)
    queue.join("CA-old", "sales", "en", 50)
    queue.agent_available("a1", [("support", "en"), ("sales", "en")])


def test_dispatch_leaves_a_newer_head_and_serves_an_older_caller_of_another_line(
    older: CallQueue, store: redis.Redis, clock: FrozenClock
) -> None:
    waiting_for_one_agent(older, clock)
    write_newer(store, entry_key("CA-new"))
    before = snapshot(store, entry_key("CA-new"), SUPPORT)

    made = older.dispatch()

    # The newer caller waited longer, but is a newer process's to hand over: left where it was.
    assert [(a.call_sid, a.agent) for a in made] == [("CA-old", "a1")]
    assert snapshot(store, entry_key("CA-new"), SUPPORT) == before
    assert older.claim_next("a1") is None  # a1 is busy now; nothing else was touched


def test_a_newer_process_serves_the_same_entries_normally(
    newer: CallQueue, store: redis.Redis, clock: FrozenClock
) -> None:
    waiting_for_one_agent(newer, clock)
    write_newer(store, entry_key("CA-new"))
    write_newer(store, agent_key("a1"))

    assert newer.agent_status("a1") == "available"
    made = newer.dispatch()

    assert [(a.call_sid, a.agent) for a in made] == [("CA-new", "a1")]
    assert newer.agent_call("a1") == "CA-new"


CALLER_OPS: dict[str, Callable[[CallQueue], object]] = {
    "join retry": lambda q: q.join("CA-new", "support", "en", 50),
    "join elsewhere": lambda q: q.join("CA-new", "sales", "en", 90),
    "enter": lambda q: q.enter("CA-new", "support", "en", 50),
    "place": lambda q: q.place("CA-new"),
    "heartbeat": lambda q: q.heartbeat("CA-new"),
    "hold round": lambda q: q.hold_round("CA-new", "support", "en", 50, 0),
    "request callback": lambda q: q.request_callback("CA-new", "+14155550100"),
    "leave": lambda q: q.leave("CA-new"),
    "hang up": lambda q: q.hang_up("CA-new"),
    "connected": lambda q: q.connected("CA-new"),
    "return to queue": lambda q: q.return_to_queue("CA-new"),
    "finish call": lambda q: q.finish_call("a1", "CA-new"),
}


@pytest.mark.parametrize("operation", CALLER_OPS)
def test_a_newer_entry_is_never_overwritten_or_dropped_by_a_call_of_its_own(
    older: CallQueue, store: redis.Redis, clock: FrozenClock, operation: str
) -> None:
    waiting_for_one_agent(older, clock)
    write_newer(store, entry_key("CA-new"))
    kept = (entry_key("CA-new"), SUPPORT, SALES, deadlines_key())
    before = snapshot(store, *kept)

    with pytest.raises(NewerEntry):
        CALLER_OPS[operation](older)

    assert snapshot(store, *kept) == before


def test_restoring_a_callback_leaves_a_newer_entry_and_says_nothing_changed(
    older: CallQueue, store: redis.Redis, clock: FrozenClock
) -> None:
    waiting_for_one_agent(older, clock)
    write_newer(store, entry_key("CA-new"))
    before = snapshot(store, entry_key("CA-new"), SUPPORT, SALES)

    later = int(START.timestamp() * 1000) + 3_600_000
    assert not older.restore_callback(
        "CA-new",
        "sales",
        "en",
        50,
        0,
        "+1415",
        our_number=None,
        reference=None,
        keep_until_ms=later,
    )
    assert snapshot(store, entry_key("CA-new"), SUPPORT, SALES) == before


def test_a_newer_agent_is_not_released_rewritten_or_handed_a_caller(
    older: CallQueue, store: redis.Redis, clock: FrozenClock
) -> None:
    older.agent_available("a1", [("support", "en")])
    older.join("CA-1", "support", "en", 50)
    assert older.claim_next("a1") is not None
    store.delete(entry_key("CA-1"))  # a1's caller is gone: this release would release a1
    older.agent_available("a2", [("support", "en")])
    older.join("CA-2", "support", "en", 50)
    write_newer(store, agent_key("a1"))
    write_newer(store, agent_key("a2"))
    agent_keys = (
        agent_key("a1"),
        agent_key("a2"),
        available_agents_key(),
        *(line_agents_key("support", "en", state) for state in ("free", "connecting")),
    )
    before = snapshot(store, *agent_keys)

    # Not available to this process: never settled, re-indexed or handed a caller.
    assert older.agent_statuses(["a1", "a2"]) == {"a1": "offline", "a2": "offline"}
    assert older.dispatch() == []
    assert older.claim_next("a2") is None
    with pytest.raises(NewerEntry):
        older.agent_available("a2", [("sales", "en")])
    with pytest.raises(NewerEntry):
        older.agent_offline("a2")

    assert snapshot(store, *agent_keys) == before
    assert older.place("CA-2") is not None  # the caller still waits, for a newer process


def test_the_sweep_of_any_release_drops_a_lapsed_newer_entry_and_leaves_a_newer_agent(
    older: CallQueue, store: redis.Redis, clock: FrozenClock
) -> None:
    waiting_for_one_agent(older, clock)
    write_newer(store, entry_key("CA-new"))
    assert [a.call_sid for a in older.dispatch()] == ["CA-old"]
    write_newer(store, agent_key("a1"))  # a newer release took a1 over, ringing CA-old
    agent = snapshot(store, agent_key("a1"))
    clock.advance(3600)  # no heartbeat came: both deadlines lapsed

    swept = older.sweep()

    assert sorted(s.call_sid for s in swept) == ["CA-new", "CA-old"]
    assert not store.exists(entry_key("CA-new")) and not store.exists(entry_key("CA-old"))
    assert store.zcard(SUPPORT) == 0 and store.zcard(deadlines_key()) == 0
    # Its caller's entry is gone: a newer process releases a1 when it next reads it.
    assert [s.freed_agent for s in swept] == [None, None]
    assert snapshot(store, agent_key("a1")) == agent


# --- the webhooks ----------------------------------------------------------------------------------


def holding(client: FlaskClient, store: redis.Redis) -> tuple[Phone, str]:
    """A caller about to hold in a line (their entry written), whose entry a newer release then
    rewrote; the caller's next webhook URL (the hold round)."""
    phone = Phone(client)
    phone.dial()
    phone.press("2")  # English
    phone.press("3")  # security
    phone.press("3")  # other security questions: in the line
    assert phone.twiml is not None
    redirect = phone.twiml.find("Redirect")
    assert redirect is not None and urlsplit(redirect.text or "").path == "/voice/hold"
    write_newer(store, entry_key(phone.sid))  # the app's Redis
    return phone, redirect.text or ""


def test_the_hold_round_of_a_newer_entry_is_handed_back_and_the_entry_kept(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    phone, hold_url = holding(client, redis_client)
    kept = (entry_key(phone.sid), deadlines_key())
    before = snapshot(redis_client, *kept)

    answer = phone.follow()

    assert [verb.tag for verb in answer] == ["Pause", "Redirect"]
    assert answer[0].attrib["length"] == "1" and "method" not in answer[1].attrib  # POST
    again = urlsplit(answer[1].text or "")
    assert again.path == "/voice/hold"
    assert parse_qs(again.query)["hb"] == ["1"]
    assert parse_qs(again.query)["step"] == parse_qs(urlsplit(hold_url).query)["step"]
    assert snapshot(redis_client, *kept) == before


def test_after_the_last_hand_back_the_caller_holds_on_and_the_entry_is_kept(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    phone, _ = holding(client, redis_client)
    before = snapshot(redis_client, entry_key(phone.sid), deadlines_key())
    for given in range(1, HAND_BACKS + 1):
        answer = phone.follow()
        assert parse_qs(urlsplit(answer[1].text or "").query)["hb"] == [str(given)]

    answer = phone.follow()

    # As when Redis is away: the caller hears the hold music and comes back; never hung up on.
    assert answer.find("Hangup") is None
    redirect = answer.find("Redirect")
    assert redirect is not None and urlsplit(redirect.text or "").path == "/voice/hold"
    assert "hb" not in parse_qs(urlsplit(redirect.text or "").query)
    assert snapshot(redis_client, entry_key(phone.sid), deadlines_key()) == before


def test_the_status_callback_leaves_a_newer_entry_and_still_ends_the_ticket(
    client: FlaskClient, redis_client: redis.Redis, database: Database
) -> None:
    phone, _ = holding(client, redis_client)
    before = snapshot(redis_client, entry_key(phone.sid), deadlines_key())

    phone.hang_up()  # a status callback cannot be handed back: Twilio does not follow its answer

    assert snapshot(redis_client, entry_key(phone.sid), deadlines_key()) == before
    ticket = ticket_of(database, phone.sid)
    assert ticket.call_status == "completed" and ticket.ended_at is not None
