"""A Redis client that answers within its deadline, and at once while Redis is known to be away.

Every command has a short socket deadline (`client.connect`), but a webhook may issue several, and a
frozen Redis would make each of them wait it out: a caller's webhook could pass Twilio's 15 s and every
gunicorn thread would be stuck waiting. So after a command times out or cannot connect, the client
fails every command at once for `COOLDOWN_SECONDS` (a circuit breaker), and then lets commands try
again. Callers see an ordinary `redis.exceptions.ConnectionError` either way and carry on as they do
when Redis is down: the journal spools, a caller on hold keeps their place in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError, TimeoutError

from ivr.breaker import Breaker as BaseBreaker

COOLDOWN_SECONDS = 1.0

T = TypeVar("T")


class RedisAway(ConnectionError):
    """Redis failed a moment ago: not asked again until the cooldown is over."""


class Breaker(BaseBreaker):
    """Opens on a failure, stays open for `cooldown` seconds, closes on the next success."""

    def __init__(self, cooldown: float = COOLDOWN_SECONDS) -> None:
        super().__init__(cooldown)

    def check(self) -> None:
        """Raise `RedisAway` while open."""
        if self.is_open:
            raise RedisAway("Redis did not answer a moment ago; not asking again yet")

    def call(self, command: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `command` unless open; a connection error or timeout opens the breaker."""
        self.check()
        try:
            result = command(*args, **kwargs)
        except (ConnectionError, TimeoutError):
            self.failed()
            raise
        self.succeeded()
        return result


class GuardedRedis(redis.Redis):
    """`redis.Redis` whose commands and pipelines go through a `Breaker`."""

    breaker: Breaker

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self.breaker.call(super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.breaker = self.breaker
        return pipe


class GuardedPipeline(Pipeline):
    """A pipeline whose `execute` goes through the client's `Breaker`."""

    breaker: Breaker

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        result: list[Any] = self.breaker.call(super().execute, raise_on_error)
        return result


class GuardedRedisCluster(RedisCluster):
    """`redis.cluster.RedisCluster` whose commands and pipelines go through a `Breaker`.

    The cluster client follows the cluster itself (MOVED replies, a new primary after a failover);
    the breaker only stops a webhook from waiting out every deadline while no primary answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.breaker = Breaker()  # the constructor already asks the cluster for its commands
        super().__init__(*args, **kwargs)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return self.breaker.call(super().execute_command, *args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        return _GuardedClusterPipeline(pipe, self.breaker)


class _GuardedClusterPipeline:
    """A cluster pipeline whose `execute` goes through the client's `Breaker` (every other
    attribute is the pipeline's own: commands are queued on it)."""

    def __init__(self, pipe: Any, breaker: Breaker) -> None:
        self._pipe = pipe
        self._breaker = breaker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def __enter__(self) -> _GuardedClusterPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.reset()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        result: list[Any] = self._breaker.call(self._pipe.execute, raise_on_error)
        return result
