"""Whole calls on a real Redis Cluster and behind Sentinel, with a failover while callers wait.

The service reaches Redis as an operator configures it (`REDIS_URL=redis+cluster://...` or
`redis+sentinel://...`). Callers queue, the queue's primary fails over to its replica, and the
callers notice nothing they should not: no caller is hung up or dropped from the line, everyone keeps
their place, the agent who logs in afterwards gets the longest-waiting caller, and every call has its
ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask

from ivr.db import Database
from ivr.queue import connect
from ivr.tickets.changes import Outcome
from tests.conftest import AGENT_PINS
from tests.support import PUBLIC, Phone, spoken, ticket_of
from tests.test_agent_calls import (
    agent_answers,
    conversation_ends,
    log_in,
    phone,
    queue_for_funds,
)
from tests.topologies import Cluster, SentinelSetup

CALLERS = 6
ROUNDS_TO_SETTLE = 3
"""Hold rounds a caller may need after the failover before the line answers as before (the first
one may find the old primary gone and keep the caller on hold from the place in its URL)."""

pytestmark = pytest.mark.usefixtures("agent_pins")


@pytest.fixture(params=["cluster", "sentinel"])
def topology(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Cluster | SentinelSetup, redis.Redis]]:
    setup: Cluster | SentinelSetup = request.getfixturevalue(f"redis_{request.param}")
    setup.flush()
    client = connect(setup.url)
    yield setup, client
    setup.flush()
    client.close()


@pytest.fixture
def redis_client(topology: tuple[Cluster | SentinelSetup, redis.Redis]) -> redis.Redis:
    return topology[1]


def position_heard(call: Phone) -> int | None:
    """The place the last hold round announced ("You are caller number 3"), if it did."""
    for text in spoken(call.twiml) if call.twiml is not None else []:
        if "next in line" in text:
            return 1
        digits = [int(word) for word in text.replace(".", " ").split() if word.isdigit()]
        if digits and ("number" in text or "position" in text):
            return digits[0]
    return None


def on_hold(call: Phone) -> bool:
    """The caller is still in the line: the document ends in a redirect back to the hold loop."""
    assert call.twiml is not None
    if call.twiml.find("Hangup") is not None:
        return False
    redirect = call.twiml.find("Redirect")
    return redirect is not None and "/voice/hold" in (redirect.text or "")


def test_a_failover_while_callers_wait_loses_nobody(
    app_factory: Callable[..., Flask],
    topology: tuple[Cluster | SentinelSetup, redis.Redis],
    database: Database,
) -> None:
    setup, _ = topology
    client = app_factory(public_base_url=PUBLIC).test_client()
    calls = [phone(client, f"+1415555{n:04d}") for n in range(CALLERS)]
    for call in calls:
        queue_for_funds(call, "2")
    assert [position_heard(call) for call in calls] == list(range(1, CALLERS + 1))

    setup.failover()

    for _ in range(ROUNDS_TO_SETTLE):
        for call in calls:
            call.wait_silently()  # the hold music ends: the next hold round
            assert on_hold(call), call.last_heard()
    assert [position_heard(call) for call in calls] == list(range(1, CALLERS + 1))

    # The agent who logs in after the failover takes the callers in the order they came.
    log_in(client, "emma", AGENT_PINS["emma"])
    for n, served in enumerate(calls):
        served.wait_silently()
        assert served.twiml is not None and served.twiml.find("Dial/Client") is not None
        for waiting in calls[n + 1 : n + 2]:
            waiting.wait_silently()
            assert on_hold(waiting) and position_heard(waiting) == 1, waiting.last_heard()
        agent_answers(client, served)
        conversation_ends(served, 60)
        served.hang_up()

    for call in calls:
        ticket = ticket_of(database, call.sid)
        assert (ticket.agent, ticket.outcome) == ("emma", Outcome.ANSWERED), call.sid
