"""The rolling restart: `python -m bench.run --rolling-restart` (see bench/README.md).

Two instances of the app as docs/operators/production.md runs them (`ivr serve`, `IVR_WRITER=off`, and one
`ivr worker`), our nginx in front of both (bench/proxy.py: docs/operators/instances.md's upstream
block), and the benchmark's 100 concurrent calls through nginx while each instance in turn is restarted as an
orchestrator does it: SIGTERM to its master, wait for it to exit, start it again on the same port,
wait until its /healthz answers 200 and nginx passes it webhooks again (after `fail_timeout`), then
the next one. It reports every failed webhook (the first few reasons), how many calls' tickets are
not complete once the writer caught up, and for each restart how long the instance took to drain
(SIGTERM to exit) and to be ready again.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import loadgen, production, servers
from bench.loadgen import Phase, Target

EXIT_BOUND_SECONDS = 60.0
"""How long an instance may take to exit after SIGTERM (IVR_DRAIN_SECONDS 10 + graceful 20 + margin)."""
BACK_IN_NGINX_SECONDS = 30.0
"""How long nginx may take to pass webhooks to a restarted instance again (its fail_timeout is 5 s)."""
SETTLE_SECONDS = 5.0
"""Calls go on this long before the first restart, between restarts, and after the last."""


def restart(
    process: subprocess.Popen[bytes], port: int, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """SIGTERM `process` (an `ivr serve` master), wait for its exit, start it again on `port` with
    docs/operators/production.md's command; the new process and the timings."""
    signalled = time.monotonic()
    process.terminate()
    status = process.wait(EXIT_BOUND_SECONDS)
    exited = time.monotonic()
    serve, _ = production.read()
    with log.open("ab") as out:
        new = subprocess.Popen(
            serve.argv(port),
            cwd=servers.ROOT,
            env={**env, **serve.env},
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    servers.wait_until_ok(f"http://127.0.0.1:{port}/healthz", new, timeout=60)
    ready = time.monotonic()
    timings = {
        "port": port,
        "exit_status": status,
        "drain_seconds": round(exited - signalled, 2),
        "ready_seconds": round(ready - exited, 2),
    }
    return new, timings


def stop_at_once(process: subprocess.Popen[bytes]) -> None:
    """Stop an instance at the end: SIGTERM twice (the second skips the drain), bounded."""
    if process.poll() is None:
        process.terminate()
        time.sleep(0.2)
        if process.poll() is None:
            process.terminate()
        process.wait(EXIT_BOUND_SECONDS)


def back_in_nginx(served: Any, port: int) -> float:
    """Wait (bounded) until nginx passes a webhook to 127.0.0.1:`port` again; seconds waited."""
    address = f"127.0.0.1:{port}"
    before = served().get(address, 0)
    started = time.monotonic()
    while time.monotonic() - started < BACK_IN_NGINX_SECONDS:
        if served().get(address, 0) > before:
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def measure(
    target: Target,
    calls: int,
    pause: float,
    restart_all: Any,
    drain_seconds: float,
    markers: tuple[str, ...],
) -> tuple[loadgen.PhaseRun, list[dict[str, Any]]]:
    """`calls` concurrent calls through `target` (nginx) while `restart_all()` restarts the
    instances (in a thread of its own); the calls go on until it is done plus SETTLE_SECONDS."""
    timings: list[dict[str, Any]] = []
    done = threading.Event()

    def restarting() -> None:
        try:
            time.sleep(SETTLE_SECONDS)
            timings.extend(restart_all())
            time.sleep(SETTLE_SECONDS)
        finally:
            done.set()

    thread = threading.Thread(target=restarting, name="rolling-restart", daemon=True)
    thread.start()
    # The phase's length is not known ahead: at most 10 minutes, cut when the restarts are done.
    phase = Phase("rolling-restart", calls, pause, 600.0)
    run = asyncio.run(loadgen.run_phase(target, phase, drain_seconds, markers=markers, until=done))
    thread.join(EXIT_BOUND_SECONDS)
    return run, timings


def failures(run: loadgen.PhaseRun) -> dict[str, Any]:
    """Failed webhooks: how many, of how many, and the most frequent reasons."""
    failed = [sample for sample in run.samples if sample.error]
    reasons = Counter(sample.error for sample in failed)
    return {
        "webhooks": len(run.samples),
        "failed": len(failed),
        "reasons": [f"{count} x {reason}" for reason, count in reasons.most_common(5)],
        "calls": len(run.call_sids),
        "cancelled_calls": run.cancelled_calls,
    }


def markdown(result: dict[str, Any]) -> str:
    """The rolling restart's table for the report."""
    failed = result["webhooks"]
    tickets = result["tickets"]
    lines = [
        f"### Rolling restart: {result['calls_concurrent']} concurrent calls through nginx, "
        f"{result['rounds']} round(s) of restarting each of 2 instances",
        "",
        "| webhooks | failed | calls | tickets complete | incomplete |",
        "|---:|---:|---:|---:|---:|",
        f"| {failed['webhooks']} | {failed['failed']} | {failed['calls']} | "
        f"{tickets['complete']} | {failed['calls'] - tickets['complete']} |",
        "",
        "| restart | instance | SIGTERM to exit (s) | exit to ready (s) | back in nginx after (s) |",
        "|---:|---|---:|---:|---:|",
    ]
    for number, timing in enumerate(result["restarts"], start=1):
        lines.append(
            f"| {number} | {timing['instance']} | {timing['drain_seconds']} | "
            f"{timing['ready_seconds']} | {timing['back_in_nginx_seconds']} |"
        )
    if failed["reasons"]:
        lines += ["", "Failed webhooks, most frequent first: " + "; ".join(failed["reasons"])]
    return "\n".join(lines) + "\n"
