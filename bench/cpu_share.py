"""Where the CPU goes, per request: each process of the app (and the floor) flat out, from /proc.

    .venv/bin/python -m bench.cpu_share [--seconds 12] [--calls 16]

Starts the app as `bench.run` does (gunicorn web workers with IVR_WRITER=off and one `ivr worker`, our
own redis-server, a database of its own), drives whole calls flat out, and reads the CPU time
(user + system, /proc/PID/stat) each process used during the phase: the web workers, redis-server,
the ticket writer, the PostgreSQL backends of that database and the load generator itself. Then the same
for the floor. Prints milliseconds of CPU per request for each, which is what decides throughput on a
machine where they all share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen, production, servers
from bench.floor import document_key
from bench.loadgen import Phase, Target
from bench.run import CLOCK, launch_app


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def postgres_backends(database: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", f"postgres: .*{database}"], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def measure(
    target: Target, groups: dict[str, list[int]], calls: int, seconds: float, database: str = ""
) -> dict[str, Any]:
    """CPU ms per request of each process group during one flat-out phase."""
    asyncio.run(loadgen.run_phase(target, Phase("warm-up", calls, 0.0, 3), 10))
    groups = {**groups, "load generator": [os.getpid()]}
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    database_before = {pid: cpu_seconds([pid]) for pid in postgres_backends(database)}
    started = time.monotonic()
    run = asyncio.run(loadgen.run_phase(target, Phase("flat-out", calls, 0.0, seconds), 10))
    wall = time.monotonic() - started
    requests = len(run.samples)
    used = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
    if "ivr worker" in groups:
        backends = postgres_backends(database)
        used["postgres"] = sum(cpu_seconds([p]) - database_before.get(p, 0.0) for p in backends)
    return {
        "requests": requests,
        "requests_per_second": round(requests / wall, 1),
        "cpu_ms_per_request": {k: round(1000 * v / requests, 2) for k, v in used.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--calls", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ivr-cpu-share-"))
    redis_server = servers.RedisServer()
    redis_server.start()
    processes: list[subprocess.Popen[bytes]] = []
    database_url = servers.create_database()
    try:
        servers.upgrade_database(servers.clean_env(DATABASE_URL=database_url))
        token = secrets.token_hex(16)
        app = Target("app", servers.free_port(), token)
        env = servers.clean_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url(0),
            TWILIO_AUTH_TOKEN=token,
            IVR_SECRET=secrets.token_urlsafe(32),
            PUBLIC_BASE_URL=app.base_url,
            IVR_CLOCK=CLOCK,
            IVR_SPOOL_DIR=str(work / "spool"),
        )
        web, writer = launch_app(app.port, env, work / "app.log")
        processes += [web, writer]
        servers.wait_until_ok(f"{app.base_url}/healthz", web)
        assert redis_server.process is not None
        app_groups = {
            "web workers": children(web.pid),
            "redis": [redis_server.process.pid],
            "ivr worker": [writer.pid],
        }
        result: dict[str, Any] = {
            "app": measure(app, app_groups, args.calls, args.seconds, servers.name_of(database_url))
        }

        documents = asyncio.run(loadgen.capture_call(app))
        captured = {document_key(p, d): b.decode() for (p, d), b in documents.items()}
        (work / "floor.json").write_text(json.dumps(captured), encoding="utf-8")
        floor = Target("floor", servers.free_port(), token)
        floor_env = servers.clean_env(
            FLOOR_DOCUMENTS=str(work / "floor.json"),
            TWILIO_AUTH_TOKEN=token,
            PUBLIC_BASE_URL=floor.base_url,
        )
        serve, _ = production.read()
        process = servers.gunicorn(
            "bench.floor:app", floor.port, floor_env, work / "floor.log", serve.gunicorn_settings()
        )
        processes.append(process)
        servers.wait_until_ok(f"{floor.base_url}/healthz", process)
        floor_groups = {"web workers": children(process.pid)}
        result["floor"] = measure(floor, floor_groups, args.calls, args.seconds)
        print(json.dumps(result, indent=2))
    finally:
        for process in processes:
            servers.stop(process)
        redis_server.stop()
        servers.drop_database(database_url)


if __name__ == "__main__":
    main()
