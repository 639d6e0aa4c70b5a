"""What the image, the compose line and its env file promise, read from the files themselves
(`Containerfile`, `.dockerignore`, `compose.yaml`, `deploy/make_env.py`), and the compose line's
nginx config (`deploy/nginx/ivr.conf`) in front of two `serve` instances, with a call through it.

No container runtime can run containers here (docs/operators/deploying.md says what was tried), so the
compose file itself is checked as YAML, not run."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.config import Settings
from ivr.db import Database
from tests.deploy.test_entrypoint import database_url, entrypoint_environment, start_entrypoint
from tests.faults import free_port, wait_until
from tests.instances import HttpPhone, Nginx, answers, stop_group
from tests.support import ROOT

CONTAINERFILE = ROOT / "Containerfile"
COMPOSE = ROOT / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx" / "ivr.conf"
MAKE_ENV = ROOT / "deploy" / "make_env.py"
IVR_SERVICES = {"migrate": "migrate", "app1": "serve", "app2": "serve", "worker": "worker"}
"""The compose services that run the image, and the role each runs."""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(CONTAINERFILE.read_text(encoding="utf-8"))
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def test_the_image_runs_the_roles_as_a_user_of_its_own_and_checks_healthz() -> None:
    steps = final_stage()
    assert steps[0] == ("FROM", "debian:bookworm-slim")
    (user,) = [args for name, args in steps if name == "USER"]
    assert int(user.split(":")[0]) >= 10000  # numeric: Kubernetes' runAsNonRoot can check it
    (healthcheck,) = [args for name, args in steps if name == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert ("ENTRYPOINT", '["/usr/local/bin/ivr-entrypoint"]') in steps
    assert ("COPY", "deploy/entrypoint.sh /usr/local/bin/ivr-entrypoint") in steps
    assert ("CMD", '["serve"]') in steps


def test_the_image_installs_the_lock_as_ci_does() -> None:
    runs = " ".join(args for name, args in instructions(CONTAINERFILE.read_text()) if name == "RUN")
    assert "uv==0.13.9" in runs
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv==0.13.9" in ci
    syncs = re.findall(r"uv sync ([^&]*)", runs)
    assert syncs and all({"--locked", "--no-dev", "--no-editable"} <= set(s.split()) for s in syncs)


def test_no_secret_is_built_into_the_image() -> None:
    secret = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|_KEY\b|DATABASE_URL|REDIS_URL")
    for name, args in instructions(CONTAINERFILE.read_text(encoding="utf-8")):
        assert name != "ARG", args  # a build argument is kept in the image's history
        if name == "ENV":
            names = re.findall(r"(\w+)=", args)
            assert names and not [n for n in names if secret.search(n)], args
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", "instance/", ".git/", ".venv/", "tests/"} <= set(ignored)


def ivr_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if name in IVR_SERVICES}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_compose_runs_each_role_from_the_image_with_the_env_file(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {*IVR_SERVICES, "nginx", "postgres", "redis"}
    for name, role in IVR_SERVICES.items():
        service = services[name]
        assert service["command"] == [role], name
        assert service["build"]["dockerfile"] == "Containerfile", name
        assert service["env_file"] == ".env", name
        assert service["stop_grace_period"] == "45s", name
        assert service["environment"]["IVR_WRITER"] == "off", name
    for name in ("migrate", "worker"):  # they serve no HTTP: the image's HEALTHCHECK is off
        assert services[name]["healthcheck"] == {"disable": True}


def test_compose_migrates_once_before_the_app_and_the_worker_start(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("app1", "app2", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_compose_redis_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"


def test_compose_trusts_only_nginx_and_nginx_sends_to_both_instances(
    compose: dict[str, Any],
) -> None:
    nginx = compose["services"]["nginx"]
    address = nginx["networks"]["line"]["ipv4_address"]
    (subnet,) = compose["networks"]["line"]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet["subnet"])
    for name, service in ivr_services(compose).items():
        assert service["environment"]["IVR_TRUSTED_PROXIES"] == address, name
    assert f"{NGINX_CONF.relative_to(ROOT)}:/etc/nginx/conf.d/default.conf:ro" in [
        volume.removeprefix("./") for volume in nginx["volumes"]
    ]
    upstreams = re.findall(r"^\s*server (\S+):(\d+)", NGINX_CONF.read_text(), re.MULTILINE)
    assert upstreams == [("app1", "8000"), ("app2", "8000")]


def make_env(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MAKE_ENV), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def test_the_env_file_has_every_secret_the_line_needs(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    result = make_env(tmp_path / ".env")
    assert result.returncode == 0, result.stderr
    env = read_env_file(tmp_path / ".env")

    settings = Settings.from_env(env)
    settings.validate()  # TWILIO_AUTH_TOKEN and IVR_SECRET, long enough
    assert settings.metrics_token
    assert f":{env['POSTGRES_PASSWORD']}@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0"
    interpolated = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert interpolated == {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    assert interpolated <= env.keys()
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600

    make_env(tmp_path / "second.env")
    again = read_env_file(tmp_path / "second.env")
    secrets = ("TWILIO_AUTH_TOKEN", "IVR_SECRET", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
    assert all(env[name] != again[name] for name in secrets)


def test_the_env_file_keeps_a_given_twilio_token_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert make_env(path, TWILIO_AUTH_TOKEN="0123456789abcdef0123456789abcdef").returncode == 0
    written = path.read_text()
    assert read_env_file(path)["TWILIO_AUTH_TOKEN"] == "0123456789abcdef0123456789abcdef"

    again = make_env(path)

    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert path.read_text() == written


class ComposeNginx(Nginx):
    """nginx with the compose line's server block, its `app1`/`app2` and port 80 replaced by this
    machine's addresses (nothing else changed)."""

    def _config(self, upstreams: list[int]) -> str:
        block = NGINX_CONF.read_text(encoding="utf-8")
        for name, port in zip(("app1", "app2"), upstreams, strict=True):
            block = block.replace(f"server {name}:8000", f"server 127.0.0.1:{port}")
        block = block.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        folder = self.folder
        temp = "\n".join(
            f"{kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {self.error_log} notice;\nevents {{ worker_connections 768; }}\n"
            f"http {{\n{temp}\naccess_log {self.access_log};\n{block}\n}}\n"
        )


