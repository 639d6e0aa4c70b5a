"""The Redis client: a real server with a deadline on every command, or an in-process fakeredis.

A webhook must answer within Twilio's 15 s (we aim at 2 s) whatever Redis does, so: 0.5 s to connect,
0.5 s for any reply, no retries (the next hold round is the retry), TCP keepalive on pooled
connections, and the circuit breaker of `guard.py`, which answers at once for a second after a failure.

`REDIS_URL` names one of four kinds of Redis:

- `redis://host:port/db` (or `rediss://`, `unix://`): one server;
- `redis+cluster://host:port,host:port/`: a Redis Cluster, reached through any of the nodes listed
  (redis-py's `RedisCluster` finds the others and follows failovers); the key layout that keeps every
  script in one hash slot is in `keys.py`;
- `redis+sentinel://host:port,host:port/service/db`: the primary that the Sentinels listed name for
  `service` (redis-py's `Sentinel`), found again after a failover;
- `embedded://`: an in-process fakeredis, for one process only.

A password in the URL (`redis+cluster://:secret@host:port/`) is the Redis servers' password; the
Sentinels' own password, if they have one, is the `sentinel_password` query parameter.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import parse_qs, unquote

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.retry import Retry
from redis.sentinel import Sentinel

from ivr.queue.guard import Breaker, GuardedRedis, GuardedRedisCluster

EMBEDDED_URL: Final = "embedded://"
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
DEADLINE_SECONDS: Final = 0.5
"""The longest any Redis command waits, connecting included."""
DEFAULT_PORTS: Final = {"cluster": 6379, "sentinel": 26379}


def _deadlines() -> dict[str, Any]:
    return {
        "socket_timeout": DEADLINE_SECONDS,
        "socket_connect_timeout": DEADLINE_SECONDS,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }


@dataclass(frozen=True)
class ServersUrl:
    """A `redis+cluster://` or `redis+sentinel://` URL, taken apart."""

    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    path: tuple[str, ...]
    query: dict[str, str]

    @classmethod
    def parse(cls, url: str, kind: str) -> ServersUrl:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError(f"not a URL: {url!r}")
        rest, _, query_text = rest.partition("?")
        netloc, _, path = rest.partition("/")
        credentials, at, hosts = netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = credentials.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        nodes = tuple(_node(text, DEFAULT_PORTS[kind], url) for text in hosts.split(",") if text)
        if not nodes:
            raise ValueError(f"{url!r} names no {kind} node (host:port, comma-separated)")
        query = {key: values[-1] for key, values in parse_qs(query_text).items()}
        parts = tuple(part for part in path.split("/") if part)
        return cls(scheme.startswith("rediss"), nodes, username, password, parts, query)


def _node(text: str, default_port: int, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, after = text[1:].partition("]")
        port = after.removeprefix(":") or str(default_port)
    else:
        host, colon, port = text.partition(":")
        port = port if colon else str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{url!r}: {text!r} is not host:port")
    return host, int(port)


def url_problem(url: str) -> str | None:
    """What is wrong with a `redis+cluster://` or `redis+sentinel://` URL, or None (other URLs
    are redis-py's to judge when it connects)."""
    scheme = url.partition("://")[0]
    try:
        if scheme in CLUSTER_SCHEMES:
            _cluster_checked(ServersUrl.parse(url, "cluster"))
        elif scheme in SENTINEL_SCHEMES:
            _sentinel_target(ServersUrl.parse(url, "sentinel"))
    except ValueError as exc:
        return str(exc)
    return None


def connect(url: str) -> redis.Redis:
    """Redis client for `url` (see the module's docstring); raises ValueError for a bad URL."""
    if url == EMBEDDED_URL:
        # Without lupa fakeredis cannot run scripts; fail here rather than on the first call.
        if importlib.util.find_spec("lupa") is None:
            raise RuntimeError("embedded Redis needs lupa for Lua scripts: install fakeredis[lua]")
        embedded: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return embedded
    scheme = url.partition("://")[0]
    if scheme in CLUSTER_SCHEMES:
        return _cluster(ServersUrl.parse(url, "cluster"))
    if scheme in SENTINEL_SCHEMES:
        return _sentinel(ServersUrl.parse(url, "sentinel"))
    client = GuardedRedis.from_url(url, **_deadlines())
    assert isinstance(client, GuardedRedis)  # from_url builds the class it is called on
    client.breaker = Breaker()
    return client


def _cluster_checked(url: ServersUrl) -> ServersUrl:
    if url.path:
        raise ValueError("a Redis Cluster has only database 0: leave the path of the URL empty")
    return url


def _cluster(url: ServersUrl) -> redis.Redis:
    _cluster_checked(url)
    cluster = GuardedRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in url.nodes],  # type: ignore[no-untyped-call]
        username=url.username,
        password=url.password,
        ssl=url.tls,
        # After a connection error the client refreshes its map of the cluster; one more try
        # then reaches a primary that took over (a hold round later retries the rest).
        **(_deadlines() | {"retry": Retry(NoBackoff(), 1)}),
    )
    # The queue uses only commands RedisCluster has too (scripts, hashes, sorted sets, streams),
    # each touching one hash slot (keys.py); the tests run the queue against a real cluster.
    return cast(redis.Redis, cluster)


def _sentinel_target(url: ServersUrl) -> tuple[str, int]:
    """(service, db) of a Sentinel URL."""
    if not url.path or len(url.path) > 2:
        raise ValueError("a Sentinel URL ends in /SERVICE or /SERVICE/DB (the primary's name)")
    db = url.path[1] if len(url.path) == 2 else "0"
    if not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    return url.path[0], int(db)


def _sentinel(url: ServersUrl) -> redis.Redis:
    service, db = _sentinel_target(url)
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": DEADLINE_SECONDS,
        "socket_connect_timeout": DEADLINE_SECONDS,
        "ssl": url.tls,
    }
    if "sentinel_password" in url.query:
        sentinel_kwargs["password"] = url.query["sentinel_password"]
    sentinel = Sentinel(list(url.nodes), sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(
        service,
        redis_class=GuardedRedis,
        db=db,
        username=url.username,
        password=url.password,
        ssl=url.tls,
        **_deadlines(),
    )
    assert isinstance(client, GuardedRedis)
    client.breaker = Breaker()
    return client
