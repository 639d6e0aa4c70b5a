"""The benchmark: `python -m bench.run [--quick] [--only http|micro] [--instances 2]` (see
bench/README.md).

Starts its own redis-server and a fresh `ivr_bench` PostgreSQL database, the app under gunicorn as
README "Production" runs it and the floor app (bench/floor.py) under the same gunicorn, places whole
signed calls against both, interleaved, then runs the micro-benchmarks, and writes bench/results/.
With `--instances 2` it also runs a second instance and our own nginx (bench/proxy.py), and measures
one instance behind nginx and two instances behind nginx in the same interleaving.
Everything it starts is stopped by PID at the end, also on Ctrl-C and on errors.
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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from bench import loadgen, proxy, report, servers
from bench.floor import document_key
from bench.loadgen import EXPECTED_MENU_PATH, Phase, PhaseRun, Target

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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; phase length and rounds default by --quick."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument("--only", choices=("http", "micro"), help="run only one part")
    parser.add_argument("--seconds", type=float, help="length of each phase (20; quick: 4)")
    parser.add_argument("--rounds", type=int, help="app/floor rounds per phase (2; quick: 1)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between webhooks")
    parser.add_argument(
        "--paced", default="20,100", help="concurrent calls of the paced phases (20,100)"
    )
    parser.add_argument(
        "--flat-out-calls", type=int, default=16, help="concurrent calls flat out (16)"
    )
    parser.add_argument(
        "--instances",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also one instance behind nginx and two instances behind nginx (see README)",
    )
    parser.add_argument(
        "--phases",
        default="",
        help="only these phases, e.g. flat-out or paced-20,flat-out (default: all)",
    )
    parser.add_argument("--drain-seconds", type=float, default=60.0, help="bound on winding down")
    parser.add_argument("--ticket-seconds", type=float, default=60.0, help="bound on ticket wait")
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
    phases(args)  # an unknown --phases name stops here, before anything is started
    return args


def instance_env(env: dict[str, str], number: int) -> dict[str, str]:
    """The settings of instance `number` (1, 2, ...): the same stores, secret, token and public URL
    for all (README "Give every instance the same settings"), a spool folder of its own (as on its
    own host), and `IVR_WRITER=off` (the tickets are written by the one `ivr worker`)."""
    spool = env["IVR_SPOOL_DIR"] if number == 1 else f"{env['IVR_SPOOL_DIR']}-{number}"
    return {**env, "IVR_WRITER": "off", "IVR_SPOOL_DIR": spool}


def instance_log(log: Path, number: int) -> Path:
    """Instance 1 logs to `log`, instance n to `log` with `-n` before the suffix."""
    return log if number == 1 else log.with_name(f"{log.stem}-{number}{log.suffix}")


def launch_app(
    port: int, env: dict[str, str], log: Path, more_ports: Sequence[int] = ()
) -> list[subprocess.Popen[bytes]]:
    """Start the service as README "Production" does; returns every process it started: one
    gunicorn (the web workers, `IVR_WRITER=off`) per port, `port` first, then `more_ports` (each
    a further instance, same settings), and last the one `ivr worker` writing the tickets."""
    started = [
        servers.gunicorn("wsgi:app", p, instance_env(env, number), instance_log(log, number))
        for number, p in enumerate([port, *more_ports], start=1)
    ]
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "worker"],
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


def phases(args: argparse.Namespace) -> list[Phase]:
    """The load shapes: paced calls at each concurrency, then flat out."""
    shapes = [
        Phase(f"paced-{int(calls)}", int(calls), args.pause, args.seconds)
        for calls in args.paced.split(",")
        if calls.strip()
    ]
    every = [*shapes, Phase("flat-out", args.flat_out_calls, 0.0, args.seconds)]
    wanted = {name.strip() for name in args.phases.split(",") if name.strip()}
    unknown = wanted - {phase.name for phase in every}
    if unknown:
        raise SystemExit(
            f"--phases: no phase {', '.join(sorted(unknown))} (have: "
            + ", ".join(phase.name for phase in every)
            + ")"
        )
    return [phase for phase in every if not wanted or phase.name in wanted]


def label(phase: Phase) -> str:
    """How a phase is named in the report."""
    if phase.pause:
        return f"{phase.calls} concurrent calls, {phase.pause:g} s between webhooks"
    return f"flat out: {phase.calls} concurrent calls, no pause"


def count_tickets(call_sids: list[str]) -> dict[str, int]:
    """How many of these calls have a ticket in `ivr_bench`, and how complete the tickets are."""
    query = """
        SELECT count(*),
               count(*) FILTER (WHERE ended_at IS NOT NULL),
               count(*) FILTER (WHERE menu_path::jsonb = %(path)s::jsonb),
               count(*) FILTER (WHERE outcome IS NOT NULL),
               count(*) FILTER (WHERE ended_at IS NOT NULL AND outcome IS NOT NULL
                                AND menu_path::jsonb = %(path)s::jsonb)
        FROM tickets WHERE call_sid = ANY(%(sids)s)
    """
    with psycopg.connect(servers.BENCH_DATABASE_URL, connect_timeout=5) as connection:
        row = connection.execute(
            query, {"path": json.dumps(EXPECTED_MENU_PATH), "sids": call_sids}
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


def settled_tickets(call_sids: list[str], timeout: float) -> dict[str, Any]:
    """The ticket counts once complete or not moving any more (writing is asynchronous), bounded."""
    started = time.monotonic()
    previous: dict[str, int] | None = None
    moved = started
    while True:
        counts = count_tickets(call_sids)
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


def targets(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, with what was measured (reported, never asserted)."""
    found: list[dict[str, Any]] = []
    for name in ("paced-20", "paced-100"):
        if name in summary:
            row = summary[name]["all"]
            r = row["ratio"]["p99_ms"]
            found.append(
                {
                    "name": f"full-flow p99 within 2× of the floor, {name}",
                    "measured": f"{row['app']['p99_ms']:g} ms vs {row['floor']['p99_ms']:g} ms "
                    f"(×{r})",
                    "met": None if r is None else r <= 2,
                }
            )
    if "flat-out" in summary:
        row = summary["flat-out"]["all"]
        r = row["ratio"]["rps"]
        found.append(
            {
                "name": "flat-out throughput at least half the floor's",
                "measured": f"{row['app']['rps']:g} vs {row['floor']['rps']:g} requests/s (×{r})",
                "met": None if r is None else r >= 0.5,
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
                "name": "(also) every ticket complete: ended, menu path, outcome",
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
        self.redis = servers.RedisServer()
        self.token = secrets.token_hex(16)
        self.runs: list[dict[str, Any]] = []
        self.phase_runs: dict[tuple[str, str], list[PhaseRun]] = {}
        self.checks: dict[str, Any] = {}
        self.instance_ports: list[int] = []
        self.nginx: proxy.Nginx | None = None

    def close(self) -> None:
        """Stop everything we started, newest first, by PID."""
        if self.nginx is not None:
            self.nginx.stop()
        for process in reversed(self.processes):
            servers.stop(process)
        self.redis.stop()

    def start_stores(self) -> str:
        """Our redis-server and a fresh `ivr_bench` database at the newest schema."""
        self.redis.start()
        database_url = servers.fresh_database()
        servers.upgrade_database(servers.clean_env(DATABASE_URL=database_url))
        return database_url

    def start_servers(self, database_url: str) -> list[Target]:
        """The app, one captured call, then the floor serving what the app answered; with
        `--instances 2` a second instance and our nginx in front (started per run, see
        `prepare`). Returns the targets in the order each phase runs them."""
        two = self.args.instances == 2
        if two:
            self.nginx = proxy.Nginx(self.work / "nginx", servers.free_port())
        public = self.nginx.url if self.nginx is not None else None
        # With a proxy, PUBLIC_BASE_URL is its address, also for requests that reach instance 1
        # directly (README: "the safer choice when the instances can also be reached without nginx").
        app = Target("app", servers.free_port(), self.token, public)
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url(0),
            "TWILIO_AUTH_TOKEN": self.token,
            "IVR_SECRET": secrets.token_urlsafe(32),
            "PUBLIC_BASE_URL": app.base_url,
            # Anchored: every process (both instances' gunicorn workers, the ivr worker) keeps the
            # same time, whenever it started (README, "Several instances behind nginx").
            "IVR_CLOCK": f"{CLOCK}@{datetime.now(UTC).isoformat()}",
            "IVR_SPOOL_DIR": str(self.work / "spool"),
        }
        if two:
            settings["IVR_TRUSTED_PROXIES"] = "127.0.0.1"  # README: behind nginx on this host
        env = servers.clean_env(**settings)
        more = [servers.free_port()] if two else []
        self.instance_ports = [app.port, *more]
        started = launch_app(app.port, env, self.work / "app.log", more)
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
        process = servers.gunicorn(
            "bench.floor:app", floor.port, floor_env, self.work / "floor.log"
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

    def measure(self, targets: list[Target]) -> None:
        """Warm every target up, then every phase for each target in turn, `rounds` times."""
        warm_up = Phase("warm-up", 8, 0.0, 2.0 if self.args.quick else 4.0)
        refused: dict[str, int] = {}
        for target in targets:
            self.prepare(target)
            refused[target.name] = self.unsigned_status(target)
            asyncio.run(loadgen.run_phase(target, warm_up, self.args.drain_seconds))
        self.checks["unsigned_refused"] = refused
        for round_number in range(1, self.args.rounds + 1):
            for phase in phases(self.args):
                for index, target in enumerate(targets):
                    self.run_one(round_number, phase, target, index)

    def run_one(self, round_number: int, phase: Phase, target: Target, index: int = 0) -> None:
        """One phase against one target, and for the app the tickets its calls left."""
        self.prepare(target)
        print(f"round {round_number}: {phase.name} against the {target.name} ...", flush=True)
        seed = round_number * 10 + index
        cpu = time.process_time()
        run = asyncio.run(loadgen.run_phase(target, phase, self.args.drain_seconds, seed))
        cpu = time.process_time() - cpu
        self.phase_runs.setdefault((phase.name, target.name), []).append(run)
        record: dict[str, Any] = {
            "round": round_number,
            "phase": phase.name,
            "target": target.name,
            "calls": len(run.call_sids),
            "cancelled_calls": run.cancelled_calls,
            "wall_seconds": round(run.wall_seconds, 1),
            # The load generator shares the cores with the servers: how much it took of them.
            "loadgen_cpu_percent": round(100 * cpu / run.wall_seconds, 1),
            "stats": {kind: report.kind_stats([run], kind) for kind in report.ROWS},
        }
        if nginx_upstreams(target.name, self.instance_ports) is not None:
            assert self.nginx is not None
            served = self.nginx.served()
            record["served_by"] = {self.instance_name(a): n for a, n in sorted(served.items())}
        if target.name != "floor":
            record["tickets"] = settled_tickets(run.call_sids, self.args.ticket_seconds)
        all_stats = record["stats"]["all"]
        print(
            f"  {record['calls']} calls, {all_stats['requests']} requests, "
            f"p50 {all_stats['p50_ms']} ms, p99 {all_stats['p99_ms']} ms, "
            f"{all_stats['rps']} req/s, {all_stats['errors']} errors, "
            f"load generator {record['loadgen_cpu_percent']}% CPU"
            + (f", tickets {record['tickets']}" if "tickets" in record else "")
            + (f", served by {record['served_by']}" if "served_by" in record else ""),
            flush=True,
        )
        self.runs.append(record)

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
        chosen = phases(self.args) if self.args.only != "micro" else []
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
                "instances": self.args.instances,
                "phases": self.args.phases,
                "gunicorn": servers.GUNICORN_SETTINGS,
                "clock": CLOCK,
                "call_script": [step.kind for step in loadgen.CALL_SCRIPT] + ["status"],
            },
            "checks": self.checks,
            "phases": [
                {"name": p.name, "label": label(p), "calls": p.calls, "pause": p.pause}
                for p in chosen
            ],
            "summary": summary,
            "targets": targets(summary, self.runs),
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
            "gunicorn_per_instance": servers.GUNICORN_SETTINGS,
            "nginx": {"worker_processes": proxy.WORKER_PROCESSES, "upstream_keepalive": False},
            "summary": summary,
            "scaling": {name: report.scaling(row) for name, row in summary.items()},
        }


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
        if args.only != "micro":
            bench.measure(bench.start_servers(database_url))
        micro = bench.micro(database_url) if args.only != "http" else {}
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
