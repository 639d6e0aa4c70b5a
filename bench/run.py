"""The benchmark: `python -m bench.run [--quick] [--only http|scale|micro] [--instances 2]` (see
bench/README.md).

Starts its own redis-server (with docs/operators/production.md's AOF settings) and a PostgreSQL database of
its own name, the app with docs/operators/production.md's own command (read from that page: `IVR_WRITER=off
ivr serve --no-migrate ... --workers 4 --threads 8` and one `ivr worker`) and the floor app
(bench/floor.py) under gunicorn with the same workers and threads, places whole signed calls
against both, interleaved, then the scale cases (bench/scale.py: 1,000 agents, 50 lines, and on
request the soak), then the micro-benchmarks, and writes bench/results/.
With `--instances 2` it also runs a second instance and our own nginx (bench/proxy.py), and measures
one instance behind nginx and two instances behind nginx in the same interleaving.
Everything it starts is stopped by PID at the end, also on Ctrl-C and on errors; then its
database is dropped (without FORCE; `--keep-db` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import redis

from bench import loadgen, production, proxy, report, rolling, scale, servers
from bench.floor import document_key
from bench.loadgen import EXPECTED_MENU_PATH, Phase, PhaseRun, Target
from ivr.clock import OffsetClock, parse_instant
from ivr.config import DEFAULT_DRAIN_SECONDS
from ivr.queue import CallQueue

RESULTS = Path(__file__).resolve().parent / "results"
CLOCK = "2026-11-23T15:00:00Z"
"""A Monday, 10:00 in New York: the `funds` queue's team (americas) is open whatever the real time."""

MICRO_MODULES = ("micro_queue", "micro_rules", "micro_journal", "micro_speech")

CONFIGURATIONS = {
    "app": "one instance, direct",
    "app-nginx": "one instance behind nginx",
    "app-2-nginx": "two instances behind nginx",
    "floor": "the floor, direct",
}
"""The servers measured with `--instances 2`, in the order each phase runs them; with
`--instances 1` only the app (direct) and the floor, as before."""
MICRO_TIMEOUT_SECONDS = 300


