"""Profile the hot path once: whole calls through the app in-process, under cProfile.

    .venv/bin/python -m bench.profile [--calls 200] [--postgres] [--embedded] [--dump calls.prof]
    .venv/bin/python -m bench.profile --cpu [--calls 1000]      # CPU per request, no profiler
    .venv/bin/python -m bench.profile --memory [--calls 2000]   # what grows, with tracemalloc

The app is built with `ivr.create_app` from the project's own rules and prompts, on a throw-away SQLite
database (or, with --postgres, a database of its own on 127.0.0.1, dropped after) and our own redis-server
(or, with --embedded, the in-process fakeredis), with signatures
checked; the Flask test client places the benchmark's scripted call (bench.loadgen.CALL_SCRIPT:
incoming -> language -> menus -> queue -> 3 hold rounds -> status), signed like Twilio signs it. It
prints the top functions by cumulative and by own time, and own time summed per package.

With `--cpu`, no profiler: the CPU time the app's own request handling took (the thread running the
WSGI app, so not the test client) and the whole process's, per request. With `--memory`, the calls
run under tracemalloc after a warm-up of as many calls, and it prints the lines whose allocations
grew most over the second half: what a web worker keeps per call.

Run it with `-m` from the project root (as a script, bench/ would shadow the standard `profile`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import re
import secrets
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from bench import servers
from bench.loadgen import ACCOUNT_SID, CALL_SCRIPT, CALLED_NUMBER, next_url

BASE_URL = "http://localhost"
TOKEN = "bench-profile-token"
CLOCK = "2026-11-23T15:00:00Z"  # a Monday, 10:00 in New York: the funds queue is open


def build_app(database_url: str, redis_url: str) -> Any:
    """The app as production configures it, on a throw-away database."""
    from ivr import create_app
    from ivr.clock import parse_instant
    from ivr.config import Settings
    from ivr.db import Database

    upgrader = Database(database_url)
    upgrader.upgrade()
    upgrader.dispose()
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        twilio_auth_token=TOKEN,
        state_secrets=(secrets.token_urlsafe(32),),
        routing_rules=servers.ROOT / "routing_rules.yaml",
        voice_prompts=servers.ROOT / "voice_prompts",
        public_base_url=BASE_URL,
        clock_start=parse_instant(CLOCK),
        # As production's web workers: tickets are written by `ivr worker`, not in this process.
        writer="off",
        spool_dir=Path(tempfile.mkdtemp(prefix="ivr-profile-spool-")),
    )
    return create_app(settings)


def place_call(client: FlaskClient, validator: RequestValidator, number: int) -> int:
    """One scripted call through the test client; returns how many requests it took."""
    call_sid = "CA" + uuid.uuid4().hex
    caller = f"+1212555{number % 10_000:04d}"
    base = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "Direction": "inbound",
        "From": caller,
        "To": CALLED_NUMBER,
        "CallStatus": "in-progress",
    }

    def post(path: str, form: dict[str, str]) -> bytes:
        headers = {
            "X-Twilio-Signature": validator.compute_signature(BASE_URL + path, form),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
        }
        response = client.post(path, data=form, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        return bytes(response.data)

    path: str | None = "/voice/incoming"
    for step in CALL_SCRIPT:
        assert path is not None
        form = dict(base) if step.digits is None else {**base, "Digits": step.digits}
        document = post(path, form)
        path = next_url(document, step, path)
        if path is None:
            raise RuntimeError(f"{step.kind}: unexpected TwiML {document[:300]!r}")
    post("/voice/status", {**base, "CallStatus": "completed", "CallDuration": "60"})
    return len(CALL_SCRIPT) + 1


_SITE_PACKAGE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_OURS = re.compile(r"/(ivr|bench)/")
_STDLIB = re.compile(r"python3\.\d+/([A-Za-z0-9_]+)")


def package_of(file_name: str) -> str:
    """Which package a profiled function belongs to (stdlib modules by name, C code as builtins)."""
    if file_name.startswith("<") or file_name == "~":
        return "builtins (C code: sockets, sqlite3, hashing, ...)"
    for pattern, prefix in ((_SITE_PACKAGE, ""), (_OURS, ""), (_STDLIB, "stdlib:")):
        found = pattern.search(file_name)
        if found:
            return prefix + found.group(1)
    return "other"


def own_time_by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own (not cumulative) time summed per package, largest first."""
    totals: dict[str, float] = defaultdict(float)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (file_name, _, _), (_, _, own, _, _) in raw.items():
        totals[package_of(file_name)] += own
    return sorted(totals.items(), key=lambda item: -item[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Profile `--calls` whole calls and print what dominates."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="calls to profile (200)")
    parser.add_argument("--embedded", action="store_true", help="fakeredis instead of our own")
    parser.add_argument(
        "--postgres", action="store_true", help="a PostgreSQL database of its own, not SQLite"
    )
    parser.add_argument("--top", type=int, default=30, help="functions per table (30)")
    parser.add_argument("--dump", type=Path, help="also write the raw profile (for snakeviz)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cpu", action="store_true", help="CPU per request, without the profiler")
    mode.add_argument("--memory", action="store_true", help="what grows per call (tracemalloc)")
    args = parser.parse_args(argv)
    if args.cpu or args.memory:
        return measure(args.calls, args.embedded, args.postgres, args.top, memory=args.memory)

    redis = None if args.embedded else servers.RedisServer()
    database = servers.create_database() if args.postgres else None
    try:
        if redis is not None:
            redis.start()
        with tempfile.TemporaryDirectory(prefix="ivr-profile-") as work:
            database_url = database or f"sqlite:///{work}/profile.sqlite3"
            app = build_app(database_url, redis.url() if redis else "embedded://")
            client = app.test_client()
            validator = RequestValidator(TOKEN)
            for number in range(5):  # first requests pay for imports, pools and compiled scripts
                place_call(client, validator, number)
            profiler = cProfile.Profile()
            requests = 0
            started = time.perf_counter()
            profiler.enable()
            for number in range(args.calls):
                requests += place_call(client, validator, random.randrange(10_000) + number)
            profiler.disable()
            elapsed = time.perf_counter() - started
            services = app.extensions["ivr"]
            # Before its database is dropped: no thread of the app may open a connection again.
            if services.background is not None:
                services.background.stop()
            services.db.dispose()
    finally:
        if redis is not None:
            redis.stop()
        if database is not None:
            servers.drop_database(database)

    store = "fakeredis (in-process)" if args.embedded else "redis-server (own, loopback)"
    database = "PostgreSQL (a database of its own)" if args.postgres else "SQLite"
    print(
        f"{args.calls} calls, {requests} requests in {elapsed:.2f} s under the profiler: "
        f"{1000 * elapsed / requests:.2f} ms per request ({database}, {store}, signatures "
        "checked; the Flask test client stands in for gunicorn)\n"
    )
    stats = pstats.Stats(profiler)
    if args.dump:
        stats.dump_stats(args.dump)
    total = sum(own for _, own in own_time_by_package(stats)) or 1.0
    print("Own time per package:")
    for package, own in own_time_by_package(stats)[:20]:
        print(f"  {100 * own / total:5.1f}%  {own:7.3f} s  {package}")
    print(f"\nTop {args.top} functions of ivr/ by cumulative time (where the app spends it):")
    stats.sort_stats("cumulative").print_stats(r"/ivr/", args.top)
    for key, title in (("cumulative", "cumulative"), ("tottime", "own")):
        print(f"\nTop {args.top} functions by {title} time:")
        stats.sort_stats(key).print_stats(args.top)
    return 0


def measure(calls: int, embedded: bool, postgres: bool, top: int, *, memory: bool) -> int:
    """`--cpu`: CPU per request in the app's thread and in the whole process. `--memory`: the
    lines whose allocations, made over `calls` calls after as many, are still held (tracemalloc)."""
    redis = None if embedded else servers.RedisServer()
    try:
        if redis is not None:
            redis.start()
        with tempfile.TemporaryDirectory(prefix="ivr-profile-") as work:
            database_url = (
                servers.fresh_database() if postgres else f"sqlite:///{work}/profile.sqlite3"
            )
            app = build_app(database_url, redis.url() if redis else "embedded://")
            in_app = [0.0]
            handle = app.wsgi_app

            def timed(environ: Any, start_response: Any) -> Any:
                started = time.thread_time()
                try:
                    return handle(environ, start_response)
                finally:
                    in_app[0] += time.thread_time() - started

            app.wsgi_app = timed
            client = app.test_client()
            validator = RequestValidator(TOKEN)
            numbers = iter(range(10**9))
            for _ in range(calls if memory else 20):  # imports, pools, scripts, caches
                place_call(client, validator, next(numbers))
            if memory:
                gc.collect()
                tracemalloc.start(10)
                before = tracemalloc.take_snapshot()
            in_app[0], requests = 0.0, 0
            started_process, started_wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                requests += place_call(client, validator, next(numbers))
            process = time.process_time() - started_process
            wall = time.perf_counter() - started_wall
            if memory:
                gc.collect()
                after = tracemalloc.take_snapshot()
                tracemalloc.stop()
    finally:
        if redis is not None:
            redis.stop()
    if not memory:
        print(
            f"{calls} calls, {requests} requests: CPU per request {1000 * in_app[0] / requests:.3f}"
            f" ms in the app's thread, {1000 * process / requests:.3f} ms the whole process "
            f"(test client included); wall {1000 * wall / requests:.3f} ms"
        )
        return 0
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    growth = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in growth)
    print(
        f"tracemalloc over {requests} requests ({calls} calls, after {calls} untraced): "
        f"{total / 1024:+.1f} KiB in all, {total / requests:+.1f} B a request; top {top} lines:"
    )
    for stat in growth[:top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
