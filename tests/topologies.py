"""Real Redis Clusters and Sentinel setups of private `redis-server`s, for the queue's tests.

`Cluster` is three primaries with a replica each (six servers, `redis-cli --cluster create`), the
smallest cluster Redis recommends; `SentinelSetup` is a primary, a replica and three Sentinels with a
quorum of two. Both run on free ports in temp dirs, never touch the machine's Redis, stop every server
by the PID they started, and bound every wait. `failover()` moves the queue's hash slot (or the
Sentinel service) to the replica, as an operator's planned failover or a lost primary would.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from ivr.queue.keys import KEY_PREFIX
from tests.faults import RedisProcess, wait_until

START_TIMEOUT = 30.0
FAILOVER_TIMEOUT = 30.0
SERVICE = "ivr-main"
"""The Sentinel service name of the primary."""
TOPOLOGY_URLS: dict[int, str] = {}
"""The URL each live cluster or Sentinel client was made from (by `id`), for a second client."""


def _plain(port: int) -> redis.Redis:
    """A direct connection to one server (no cluster redirects), with short deadlines."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports whose cluster bus ports (port + 10000) are free as well."""
    ports: list[int] = []
    for _ in range(2000):
        port = random.randrange(20000, 30000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"found only {len(ports)} free port pairs for a cluster")


class Servers:
    """Private redis-servers started together, made into one setup, and stopped together."""

    servers: list[RedisProcess]

    def start(self) -> None:
        """Start every server, join them (`_join`), and wait until the setup is `healthy`; on
        any failure stop whatever was started."""
        try:
            for server in self.servers:
                server.start()
            self._join()
            wait_until(self.healthy, START_TIMEOUT, interval=0.2)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def _join(self) -> None:
        """What makes the running servers one setup (nothing when their config files do it)."""

    def healthy(self) -> bool:
        raise NotImplementedError


S = TypeVar("S", bound=Servers)


class Cluster(Servers):
    """Three primaries and three replicas on 127.0.0.1: `url` is what `REDIS_URL` would say."""

    def __init__(self) -> None:
        self.ports = cluster_ports(6)
        cluster_mode = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        cluster_mode += ["--cluster-node-timeout", "2000"]
        self.servers = [RedisProcess(port=port, extra=cluster_mode) for port in self.ports]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:3]) + "/"

    def _join(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH (it comes with redis-server)")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )

    def healthy(self) -> bool:
        """Every node says the cluster is ok and every replica is in sync with its primary."""
        try:
            for port in self.ports:
                node = _plain(port)
                if node.cluster("info").get("cluster_state") != "ok":
                    return False
                info = node.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
            return True
        except redis.RedisError:
            return False

    def queue_primary(self) -> tuple[int, int]:
        """(primary port, replica port) of the hash slot that holds the queue's state."""
        slot = int(_plain(self.ports[0]).execute_command("CLUSTER KEYSLOT", KEY_PREFIX + "x"))
        for port in self.ports:
            node = _plain(port)
            info = node.info("replication")
            if info["role"] != "slave":
                continue
            primary = int(info["master_port"])
            for start, end, owner, *_replicas in node.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end and int(owner[1]) == primary:
                    return primary, port
        raise AssertionError(f"no replica found for slot {slot}")

    def failover(self) -> tuple[int, int]:
        """A planned failover of the queue's slot (CLUSTER FAILOVER on its replica: the primary
        hands over once the replica has caught up); returns (old, new) primary ports."""
        old, new = self.queue_primary()
        _plain(new).execute_command("CLUSTER FAILOVER")

        def promoted() -> bool:
            return _plain(new).info("replication")["role"] == "master" and self.healthy()

        wait_until(promoted, FAILOVER_TIMEOUT, interval=0.1)
        return old, new

    def flush(self) -> None:
        for port in self.ports:
            node = _plain(port)
            if node.info("replication")["role"] == "master":
                node.flushall()


class SentinelSetup(Servers):
    """A primary, a replica and three Sentinels (quorum 2) on 127.0.0.1."""

    def __init__(self) -> None:
        self.primary = RedisProcess()
        self.replica = RedisProcess(extra=["--replicaof", "127.0.0.1", str(self.primary.port)])
        config = (
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self.sentinels = [RedisProcess(config=config, extra=["--sentinel"]) for _ in range(3)]
        self.servers = [self.primary, self.replica, *self.sentinels]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_port(self) -> int:
        _host, port = _plain(self.sentinels[0].port).execute_command(
            "SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE
        )
        return int(port)

    def healthy(self) -> bool:
        """Every Sentinel knows the other two and the replica, and the replica is in sync."""
        try:
            for sentinel in self.sentinels:
                node = _plain(sentinel.port)
                state = node.sentinel_master(SERVICE)  # parsed into a dict
                if int(state["num-other-sentinels"]) != 2 or int(state["num-slaves"]) < 1:
                    return False
            replica_port = next(
                p for p in (self.primary.port, self.replica.port) if p != self.primary_port()
            )
            info = _plain(replica_port).info("replication")
            return info["role"] == "slave" and info.get("master_link_status") == "up"
        except (redis.RedisError, KeyError):
            return False

    def failover(self) -> tuple[int, int]:
        """SENTINEL FAILOVER: the Sentinels promote the replica; returns (old, new) ports."""
        old = self.primary_port()
        _plain(self.sentinels[0].port).execute_command("SENTINEL FAILOVER", SERVICE)

        def moved() -> int:
            port = self.primary_port()
            if port == old or _plain(port).info("replication")["role"] != "master":
                return 0
            return port

        new = wait_until(moved, FAILOVER_TIMEOUT, interval=0.1)
        return old, new

    def flush(self) -> None:
        _plain(self.primary_port()).flushall()


def all_keys(client: redis.Redis) -> set[str]:
    """Every key the client's Redis holds: on a cluster, those of every primary."""
    if isinstance(client, RedisCluster):
        raw = client.keys("*", target_nodes=RedisCluster.PRIMARIES)
    else:
        raw = client.keys("*")
    return {k.decode() if isinstance(k, bytes) else k for k in raw}


@contextmanager
def running(setup: S) -> Iterator[S]:
    """Start `setup`, yield it, stop every server it started."""
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()