SCALE_CASES = ("agents_idle_elsewhere", "agents_busy_here", "busy_lines_50", "soak")
"""The scale cases (bench/scale.py); all but the soak run by default."""
DEFAULT_SCALE_CASES = SCALE_CASES[:3]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; phase length and rounds default by --quick."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke run")
    parser.add_argument("--only", choices=("http", "scale", "micro"), help="run only one part")
    parser.add_argument("--seconds", type=float, help="length of each phase (20; quick: 4)")
    parser.add_argument("--rounds", type=int, help="app/floor rounds per phase (2; quick: 1)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between webhooks")
    parser.add_argument(
        "--caller-pace",
        action="store_true",
        help="pause as long as a caller hears each answer (instead of --pause); calls last "
        "~2 minutes, so give phases --seconds 180 or more",
    )
    parser.add_argument(
        "--paced", default="20,100", help="concurrent calls of the paced phases (20,100)"
    )
    parser.add_argument(
        "--flat-out-calls", type=int, default=16, help="concurrent calls flat out (16)"
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="reuse one connection per call (default: a new connection per webhook, as Twilio)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also one instance and two instances behind nginx (docs/developers/benchmark.md)",
    )
    parser.add_argument(
        "--rolling-restart",
        action="store_true",
        help="only this: two instances behind nginx restarted in turn under load (bench/rolling.py)",
    )
    parser.add_argument(
        "--rolling-calls", type=int, default=100, help="concurrent calls while restarting (100)"
    )
    parser.add_argument(
        "--rolling-rounds", type=int, default=1, help="times each instance is restarted (1)"
    )
    parser.add_argument(
        "--phases",
        default="",
        help="only these phases, e.g. flat-out or paced-20,agents_idle_elsewhere or soak "
        "(default: every HTTP phase and every scale case but the soak)",
    )
    parser.add_argument(
        "--scale-calls", type=int, default=100, help="concurrent calls of the scale cases (100)"
    )
    parser.add_argument(
        "--scale-agents", type=int, default=1000, help="agents logged in at scale (1000)"
    )
    parser.add_argument(
        "--baseline-agents", type=int, default=10, help="agents of the runs compared with (10)"
    )
    parser.add_argument("--soak-seconds", type=float, default=3600.0, help="the soak (3600)")
    parser.add_argument("--soak-calls", type=int, default=50, help="concurrent calls (50)")
    parser.add_argument(
        "--soak-sample-seconds", type=float, default=15.0, help="RSS sampled this often (15)"
    )
    parser.add_argument("--drain-seconds", type=float, default=60.0, help="bound on winding down")
    parser.add_argument("--ticket-seconds", type=float, default=60.0, help="bound on ticket wait")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the run's database")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--note", default="", help="a remark for the report (what was measured)")
    parser.add_argument(
        "--micro-from",
        type=Path,
        default=servers.ROOT,
        help="the checkout whose bench/micro_*.py (and ivr/) to run (default: this one)",
    )
    parser.add_argument("--micro-child", help=argparse.SUPPRESS)
    parser.add_argument("--micro-kwargs", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--micro-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 4.0 if args.quick else 20.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    wanted = wanted_phases(args)
    known = {phase.name for phase in all_http_phases(args)} | set(SCALE_CASES)
    unknown = wanted - known
    if unknown:  # stops here, before anything is started
        raise SystemExit(
            f"--phases: no phase {', '.join(sorted(unknown))} (have: "
            + ", ".join([*(p.name for p in all_http_phases(args)), *SCALE_CASES])
            + ")"
        )
    return args


def wanted_phases(args: argparse.Namespace) -> set[str]:
    """The names given to --phases (empty: the defaults)."""
    return {name.strip() for name in args.phases.split(",") if name.strip()}


def scale_cases(args: argparse.Namespace) -> list[str]:
    """The scale cases this run makes, in order."""
    if args.only in ("http", "micro"):
        return []
    wanted = wanted_phases(args)
    if wanted:
        return [name for name in SCALE_CASES if name in wanted]
    return list(DEFAULT_SCALE_CASES)


def instance_env(env: dict[str, str], number: int) -> dict[str, str]:
    """The settings of instance `number` (1, 2, ...): the same stores, secret, token and public URL
    for all (docs/operators/instances.md), a spool folder of its own (as on its
    own host), and `IVR_WRITER=off` (the tickets are written by the one `ivr worker`)."""
    spool = env["IVR_SPOOL_DIR"] if number == 1 else f"{env['IVR_SPOOL_DIR']}-{number}"
    return {**env, "IVR_WRITER": "off", "IVR_SPOOL_DIR": spool}


def instance_log(log: Path, number: int) -> Path:
    """Instance 1 logs to `log`, instance n to `log` with `-n` before the suffix."""
    return log if number == 1 else log.with_name(f"{log.stem}-{number}{log.suffix}")


def launch_app(
    port: int, env: dict[str, str], log: Path, more_ports: Sequence[int] = ()
) -> list[subprocess.Popen[bytes]]:
    """Start the service with docs/operators/production.md's own commands (read from that page, only the
    port changed); returns every process it started: one `ivr serve` (gunicorn's master and its
    web workers) per port, `port` first, then `more_ports` (each a further instance, same
    settings), and last the one `ivr worker` writing the tickets."""
    serve, worker_arguments = production.read()
    started = []
    for number, p in enumerate([port, *more_ports], start=1):
        with instance_log(log, number).open("ab") as out:
            process = subprocess.Popen(
                serve.argv(p),
                cwd=servers.ROOT,
                env={**instance_env(env, number), **serve.env},
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        started.append(process)
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", *worker_arguments],
            cwd=servers.ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return [*started, worker]


def configurations(instances: int) -> list[str]:
    """The targets each phase runs against, in order: app (and with 2 the proxied ones), floor."""
    if instances == 1:
        return ["app", "floor"]
    return list(CONFIGURATIONS)


def nginx_upstreams(name: str, ports: Sequence[int]) -> list[int] | None:
    """The instance ports nginx sits in front of for target `name`; None: reached directly."""
    if name == "app-nginx":
        return list(ports[:1])
    if name == "app-2-nginx":
        return list(ports[:2])
    return None


def all_http_phases(args: argparse.Namespace) -> list[Phase]:
    """Every app-against-floor load shape: paced calls at each concurrency, then flat out."""
    shapes = [
        Phase(
            f"paced-{int(calls)}",
            int(calls),
            args.pause,
            args.seconds,
            caller_pace=args.caller_pace,
        )
        for calls in args.paced.split(",")
        if calls.strip()
    ]
    return [*shapes, Phase("flat-out", args.flat_out_calls, 0.0, args.seconds)]


def phases(args: argparse.Namespace) -> list[Phase]:
    """The app-against-floor phases this run makes (none with `--only scale` or `micro`)."""
    if args.only in ("scale", "micro"):
        return []
    wanted = wanted_phases(args)
    return [phase for phase in all_http_phases(args) if not wanted or phase.name in wanted]


def label(phase: Phase) -> str:
    """How a phase is named in the report."""
    if phase.caller_pace:
        return f"{phase.calls} concurrent calls at a caller's pace"
    if phase.pause:
        return f"{phase.calls} concurrent calls, {phase.pause:g} s between webhooks"
    return f"flat out: {phase.calls} concurrent calls, no pause"


def count_tickets(
    database_url: str, call_sids: list[str], paths: Sequence[list[str]] = (EXPECTED_MENU_PATH,)
) -> dict[str, int]:
    """How many of these calls have a ticket in the run's database, and how complete the tickets
    are (the menu path one of `paths`)."""
    query = """
        SELECT count(*),
               count(*) FILTER (WHERE ended_at IS NOT NULL),
               count(*) FILTER (WHERE menu_path::jsonb = ANY(%(paths)s::jsonb[])),
               count(*) FILTER (WHERE outcome IS NOT NULL),
               count(*) FILTER (WHERE ended_at IS NOT NULL AND outcome IS NOT NULL
                                AND menu_path::jsonb = ANY(%(paths)s::jsonb[]))
        FROM tickets WHERE call_sid = ANY(%(sids)s)
    """
    with psycopg.connect(database_url, connect_timeout=5) as connection:
        row = connection.execute(
            query, {"paths": [json.dumps(path) for path in paths], "sids": call_sids}
        ).fetchone()
    assert row is not None
    written, ended, path, outcome, complete = row
    return {
        "written": written,
        "ended": ended,
        "menu_path": path,
        "outcome": outcome,
        "complete": complete,
    }


QUIET_SECONDS = 5.0
"""Ticket counts that have not moved for this long are final (the writer drains a backlog in
batches, and runs at a lower CPU priority than the web workers)."""


def settled_tickets(
    database_url: str,
    call_sids: list[str],
    timeout: float,
    paths: Sequence[list[str]] = (EXPECTED_MENU_PATH,),
) -> dict[str, Any]:
    """The ticket counts once complete or not moving any more (writing is asynchronous), bounded."""
    started = time.monotonic()
    previous: dict[str, int] | None = None
    moved = started
    while True:
        counts = count_tickets(database_url, call_sids, paths)
        now = time.monotonic()
        if counts != previous:
            moved = now
        waited = now - started
        quiet = now - moved >= QUIET_SECONDS
        if counts["complete"] == len(call_sids) or quiet or waited >= timeout:
            return {**counts, "waited_seconds": round(waited, 1)}
        previous = counts
        time.sleep(1.0)


def run_micro_child(args: argparse.Namespace) -> int:
    """In a child process: one micro-benchmark's `run(...)`, its result written as JSON."""
    module = importlib.import_module(f"bench.{args.micro_child}")
    offered: dict[str, Any] = json.loads(args.micro_kwargs)
    parameters = inspect.signature(module.run).parameters
    missing = [
        name
        for name, p in parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in offered
    ]
    if missing:
        outcome: dict[str, Any] = {"skipped": f"run() needs {', '.join(missing)}"}
    else:
        chosen = {k: v for k, v in offered.items() if k in parameters}
        started = time.monotonic()
        result = module.run(**chosen)
        outcome = {
            "arguments": chosen,
            "seconds": round(time.monotonic() - started, 1),
            "result": json.loads(json.dumps(result, default=str)),
        }
    args.micro_out.write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    return 0


def run_micro(name: str, offered: dict[str, Any], work: Path, root: Path) -> dict[str, Any]:
    """One micro-benchmark of checkout `root` in its own process (bounded in time).

    A module that does not exist is reported as such; so is one that fails.
    """
    if not (root / "bench" / f"{name}.py").exists():
        return {"skipped": f"bench/{name}.py does not exist (yet)"}
    out = work / f"{name}.json"
    command = [sys.executable, "-m", "bench.run", "--micro-child", name]
    command += ["--micro-kwargs", json.dumps(offered), "--micro-out", str(out)]
    print(f"micro-benchmark {name} ...", flush=True)
    try:
        done = subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=MICRO_TIMEOUT_SECONDS,
            env=servers.clean_env(),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {MICRO_TIMEOUT_SECONDS} s"}
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " / ".join(tail)}
    loaded: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return loaded


P99_WITHIN = 1.5
"""Issue 22: at 100 concurrent calls, p99 within 1.5x of the floor (whole calls and per webhook);
with 1,000 agents, hold and join p99 within 1.5x of the same run with 10 agents."""
THROUGHPUT_AT_LEAST = 0.6
RSS_GROWTH_AT_MOST = 1.10


def targets(
    summary: dict[str, Any], runs: list[dict[str, Any]], scaled: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The issue's targets, with what was measured (reported, never asserted)."""
    found: list[dict[str, Any]] = []
    scaled = scaled or {}
    for name in summary:
        if not name.startswith("paced-") or name == "paced-20":
            continue
        row, calls = summary[name]["all"], summary[name]["calls"]
        r, rc = row["ratio"]["p99_ms"], calls["ratio"]["server_p99_ms"]
        found += [
            {
                "name": f"whole calls' p99 (server time) within {P99_WITHIN:g}× of the floor, {name}",
                "measured": f"{calls['app']['server_p99_ms']:g} ms vs "
                f"{calls['floor']['server_p99_ms']:g} ms (×{rc})",
                "met": None if rc is None else rc <= P99_WITHIN,
            },
            {
                "name": f"per-webhook p99 within {P99_WITHIN:g}× of the floor, {name}",
                "measured": f"{row['app']['p99_ms']:g} ms vs {row['floor']['p99_ms']:g} ms (×{r})",
                "met": None if r is None else r <= P99_WITHIN,
            },
        ]
    if "flat-out" in summary:
        row = summary["flat-out"]["all"]
        r = row["ratio"]["rps"]
        found.append(
            {
                "name": f"flat-out throughput at least {THROUGHPUT_AT_LEAST:g}× the floor's",
                "measured": f"{row['app']['rps']:g} vs {row['floor']['rps']:g} requests/s (×{r})",
                "met": None if r is None else r >= THROUGHPUT_AT_LEAST,
            }
        )
    for case in ("agents_idle_elsewhere", "agents_busy_here"):
        if case not in scaled:
            continue
        comparison = scaled[case]["comparison"]
        for kind in ("hold", "join"):
            r = comparison[kind]["ratio"]
            found.append(
                {
                    "name": f"{case}: {kind} p99 with {comparison['agents']} agents within "
                    f"{P99_WITHIN:g}× of {comparison['baseline_agents']}",
                    "measured": f"{comparison[kind]['scaled_p99_ms']:g} ms vs "
                    f"{comparison[kind]['baseline_p99_ms']:g} ms (×{r})",
                    "met": None if r is None else r <= P99_WITHIN,
                }
            )
    if scaled:
        redis_errors = sum(run.get("redis_errors", 0) for run in runs)
        no_position = sum(run["whole_calls"]["no_position"] for run in runs if "whole_calls" in run)
        found += [
            {
                "name": "0 Redis errors (`ivr_redis_errors_total`) in every app run",
                "measured": f"{redis_errors:g} errors",
                "met": redis_errors == 0,
            },
            {
                "name": "(also) every caller on hold told their place",
                "measured": f"{no_position} calls without",
                "met": no_position == 0,
            },
        ]
    if "soak" in scaled:
        growth = scaled["soak"]["rss"]
        worst = max(growth.items(), key=lambda item: item[1]["ratio"] or 0.0, default=None)
        found.append(
            {
                "name": f"soak: each process's RSS within {RSS_GROWTH_AT_MOST:g}× of its size at "
                f"{scaled['soak']['settled_seconds']:g} s",
                "measured": "no samples"
                if worst is None
                else f"highest {worst[0]}: {worst[1]['settled_mib']:g} → {worst[1]['last_mib']:g} "
                f"MiB (×{worst[1]['ratio']})",
                "met": None
                if worst is None or worst[1]["ratio"] is None
                else all(
                    g["ratio"] is not None and g["ratio"] <= RSS_GROWTH_AT_MOST
                    for g in growth.values()
                ),
            }
        )
    if runs:
        errors = sum(run["stats"]["all"]["errors"] for run in runs)
        app_runs = [run for run in runs if run["target"] != "floor"]
        short = [run for run in app_runs if run["tickets"]["written"] != run["calls"]]
        incomplete = [run for run in app_runs if run["tickets"]["complete"] != run["calls"]]
        found += [
            {"name": "0 errors in every run", "measured": f"{errors} errors", "met": errors == 0},
            {
                "name": "tickets = calls in every run",
                "measured": f"{len(short)} of {len(app_runs)} runs short",
                "met": not short,
            },
            {
                "name": "every ticket complete: ended, menu path, outcome",
                "measured": f"{len(incomplete)} of {len(app_runs)} runs with incomplete tickets",
                "met": not incomplete,
            },
        ]
    return found


class Bench:
    """One benchmark run: the processes it started, and what it measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.redis = servers.RedisServer(production.redis_options(), self.work / "redis")
        self.database_url: str | None = None
        self.token = secrets.token_hex(16)
        self.secret = secrets.token_urlsafe(32)
        # Every process (web workers, the ivr worker, this one's CallQueue) keeps one time.
        self.anchor = datetime.now(UTC)
        self.runs: list[dict[str, Any]] = []
        self.phase_runs: dict[tuple[str, str], list[PhaseRun]] = {}
        self.checks: dict[str, Any] = {}
        self.scaled: dict[str, Any] = {}
        self.instance_ports: list[int] = []
        self.nginx: proxy.Nginx | None = None
        self.markers = loadgen.position_markers(servers.ROOT / "voice_prompts")

    def close(self) -> None:
        """Stop everything we started, newest first, by PID; then drop our database (unless
        `--keep-db`), now that no server of ours holds a connection to it."""
        if self.nginx is not None:
            self.nginx.stop()
        for process in reversed(self.processes):
            servers.stop(process)
        self.redis.stop()
        if self.database_url is None:
            return
        if self.args.keep_db:
            print(f"kept the database {servers.name_of(self.database_url)}", file=sys.stderr)
            return
        try:
            servers.drop_database(self.database_url)
        except psycopg.Error as exc:
            print(f"could not drop {servers.name_of(self.database_url)}: {exc}", file=sys.stderr)

    def start_stores(self) -> str:
        """Our redis-server (AOF as docs/operators/production.md) and a database of our own, at the newest
        schema."""
        self.redis.start()
        self.database_url = servers.create_database()
        servers.upgrade_database(servers.clean_env(DATABASE_URL=self.database_url))
        return self.database_url

    def app_env(
        self, database_url: str, public_url: str, rules: Path | None = None, *, proxies: str = ""
    ) -> dict[str, str]:
        """The settings every process of the app gets (docs/operators/production.md's variables)."""
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url(0),
            "TWILIO_AUTH_TOKEN": self.token,
            "IVR_SECRET": self.secret,
            "PUBLIC_BASE_URL": public_url,
            # Anchored: every process (both instances' gunicorn workers, the ivr worker) keeps the
            # same time, whenever it started (docs/operators/instances.md).
            "IVR_CLOCK": f"{CLOCK}@{self.anchor.isoformat()}",
            "IVR_SPOOL_DIR": str(self.work / "spool"),
        }
        # Stopping a measured server needs no drain (nothing routes to it any more); the rolling
        # restart sets the production default back.
        settings["IVR_DRAIN_SECONDS"] = "0"
        if proxies:
            settings["IVR_TRUSTED_PROXIES"] = proxies  # nginx on this host (instances.md)
        if rules is not None:
            settings["ROUTING_RULES"] = str(rules)
        return servers.clean_env(**settings)

    def start_servers(self, database_url: str) -> list[Target]:
        """The app, one captured call, then the floor serving what the app answered; with
        `--instances 2` a second instance and our nginx in front (started per run, see
        `prepare`). Returns the targets in the order each phase runs them."""
        two = self.args.instances == 2
        if two:
            self.nginx = proxy.Nginx(self.work / "nginx", servers.free_port())
        public = self.nginx.url if self.nginx is not None else None
        # With a proxy, PUBLIC_BASE_URL is its address, also for requests that reach instance 1
        # directly (docs/operators/instances.md: "the safer choice when the instances can also be
        # reached without nginx").
        app = Target("app", servers.free_port(), self.token, public)
        env = self.app_env(database_url, app.base_url, proxies="127.0.0.1" if two else "")
        more_ports = [servers.free_port()] if two else []
        self.instance_ports = [app.port, *more_ports]
        started = launch_app(app.port, env, self.work / "app.log", more_ports)
        self.processes += started
        # `started` ends with the ivr worker, which has no port.
        for port, process in zip(self.instance_ports, started, strict=False):
            servers.wait_until_ok(f"http://127.0.0.1:{port}/healthz", process)
        documents = asyncio.run(loadgen.capture_call(app))
        captured = {
            document_key(path, digits): body.decode("utf-8")
            for (path, digits), body in documents.items()
        }
        (self.work / "floor_documents.json").write_text(json.dumps(captured), encoding="utf-8")
        floor = Target("floor", servers.free_port(), self.token)
        floor_env = servers.clean_env(
            FLOOR_DOCUMENTS=str(self.work / "floor_documents.json"),
            TWILIO_AUTH_TOKEN=self.token,
            PUBLIC_BASE_URL=floor.base_url,
        )
        serve, _ = production.read()
        process = servers.gunicorn(
            "bench.floor:app",
            floor.port,
            floor_env,
            self.work / "floor.log",
            serve.gunicorn_settings(),
        )
        self.processes.append(process)
        servers.wait_until_ok(f"{floor.base_url}/healthz", process)
        self.checks["captured_documents"] = len(captured)
        proxied = [
            Target(name, self.nginx.port, self.token)
            for name in CONFIGURATIONS
            if self.nginx is not None and nginx_upstreams(name, self.instance_ports)
        ]
        return [app, *proxied, floor]

    def rolling_restart(self, database_url: str) -> dict[str, Any]:
        """bench/rolling.py: two instances and the ivr worker as docs/operators/production.md runs them,
        nginx in front, `--rolling-calls` calls while each instance is restarted in turn."""
        self.nginx = proxy.Nginx(self.work / "nginx", servers.free_port())
        ports = [servers.free_port(), servers.free_port()]
        env = self.app_env(database_url, self.nginx.url, proxies="127.0.0.1")
        env["IVR_DRAIN_SECONDS"] = str(DEFAULT_DRAIN_SECONDS)  # production's
        log = self.work / "app.log"
        started = launch_app(ports[0], env, log, ports[1:])
        self.processes += started
        for port, process in zip(ports, started, strict=False):
            servers.wait_until_ok(f"http://127.0.0.1:{port}/healthz", process)
        self.instance_ports = ports
        self.nginx.serve(ports)
        serving = dict(enumerate(started[:2], start=1))

        def restart_all() -> list[dict[str, Any]]:
            timings = []
            for round_number in range(1, self.args.rolling_rounds + 1):
                for number, port in enumerate(ports, start=1):
                    old = serving[number]
                    new, timing = rolling.restart(
                        old, port, instance_env(env, number), instance_log(log, number)
                    )
                    self.processes[self.processes.index(old)] = new
                    serving[number] = new
                    assert self.nginx is not None
                    timing["back_in_nginx_seconds"] = rolling.back_in_nginx(self.nginx.served, port)
                    timings.append(
                        {"round": round_number, "instance": f"instance {number}", **timing}
                    )
                    print(f"restarted: {timings[-1]}", file=sys.stderr)
            return timings

        target = Target("app-2-nginx", self.nginx.port, self.token)
        run, timings = rolling.measure(
            target,
            self.args.rolling_calls,
            self.args.pause,
            restart_all,
            self.args.drain_seconds,
            self.markers,
        )
        tickets = settled_tickets(database_url, run.call_sids, self.args.ticket_seconds)
        for process in serving.values():  # a second SIGTERM skips the drain: nothing comes now
            rolling.stop_at_once(process)
        return {
            "calls_concurrent": self.args.rolling_calls,
            "pause_seconds": self.args.pause,
            "rounds": self.args.rolling_rounds,
            "instance_drain_seconds": DEFAULT_DRAIN_SECONDS,
            "webhooks": rolling.failures(run),
            "tickets": tickets,
            "restarts": timings,
            "wall_seconds": round(run.wall_seconds, 1),
        }

    def prepare(self, target: Target) -> None:
        """Before a run against `target`: nginx in front of the instances it stands for."""
        upstreams = nginx_upstreams(target.name, self.instance_ports)
        if upstreams is not None:
            assert self.nginx is not None
            self.nginx.serve(upstreams)

    def instance_name(self, address: str) -> str:
        """The name of an upstream address in reports (instance 1, 2, ...), else the address."""
        for number, port in enumerate(self.instance_ports, start=1):
            if address == f"127.0.0.1:{port}":
                return f"instance {number}"
        return address

    @staticmethod
    def unsigned_status(target: Target) -> int:
        """The status an unsigned webhook gets (403 when signatures are checked)."""

        async def post() -> int:
            connection = loadgen.Connection(target.port)
            try:
                status, _ = await connection.post("/voice/incoming", b"CallSid=CAx", {})
            finally:
                connection.close()
            return status

        return asyncio.run(post())

    def warm_up(self, target: Target) -> None:
        """A few seconds of flat-out calls: imports, pools and compiled scripts paid for."""
        phase = Phase("warm-up", 8, 0.0, 2.0 if self.args.quick else 4.0)
        asyncio.run(
            loadgen.run_phase(
                target, phase, self.args.drain_seconds, keep_alive=self.args.keep_alive
            )
        )

    def measure(self, targets: list[Target]) -> None:
        """Warm every target up, then every phase for each target in turn, `rounds` times."""
        refused: dict[str, int] = {}
        for target in targets:
            self.prepare(target)
            refused[target.name] = self.unsigned_status(target)
            self.warm_up(target)
        self.checks["unsigned_refused"] = refused
        for round_number in range(1, self.args.rounds + 1):
            for phase in phases(self.args):
                for index, target in enumerate(targets):
                    self.run_one(round_number, phase, target, index)

    def redis_errors(self, ports: Sequence[int]) -> float:
        """`ivr_redis_errors_total` summed over the app instances on `ports`."""
        return sum(
            scale.metric_total(scale.scrape(f"http://127.0.0.1:{p}"), scale.REDIS_ERRORS)
            for p in ports
        )

    def run_one(
        self,
        round_number: int,
        phase: Phase,
        target: Target,
        index: int = 0,
        *,
        app_ports: Sequence[int] | None = None,
        paths: Sequence[list[str]] = (EXPECTED_MENU_PATH,),
        label: str | None = None,
    ) -> PhaseRun:
        """One phase against one target, and for the app the tickets its calls left and the
        Redis errors it counted (`app_ports`: the instances it counts them on)."""
        self.prepare(target)
        name = label or phase.name
        print(f"round {round_number}: {name} against the {target.name} ...", flush=True)
        seed = round_number * 10 + index
        is_app = target.name != "floor"
        if app_ports is None:
            upstreams = nginx_upstreams(target.name, self.instance_ports)
            app_ports = upstreams if upstreams is not None else [target.port]
        errors_before = self.redis_errors(app_ports) if is_app else 0.0
        cpu = time.process_time()
        run = asyncio.run(
            loadgen.run_phase(
                target,
                phase,
                self.args.drain_seconds,
                seed,
                keep_alive=self.args.keep_alive,
                markers=self.markers,
            )
        )
        cpu = time.process_time() - cpu
        self.phase_runs.setdefault((name, target.name), []).append(run)
        record: dict[str, Any] = {
            "round": round_number,
            "phase": name,
            "target": target.name,
            "calls": len(run.call_sids),
            "cancelled_calls": run.cancelled_calls,
            "wall_seconds": round(run.wall_seconds, 1),
            # The load generator shares the cores with the servers: how much it took of them.
            "loadgen_cpu_percent": round(100 * cpu / run.wall_seconds, 1),
            "stats": {kind: report.kind_stats([run], kind) for kind in report.ROWS},
            "whole_calls": report.call_stats(run.calls),
        }
        if nginx_upstreams(target.name, self.instance_ports) is not None:
            assert self.nginx is not None
            served = self.nginx.served()
            record["served_by"] = {self.instance_name(a): n for a, n in sorted(served.items())}
        if is_app:
            record["redis_errors"] = self.redis_errors(app_ports) - errors_before
            assert self.database_url is not None
            record["tickets"] = settled_tickets(
                self.database_url, run.call_sids, self.args.ticket_seconds, paths
            )
        all_stats, calls = record["stats"]["all"], record["whole_calls"]
        print(
            f"  {record['calls']} calls, {all_stats['requests']} requests, "
            f"p50 {all_stats['p50_ms']} ms, p99 {all_stats['p99_ms']} ms, "
            f"whole calls p99 {calls['server_p99_ms']} ms, "
            f"{all_stats['rps']} req/s, {all_stats['errors']} errors, "
            f"{calls['no_position']} of {calls['reached_hold']} holding without a position, "
            f"load generator {record['loadgen_cpu_percent']}% CPU"
            + (f", Redis errors {record['redis_errors']:g}" if "redis_errors" in record else "")
            + (f", tickets {record['tickets']}" if "tickets" in record else "")
            + (f", served by {record['served_by']}" if "served_by" in record else ""),
            flush=True,
        )
        self.runs.append(record)
        return run

    # --- scale cases ------------------------------------------------------------------------

    def start_app(
        self, rules: Path | None, log: Path
    ) -> tuple[Target, list[subprocess.Popen[bytes]]]:
        """An app of its own (docs/operators/production.md's commands) with `rules`, for one scale run."""
        assert self.database_url is not None
        target = Target("app", servers.free_port(), self.token)
        env = self.app_env(self.database_url, target.base_url, rules)
        started = launch_app(target.port, env, log)
        self.processes += started
        servers.wait_until_ok(f"{target.base_url}/healthz", started[0], timeout=60)
        return target, started

    def stop_app(self, started: list[subprocess.Popen[bytes]]) -> None:
        """Stop one scale run's app, and empty our Redis for the next (its agents, its queue)."""
        for process in reversed(started):
            servers.stop(process)
            self.processes.remove(process)
        redis.Redis.from_url(self.redis.url(0)).flushall()

    def call_queue(self) -> CallQueue:
        """The app's queue in our Redis, on the app's clock."""
        client = redis.Redis.from_url(self.redis.url(0))
        return CallQueue(client, OffsetClock(parse_instant(CLOCK), self.anchor))

    def log_in(self, count: int, here: bool) -> dict[str, int]:
        """Log `count` generated agents in: available on other lines, or (`here`) serving the
        calls' line and each busy with a call of its own (entered, handed over, connected)."""
        queue = self.call_queue()
        for number in range(1, count + 1):
            agent = scale.agent_id(number)
            if not here:
                queue.agent_available(agent, [(q, scale.HERE[1]) for q in scale.ELSEWHERE_QUEUES])
                continue
            queue.agent_available(agent, [scale.HERE])
            call_sid = loadgen.new_call_sid()
            _, assignments = queue.enter(call_sid, *scale.HERE, 30)
            if not any(a.agent == agent for a in assignments):
                raise RuntimeError(f"{agent} was not handed its call: {assignments}")
            queue.connected(call_sid)
        return self.agent_counts(count)

    def agent_counts(self, count: int) -> dict[str, int]:
        """How many of the `count` generated agents are available, busy and offline now."""
        statuses = self.call_queue().agent_statuses(
            [scale.agent_id(n) for n in range(1, count + 1)]
        )
        counted: dict[str, int] = {}
        for status in statuses.values():
            counted[str(status)] = counted.get(str(status), 0) + 1
        return counted

    def scale_run(
        self,
        case: str,
        round_number: int,
        variant: str,
        rules: dict[str, Any],
        phase: Phase,
        agents: int = 0,
        here: bool = False,
        paths: Sequence[list[str]] = (EXPECTED_MENU_PATH,),
    ) -> tuple[PhaseRun, dict[str, Any]]:
        """One run of a scale case: its own app with `rules`, `agents` logged in, the phase."""
        rules_path = scale.write_rules(rules, self.work / f"{case}-{variant}.yaml")
        target, started = self.start_app(rules_path, self.work / f"{case}.log")
        try:
            logged_in = self.log_in(agents, here) if agents else {}
            self.warm_up(target)
            label = f"{case} ({variant})"
            run = self.run_one(
                round_number, phase, target, app_ports=[target.port], paths=paths, label=label
            )
            record = self.runs[-1]
            record["agents_at_start"] = logged_in
            record["agents_at_end"] = self.agent_counts(agents) if agents else {}
            return run, record
        finally:
            self.stop_app(started)
            self.checks[f"{case}_log"] = _log_problems(self.work / f"{case}.log")

    def agents_case(self, case: str) -> dict[str, Any]:
        """1,000 agents against 10, rounds interleaved: hold and join p99 and their ratio."""
        here = case == "agents_busy_here"
        base = scale.load_base(servers.ROOT / "routing_rules.yaml")
        phase = Phase(
            case,
            self.args.scale_calls,
            self.args.pause,
            self.args.seconds,
            caller_pace=self.args.caller_pace,
        )
        counts = {"baseline": self.args.baseline_agents, "scaled": self.args.scale_agents}
        runs: dict[str, list[PhaseRun]] = {"baseline": [], "scaled": []}
        records: dict[str, list[dict[str, Any]]] = {"baseline": [], "scaled": []}
        for round_number in range(1, self.args.rounds + 1):
            for which, count in counts.items():
                rules = scale.agents_rules(base, count, here)
                run, record = self.scale_run(
                    case, round_number, f"{count} agents", rules, phase, count, here
                )
                runs[which].append(run)
                records[which].append(record)
        return scale_summary(case, runs, records, counts)

    def busy_lines_case(self) -> dict[str, Any]:
        """Callers in 50 lines at once."""
        base = scale.load_base(servers.ROOT / "routing_rules.yaml")
        rules, routes = scale.busy_lines_rules(base)
        calls = max(self.args.scale_calls, len(routes))
        phase = Phase(
            "busy_lines_50",
            calls,
            self.args.pause,
            self.args.seconds,
            tuple(routes),
            caller_pace=self.args.caller_pace,
        )
        paths = [scale.route_menu_path(route) for route in routes]
        runs, records = [], []
        for round_number in range(1, self.args.rounds + 1):
            run, record = self.scale_run(
                "busy_lines_50", round_number, f"{len(routes)} lines", rules, phase, paths=paths
            )
            runs.append(run)
            records.append(record)
        return {
            "label": f"{calls} concurrent calls in {len(routes)} lines (13 queues × 4 languages)",
            "lines": len(routes),
            "stats": {kind: report.kind_stats(runs, kind) for kind in report.ROWS},
            "calls": report.call_stats([c for run in runs for c in run.calls]),
            "redis_errors": sum(r["redis_errors"] for r in records),
        }

    def soak(self) -> dict[str, Any]:
        """`--soak-calls` concurrent calls for `--soak-seconds`, the RSS of every process of the
        app and of redis-server sampled every `--soak-sample-seconds`."""
        seconds = self.args.soak_seconds
        settled = min(300.0, seconds / 5)
        phase = Phase(
            "soak",
            self.args.soak_calls,
            self.args.pause,
            seconds,
            caller_pace=self.args.caller_pace,
        )
        target, started = self.start_app(None, self.work / "soak.log")
        assert self.redis.process is not None
        redis_pid = self.redis.process.pid
        try:
            self.warm_up(target)
            print(f"soak: {phase.calls} concurrent calls for {seconds:g} s ...", flush=True)
            errors_before = self.redis_errors([target.port])
            run, samples = asyncio.run(
                sampled_phase(
                    target,
                    phase,
                    self.args.drain_seconds,
                    self.args.soak_sample_seconds,
                    lambda: scale.processes_to_watch(started[0].pid, started[-1].pid, redis_pid),
                    keep_alive=self.args.keep_alive,
                    markers=self.markers,
                )
            )
            redis_errors = self.redis_errors([target.port]) - errors_before
            assert self.database_url is not None
            tickets = settled_tickets(self.database_url, run.call_sids, self.args.ticket_seconds)
        finally:
            self.stop_app(started)
            self.checks["soak_log"] = _log_problems(self.work / "soak.log")
        windows = soak_windows(run, settled)
        growth = scale.rss_growth(samples, settled)
        for name, g in growth.items():
            print(f"  {name}: {g['settled_mib']} → {g['last_mib']} MiB (×{g['ratio']})", flush=True)
        record = {
            "round": 1,
            "phase": "soak",
            "target": "app",
            "calls": len(run.call_sids),
            "cancelled_calls": run.cancelled_calls,
            "wall_seconds": round(run.wall_seconds, 1),
            "stats": {kind: report.kind_stats([run], kind) for kind in report.ROWS},
            "whole_calls": report.call_stats(run.calls),
            "redis_errors": redis_errors,
            "tickets": tickets,
        }
        self.runs.append(record)
        return {
            "label": f"{phase.calls} concurrent calls for {seconds:g} s",
            "seconds": seconds,
            "settled_seconds": settled,
            "sample_seconds": self.args.soak_sample_seconds,
            "rss": growth,
            "samples": [{"seconds": round(s.seconds, 1), "rss_kib": s.rss} for s in samples],
            "windows": windows,
            "stats": record["stats"],
            "calls": record["whole_calls"],
            "redis_errors": redis_errors,
        }

    def scale_all(self) -> None:
        """Every scale case chosen, in order."""
        for case in scale_cases(self.args):
            if case == "soak":
                self.scaled[case] = self.soak()
            elif case == "busy_lines_50":
                self.scaled[case] = self.busy_lines_case()
            else:
                self.scaled[case] = self.agents_case(case)

    def micro(self, database_url: str) -> dict[str, Any]:
        """Every micro-benchmark module that exists, each in its own process."""
        offered: dict[str, Any] = {
            "redis_url": self.redis.url(1),
            "database_url": database_url,
            "quick": self.args.quick,
        }
        if self.args.quick:
            offered["sizes"] = [100, 1_000]
        root = self.args.micro_from.resolve()
        return {name: run_micro(name, offered, self.work, root) for name in MICRO_MODULES}

    def results(
        self, started_at: str, wall_seconds: float, micro: dict[str, Any]
    ) -> dict[str, Any]:
        """Everything measured, as plain data."""
        chosen = phases(self.args)
        serve, worker_arguments = production.read()
        summary = {
            phase.name: report.phase_summary(
                self.phase_runs.get((phase.name, "app"), []),
                self.phase_runs.get((phase.name, "floor"), []),
            )
            for phase in chosen
        }
        self.checks["app_log"] = _log_problems(self.work / "app.log")
        if len(self.instance_ports) > 1:
            self.checks["app_log_instance_2"] = _log_problems(self.work / "app-2.log")
        found = {
            "started_at": started_at,
            "wall_seconds": round(wall_seconds, 1),
            "commit": _git("rev-parse", "--short", "HEAD") or "unknown (not a git checkout)",
            "dirty": "+changes" if _git("status", "--porcelain") else "",
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            },
            "settings": {
                "quick": self.args.quick,
                "only": self.args.only,
                "note": self.args.note,
                "micro_from": str(self.args.micro_from.resolve()),
                "seconds": self.args.seconds,
                "rounds": self.args.rounds,
                "pause": self.args.pause,
                "caller_pace": self.args.caller_pace,
                "instances": self.args.instances,
                "phases": self.args.phases,
                "scale_cases": scale_cases(self.args),
                "connections": "keep-alive, one per call"
                if self.args.keep_alive
                else "a new connection per webhook",
                "app_command": serve.shown(),
                "worker_command": "ivr " + " ".join(worker_arguments),
                "redis": list(production.REDIS_PERSISTENCE),
                "gunicorn": serve.gunicorn_settings(),
                "database": servers.name_of(self.database_url) if self.database_url else None,
                "clock": CLOCK,
                "call_script": [step.kind for step in loadgen.CALL_SCRIPT] + ["status"],
            },
            "checks": self.checks,
            "phases": [
                {"name": p.name, "label": label(p), "calls": p.calls, "pause": p.pause}
                for p in chosen
            ],
            "summary": summary,
            "scale": self.scaled,
            "targets": targets(summary, self.runs, self.scaled),
            "runs": self.runs,
            "micro": micro,
        }
        if self.args.instances == 2:
            found["instances"] = self.instances_results(chosen)
        return found

    def instances_results(self, chosen: list[Phase]) -> dict[str, Any]:
        """Per phase, every configuration's figures, ratios to the floor, and the scaling."""
        names = configurations(self.args.instances)
        summary = {
            phase.name: report.configurations_summary(
                {name: self.phase_runs.get((phase.name, name), []) for name in names},
                {
                    name: [r for r in self.runs if r["phase"] == phase.name and r["target"] == name]
                    for name in names
                },
            )
            for phase in chosen
        }
        return {
            "count": self.args.instances,
            "configurations": [{"name": n, "label": CONFIGURATIONS[n]} for n in names],
            "gunicorn_per_instance": production.read()[0].gunicorn_settings(),
            "nginx": {"worker_processes": proxy.WORKER_PROCESSES, "upstream_keepalive": False},
            "summary": summary,
            "scaling": {name: report.scaling(row) for name, row in summary.items()},
        }


def scale_summary(
    case: str,
    runs: dict[str, list[PhaseRun]],
    records: dict[str, list[dict[str, Any]]],
    counts: dict[str, int],
) -> dict[str, Any]:
    """An agents case: per variant (baseline: 10 agents, scaled: 1,000) the figures per kind, of
    whole calls, the Redis errors and the agents' states; and scaled / baseline of the p99 of
    `hold`, `join`, every webhook and whole calls."""
    variants: dict[str, Any] = {}
    for which, mine in runs.items():
        variants[which] = {
            "agents": counts[which],
            "stats": {kind: report.kind_stats(mine, kind) for kind in report.ROWS},
            "calls": report.call_stats([c for run in mine for c in run.calls]),
            "redis_errors": sum(r["redis_errors"] for r in records[which]),
            "agents_at_end": [r["agents_at_end"] for r in records[which]],
        }
    comparison: dict[str, Any] = {
        "agents": counts["scaled"],
        "baseline_agents": counts["baseline"],
    }
    for kind in ("hold", "join", "all"):
        scaled_p99 = variants["scaled"]["stats"][kind]["p99_ms"]
        baseline_p99 = variants["baseline"]["stats"][kind]["p99_ms"]
        comparison[kind] = {
            "scaled_p99_ms": scaled_p99,
            "baseline_p99_ms": baseline_p99,
            "ratio": report.ratio(scaled_p99, baseline_p99),
        }
    scaled_calls = variants["scaled"]["calls"]["server_p99_ms"]
    baseline_calls = variants["baseline"]["calls"]["server_p99_ms"]
    comparison["calls"] = {
        "scaled_p99_ms": scaled_calls,
        "baseline_p99_ms": baseline_calls,
        "ratio": report.ratio(scaled_calls, baseline_calls),
    }
    where = (
        "on the calls' line, each busy" if case == "agents_busy_here" else "on other lines, idle"
    )
    return {
        "label": f"{counts['scaled']} agents {where}, against {counts['baseline']}",
        "variants": variants,
        "comparison": comparison,
    }


async def sampled_phase(
    target: Target,
    phase: Phase,
    drain_seconds: float,
    every: float,
    watched: Callable[[], dict[str, int]],
    *,
    keep_alive: bool,
    markers: Sequence[str],
) -> tuple[PhaseRun, list[scale.MemorySample]]:
    """`phase` against `target`, the RSS of the `watched()` processes read every `every` seconds
    meanwhile (the process list is read again each time: a replaced worker shows as a new one)."""
    started = time.monotonic()
    task = asyncio.create_task(
        loadgen.run_phase(target, phase, drain_seconds, keep_alive=keep_alive, markers=markers)
    )
    samples: list[scale.MemorySample] = []
    while not task.done():
        samples.append(scale.sample(watched(), time.monotonic() - started))
        await asyncio.wait({task}, timeout=every)
    samples.append(scale.sample(watched(), time.monotonic() - started))
    return await task, samples


def soak_windows(run: PhaseRun, settled: float) -> dict[str, dict[str, Any]]:
    """Every webhook's figures in the first `settled` seconds of a soak and in its last as many
    (a drift in latency shows as a difference)."""
    end = max((s.ended for s in run.samples), default=run.started)
    windows = {
        "first": [s for s in run.samples if s.ended - run.started <= settled],
        "last": [s for s in run.samples if end - s.ended <= settled],
    }
    found = {}
    for name, samples in windows.items():
        part = PhaseRun(run.target, run.phase, run.started, samples=samples)
        part.wall_seconds = settled
        found[name] = report.kind_stats([part], "all")
    return found


def _log_problems(log: Path) -> dict[str, int]:
    """How many tracebacks and error lines the app logged during the run."""
    if not log.exists():
        return {}
    text = log.read_text(encoding="utf-8", errors="replace")
    return {"tracebacks": text.count("Traceback"), "error_lines": text.count("[ERROR]")}


def _git(*command: str) -> str:
    try:
        done = subprocess.run(
            ["git", *command], cwd=servers.ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def write_results(results: dict[str, Any], directory: Path) -> None:
    """The timestamped JSON, latest.json, latest.md and (with HTTP phases) latency.png."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False)
    stamp = results["started_at"].replace("-", "").replace(":", "")
    (directory / f"{stamp}.json").write_text(text, encoding="utf-8")
    (directory / "latest.json").write_text(text, encoding="utf-8")
    (directory / "latest.md").write_text(report.markdown(results), encoding="utf-8")
    if results["phases"]:
        report.plot(results, directory / "latency.png")
    if "soak" in results.get("scale", {}):
        report.plot_soak(results, directory / "soak.png")


def _rolling(
    bench: Bench, database_url: str, args: argparse.Namespace, started_at: str, clock: float
) -> int:
    """`--rolling-restart`: measure it, write `rolling-<time>.json` and `rolling-latest.md` (the
    other results files are the main benchmark's, left as they are), print the table."""
    result = bench.rolling_restart(database_url)
    result |= {
        "started_at": started_at,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "note": args.note,
        "total_seconds": round(time.monotonic() - clock, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = started_at.replace("-", "").replace(":", "")
    text = json.dumps(result, indent=2)
    (args.results / f"rolling-{stamp}.json").write_text(text, encoding="utf-8")
    table = rolling.markdown(result)
    (args.results / "rolling-latest.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {args.results}/ in {time.monotonic() - clock:.0f} s")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that SIGTERM, too, stops what we started


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran to the end (whether or not the targets were met)."""
    args = parse_args(argv)
    if args.micro_child:
        return run_micro_child(args)
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    clock = time.monotonic()
    bench = Bench(args)
    ok = False
    try:
        database_url = bench.start_stores()
        if args.rolling_restart:
            status = _rolling(bench, database_url, args, started_at, clock)
            ok = True
            return status
        if phases(args):
            bench.measure(bench.start_servers(database_url))
        bench.scale_all()
        micro = bench.micro(database_url) if args.only in (None, "micro") else {}
        results = bench.results(started_at, time.monotonic() - clock, micro)
        write_results(results, args.results)
        ok = True
    except KeyboardInterrupt:
        print("interrupted: everything the benchmark started is being stopped", file=sys.stderr)
        return 130
    finally:
        bench.close()
        if ok:
            shutil.rmtree(bench.work, ignore_errors=True)
        else:
            print(f"logs kept in {bench.work}", file=sys.stderr)
    print(report.markdown(results))
    print(f"written to {args.results}/ in {time.monotonic() - clock:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
