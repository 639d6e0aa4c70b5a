"""The Redis client has a deadline on every command, and answers at once while Redis is known away."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError, RedisError

from ivr.queue import connect
from ivr.queue.guard import Breaker, RedisAway
from tests.faults import FaultProxy, RedisProcess, free_port


@pytest.fixture
def proxied() -> Iterator[tuple[RedisProcess, FaultProxy]]:
    with RedisProcess() as server, FaultProxy(("127.0.0.1", server.port)) as proxy:
        yield server, proxy


def timed(work: object) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        work()  # type: ignore[operator]
    except RedisError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


@pytest.mark.parametrize("fault", ["stall", "drop", "refuse"])
def test_a_command_gives_up_within_its_deadline_and_the_next_ones_at_once(
    proxied: tuple[RedisProcess, FaultProxy], fault: str
) -> None:
    _, proxy = proxied
    client = connect(f"redis://127.0.0.1:{proxy.port}/0")
    assert client.set("k", "v")
    getattr(proxy, fault)()

    first, error = timed(lambda: client.get("k"))
    assert isinstance(error, ConnectionError | TimeoutError | RedisError) and first < 1.5
    for work in (
        lambda: client.get("k"),
        lambda: client.pipeline().get("k").get("k").execute(),
        lambda: client.register_script("return 1")(),
    ):
        seconds, error = timed(work)
        assert isinstance(error, RedisAway) and seconds < 0.05

    proxy.forward()
    time.sleep(1.1)  # the cooldown
    assert client.get("k") == b"v"


def test_a_server_nobody_listens_on_fails_fast_every_time() -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    for _ in range(3):
        seconds, error = timed(client.ping)
        assert error is not None and seconds < 1.0


def test_the_breaker_opens_on_failure_and_closes_on_success() -> None:
    breaker = Breaker(cooldown=0.05)
    breaker.check()
    breaker.failed()
    assert breaker.is_open
    with pytest.raises(RedisAway):
        breaker.check()
    time.sleep(0.06)
    breaker.check()  # tries again after the cooldown
    breaker.succeeded()
    assert not breaker.is_open