@pytest.fixture
def line(migrated_database: Database, tmp_path: Path) -> Iterator[tuple[ComposeNginx, list[Any]]]:
    """Two `serve` instances started by the entrypoint, behind the compose line's nginx config."""
    processes = []
    ports = []
    try:
        for name in ("app1", "app2"):
            port = free_port()
            env = entrypoint_environment(
                tmp_path / name,
                DATABASE_URL=database_url(migrated_database),
                PORT=str(port),
                IVR_TRUSTED_PROXIES="127.0.0.1",
                IVR_SERVE_WORKERS="1",
                IVR_SERVE_THREADS="4",
            )
            processes.append(start_entrypoint("serve", env=env, log=tmp_path / f"{name}.log"))
            ports.append(port)
        for port in ports:
            wait_until(partial(answers, port), timeout=60)
        nginx = ComposeNginx(tmp_path / "nginx", ports)
        nginx.start()
        try:
            yield nginx, processes
        finally:
            nginx.stop()
    finally:
        for process in processes:
            stop_group(process)


def test_a_call_goes_through_the_compose_nginx_and_survives_one_instance_stopping(
    line: tuple[ComposeNginx, list[Any]],
) -> None:
    nginx, processes = line
    phone = HttpPhone(base_url=nginx.url, caller="+14155550123")
    phone.dial()
    phone.press("2")  # English: the main menu
    assert phone.twiml is not None and phone.twiml.find("Gather") is not None

    stop_group(processes[0])  # app1 is gone: its connections are refused

    for _ in range(4):  # round-robin would send two of these to app1
        phone = HttpPhone(base_url=nginx.url, caller="+14155550124")
        phone.dial()
        assert phone.twiml is not None and phone.twiml.find("Gather") is not None
