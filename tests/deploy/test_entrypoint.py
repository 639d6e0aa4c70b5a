"""The image's entrypoint (`deploy/entrypoint.sh`), run as the image runs it, outside a container:
real `ivr` processes against this machine's PostgreSQL and Redis (`TEST_DATABASE_URL`,
`TEST_REDIS_URL`; SQLite and the embedded Redis without them).

Each role `exec`s its command, so the process the container runtime starts and signals is the
service itself: the tests signal the PID they started and read its command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.db import Database
from tests.conftest import TEST_REDIS_URL
from tests.faults import free_port, start_logged, wait_until
from tests.instances import stop_group
from tests.support import AUTH_TOKEN, ROOT, STATE_SECRET, ivr_environment

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
EX_USAGE = 64
START_TIMEOUT = 60.0


def entrypoint_environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """What the image gives the entrypoint: `ivr` on PATH, the shipped rules, a spool of its own,
    the two secrets the app requires, and `env` on top (an empty value removes a setting)."""
    environment = ivr_environment(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        ROUTING_RULES=str(ROOT / "routing_rules.yaml"),
        VOICE_PROMPTS=str(ROOT / "voice_prompts"),
        IVR_SPOOL_DIR=str(tmp_path / "spool"),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        IVR_SECRET=STATE_SECRET,
        REDIS_URL=TEST_REDIS_URL or "embedded://",
    )
    for name in ("IVR_DEV_MODE", "IVR_TRUSTED_PROXIES", "PORT", "HOST", "IVR_WRITER"):
        environment.pop(name, None)
    environment.update(env)
    return {name: value for name, value in environment.items() if value}


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start_entrypoint(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The entrypoint in a process group of its own (gunicorn's workers with it), output in `log`."""
    return start_logged(["sh", str(ENTRYPOINT), *args], env=env, cwd=ROOT, log=log)


def command_line(pid: int) -> list[str]:
    """What process `pid` runs now (after an `exec`, the new program's arguments)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def database_url(database: Database) -> str:
    return database.url.render_as_string(hide_password=False)


@pytest.fixture
def serving(migrated_database: Database, tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """`serve` on a free port, as the image runs it: (its PID, the port, its log)."""
    port = free_port()
    env = entrypoint_environment(
        tmp_path,
        DATABASE_URL=database_url(migrated_database),
        PORT=str(port),
        IVR_TRUSTED_PROXIES="127.0.0.1",
        IVR_SERVE_WORKERS="1",
        IVR_SERVE_THREADS="3",
    )
    log = tmp_path / "serve.log"
    process = start_entrypoint("serve", env=env, log=log)
    try:
        yield process.pid, port, log
    finally:
        stop_group(process)


def test_migrate_brings_an_empty_database_to_the_codes_schema(
    empty_database: Database, tmp_path: Path
) -> None:
    env = entrypoint_environment(tmp_path, DATABASE_URL=database_url(empty_database))
    assert empty_database.schema().problem() is not None

    result = run_entrypoint("migrate", env=env)

    assert result.returncode == 0, result.stderr
    assert f"database at revision {empty_database.current_revision()}" in result.stdout
    assert empty_database.schema().problem() is None


def test_serve_listens_on_every_address_and_its_healthz_says_it_can_take_calls(
    serving: tuple[int, int, Path],
) -> None:
    pid, port, log = serving

    def healthy() -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                health: dict[str, object] = json.load(answer)
        except OSError:
            return None
        return health if health["status"] == "ok" else None  # "not checked yet" at first

    health = wait_until(healthy, timeout=START_TIMEOUT)
    assert health is not None
    assert health["database"] == "ok" and health["redis"] == "ok", health
    # What the Kubernetes liveness probe asks (deploy/k8s/base/web.yaml).
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as answer:
        assert (answer.status, answer.read()) == (200, b"ok")
    # The shell is gone: the PID the runtime signals is ivr serve itself, with the image's options.
    program, *args = command_line(pid)[-11:]
    assert Path(program).name == "ivr"
    assert args == [
        *("serve", "--no-migrate", "--host", "0.0.0.0", "--port", str(port)),
        *("--workers", "1", "--threads", "3"),
    ]
    assert f"Listening at: http://0.0.0.0:{port}" in log.read_text()


def test_worker_runs_until_sigterm_then_exits_0(
    migrated_database: Database, tmp_path: Path
) -> None:
    env = entrypoint_environment(tmp_path, DATABASE_URL=database_url(migrated_database))
    log = tmp_path / "worker.log"
    process = start_entrypoint("worker", env=env, log=log)
    try:
        wait_until(lambda: "writing tickets" in log.read_text(), timeout=START_TIMEOUT)
        assert command_line(process.pid)[-1] == "worker"  # exec'd: the worker gets the signal

        process.send_signal(signal.SIGTERM)

        assert process.wait(15) == 0, log.read_text()
    finally:
        stop_group(process)


def test_the_ivr_role_runs_any_ivr_command(tmp_path: Path) -> None:
    result = run_entrypoint(
        "ivr", "check", "routing_rules.yaml", env=entrypoint_environment(tmp_path)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("routing_rules.yaml: ok (4 languages"), result.stdout


def test_a_missing_secret_stops_serve_with_the_apps_own_message(
    migrated_database: Database, tmp_path: Path
) -> None:
    env = entrypoint_environment(
        tmp_path,
        DATABASE_URL=database_url(migrated_database),
        IVR_TRUSTED_PROXIES="127.0.0.1",
        PORT=str(free_port()),
        TWILIO_AUTH_TOKEN="",
    )

    result = run_entrypoint("serve", env=env)

    assert result.returncode == 1
    assert result.stderr.startswith("cannot start: TWILIO_AUTH_TOKEN is not set."), result.stderr


def test_serve_without_trusted_proxies_refuses_to_listen_where_clients_reach_gunicorn(
    tmp_path: Path,
) -> None:
    result = run_entrypoint("serve", env=entrypoint_environment(tmp_path))

    assert result.returncode == 1
    assert result.stderr.startswith("cannot start: IVR_TRUSTED_PROXIES is not set."), result.stderr


@pytest.mark.parametrize("args", [("gunicorn",), ()], ids=["unknown role", "no role"])
def test_anything_but_a_role_lists_the_roles_and_exits_64(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_entrypoint(*args, env=entrypoint_environment(tmp_path))

    assert result.returncode == EX_USAGE
    roles = re.findall(r"^  (\w+) ", result.stderr, re.MULTILINE)
    assert roles == ["serve", "worker", "migrate", "ivr"]
    if args:
        assert result.stderr.startswith("unknown role: gunicorn\n")
