"""The processes a benchmark run starts (redis-server, gunicorn) and the database it creates.

Everything here is started by us and stopped by its own PID; nothing touches the machine's shared
Redis or any PostgreSQL database other than `ivr_bench`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
"""The project root: gunicorn runs from here so that `wsgi:app` and the rules files resolve."""

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "ivr_bench"
BENCH_DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DATABASE}"

GUNICORN_SETTINGS = ["--workers", "2", "--threads", "4", "--timeout", "20"]
"""As README "Production" runs the service (the issue's "gunicorn 2x4"); the floor gets the same."""

# Settings of ours that must not leak from the caller's shell into the servers we start.
_SCRUBBED_PREFIXES = ("IVR_", "TWILIO_", "TEST_", "DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """The environment for a child process: ours, without the caller's IVR/Twilio settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(settings)
    return env


def stop(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_until_ok(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait (bounded) until GET `url` answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: no 200 within {timeout:.0f} s")


class RedisServer:
    """Our own redis-server on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The URL of database `db` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait (bounded) until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis.from_url(self.url(), socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def stop(self) -> None:
        """Stop it by its PID."""
        stop(self.process)


def fresh_database() -> str:
    """Drop and create the `ivr_bench` database (and no other); returns its URL."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return BENCH_DATABASE_URL


def upgrade_database(env: dict[str, str]) -> None:
    """`ivr db upgrade` with `env`, as a release would run it (the `ivr` of this checkout)."""
    command = [sys.executable, "-m", "ivr.cli", "db", "upgrade"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"ivr db upgrade failed:\n{done.stdout}{done.stderr}")
    print(done.stdout.strip().splitlines()[-1], flush=True)


def gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`gunicorn <production settings> --bind 127.0.0.1:PORT <app>` from the project root."""
    command = [sys.executable, "-m", "gunicorn", *GUNICORN_SETTINGS]
    command += ["--bind", f"127.0.0.1:{port}", app]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
