"""The Redis client: a real server with a deadline on every command, or an in-process fakeredis.

A webhook must answer within Twilio's 15 s (we aim at 2 s) whatever Redis does, so: 0.5 s to connect,
0.5 s for any reply, no retries (the next hold round is the retry), TCP keepalive on pooled
connections, and the circuit breaker of `guard.py`, which answers at once for a second after a failure.
"""

from __future__ import annotations

import importlib.util
from typing import Final

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ivr.queue.guard import Breaker, GuardedRedis

EMBEDDED_URL: Final = "embedded://"
DEADLINE_SECONDS: Final = 0.5
"""The longest any Redis command waits, connecting included."""


def connect(url: str) -> redis.Redis:
    """Redis client for `url`; "embedded://" gives an in-process fakeredis (one process only)."""
    if url == EMBEDDED_URL:
        # Without lupa fakeredis cannot run scripts; fail here rather than on the first call.
        if importlib.util.find_spec("lupa") is None:
            raise RuntimeError("embedded Redis needs lupa for Lua scripts: install fakeredis[lua]")
        embedded: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return embedded
    client = GuardedRedis.from_url(
        url,
        socket_timeout=DEADLINE_SECONDS,
        socket_connect_timeout=DEADLINE_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 0),
    )
    assert isinstance(client, GuardedRedis)  # from_url builds the class it is called on
    client.breaker = Breaker()
    return client
