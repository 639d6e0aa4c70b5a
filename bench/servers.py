"""The processes a benchmark run starts (redis-server, gunicorn) and the database it creates.

Everything here is started by us and stopped by its own PID; nothing touches the machine's shared
Redis or any PostgreSQL database other than the one a run creates under a name of its own
(`ivr_bench_<pid>_<random>`), which it drops at the end.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
"""The project root: gunicorn runs from here so that `wsgi:app` and the rules files resolve."""

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
POSTGRES_ADMIN_URL = f"{POSTGRES_SERVER}/postgres"
DATABASE_PREFIX = "ivr_bench_"

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
    """Our own redis-server on a free port. Without `persistence`, none (`--save ''
    --appendonly no`); with it, those options (the benchmark passes docs/operators/production.md's AOF
    settings) and its files in `directory`."""

    def __init__(self, persistence: list[str] | None = None, directory: Path | None = None) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.persistence = persistence
        self.directory = directory

    def url(self, db: int = 0) -> str:
        """The URL of database `db` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait (bounded) until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--daemonize", "no"]
        if self.persistence:
            directory = self.directory or Path(tempfile.mkdtemp(prefix="ivr-bench-redis-"))
            directory.mkdir(parents=True, exist_ok=True)
            command += [*self.persistence, "--dir", str(directory)]
        else:
            command += ["--appendonly", "no"]
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


def database_name(pid: int, token: str) -> str:
    """The name of a run's own database: `ivr_bench_<pid>_<token>` (lower-case letters, digits and
    underscores only, so that it needs no quoting and cannot be another run's)."""
    name = f"{DATABASE_PREFIX}{pid}_{token}".lower()
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a database name of ours: {name!r}")
    return name


def is_run_database(name: str) -> bool:
    """Whether `name` has the shape `database_name` gives (`ivr_bench_<pid>_<hex>`)."""
    return re.fullmatch(rf"{DATABASE_PREFIX}[0-9]+_[0-9a-f]+", name) is not None


def database_url(name: str) -> str:
    """The URL of database `name` on the benchmark's PostgreSQL."""
    return f"{POSTGRES_SERVER}/{name}"


def name_of(url: str) -> str:
    """The database a URL of `database_url` names."""
    return url.rsplit("/", 1)[1]


def create_database() -> str:
    """Create a new database of this run's own name (never an existing one); returns its URL."""
    name = database_name(os.getpid(), secrets.token_hex(4))
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return database_url(name)


def drop_database(url: str) -> None:
    """Drop a database `create_database` made, without FORCE: stop our servers first. Refuses
    any other name; one still in use stays, and the error says so."""
    name = name_of(url)
    if not is_run_database(name):
        raise ValueError(f"{name} is not a database a benchmark run created")
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")


@contextmanager
def own_database(keep: bool = False) -> Iterator[str]:
    """A database of our own for the `with` block (its URL), dropped after it unless `keep`."""
    url = create_database()
    try:
        yield url
    finally:
        if keep:
            print(f"kept the database {name_of(url)}", flush=True)
        else:
            drop_database(url)


def upgrade_database(env: dict[str, str]) -> None:
    """`ivr db upgrade` with `env`, as a release would run it (the `ivr` of this checkout)."""
    command = [sys.executable, "-m", "ivr.cli", "db", "upgrade"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"ivr db upgrade failed:\n{done.stdout}{done.stderr}")
    print(done.stdout.strip().splitlines()[-1], flush=True)


def gunicorn(
    app: str, port: int, env: dict[str, str], log: Path, settings: list[str]
) -> subprocess.Popen[bytes]:
    """`gunicorn <settings> --bind 127.0.0.1:PORT <app>` from the project root (the floor, with
    the settings of docs/operators/production.md's `ivr serve`)."""
    command = [sys.executable, "-m", "gunicorn", *settings]
    command += ["--bind", f"127.0.0.1:{port}", app]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
