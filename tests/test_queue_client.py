"""`REDIS_URL`: one server, a Redis Cluster or a Sentinel setup, and clear words for a bad URL."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from ivr.config import ConfigError, Settings
from ivr.queue import CallQueue, connect
from ivr.queue.client import ServersUrl, url_problem
from ivr.queue.guard import GuardedRedis
from tests.support import STATE_SECRET
from tests.topologies import Cluster, SentinelSetup


def test_a_cluster_url_lists_its_nodes_with_default_ports_and_credentials() -> None:
    url = ServersUrl.parse(
        "redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/", "cluster"
    )
    assert url.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (url.username, url.password, url.tls, url.path) == ("app", "s@cret", False, ())


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    url = ServersUrl.parse(
        "rediss+sentinel://:pw@s1,s2:26380/ivr-main/2?sentinel_password=x", "sentinel"
    )
    assert url.nodes == (("s1", 26379), ("s2", 26380))
    assert (url.password, url.tls, url.path, url.query) == (
        "pw",
        True,
        ("ivr-main", "2"),
        {"sentinel_password": "x"},
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+cluster:///", "names no cluster node"),
        ("redis+cluster://h:notaport/", "is not host:port"),
        ("redis+cluster://h:7000/3", "only database 0"),
        ("redis+sentinel://s1:26379", "ends in /SERVICE"),
        ("redis+sentinel://s1:26379/main/first", "'first' is not a number"),
    ],
)
def test_a_bad_url_is_refused_at_start_with_what_is_wrong(url: str, words: str) -> None:
    assert words in (url_problem(url) or "")
    settings = Settings(twilio_auth_token="t", state_secrets=(STATE_SECRET,), redis_url=url)
    with pytest.raises(ConfigError, match="REDIS_URL: .*" + words.replace("/", ".")):
        settings.validate()


def test_plain_urls_are_left_to_redis_py() -> None:
    assert url_problem("redis://127.0.0.1:6379/0") is None
    assert url_problem("embedded://") is None


def test_the_service_reaches_a_cluster_and_a_sentinel_primary_with_the_same_queue(
    redis_cluster: Cluster, redis_sentinel: SentinelSetup
) -> None:
    from datetime import UTC, datetime

    from ivr.clock import FrozenClock

    clock = FrozenClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    for setup, kind in ((redis_cluster, RedisCluster), (redis_sentinel, GuardedRedis)):
        setup.flush()
        client = connect(setup.url)
        assert isinstance(client, kind)
        line = CallQueue(client, clock)
        assert line.join("CA1", "funds", "en-US", 30).position == 1
        assert line.join("CA2", "funds", "en-US", 30).position == 2
        setup.flush()
        client.close()
