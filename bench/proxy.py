"""A private nginx in front of the benchmark's app instances, as docs/operators/instances.md configures it.

Its configuration, PID file, logs and temp paths live in a folder of the run (never the machine's
nginx, which is not touched). It listens on one port for the whole run, so that the instances'
PUBLIC_BASE_URL (the URL the load generator signs for) stays the same, and is restarted with
another list of upstreams between phases (one instance, then two). It is stopped by its own PID.
The shape follows tests/instances.py `Nginx`, which cannot be imported from here without the
test helpers it depends on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from bench import servers

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
WORKER_PROCESSES = 1
"""nginx's share of the two cores stays small (it needs far less CPU per request than the app)."""
WORKER_CONNECTIONS = 1024
"""Enough for 100 concurrent calls, each holding one client and one upstream connection."""

ACCESS_LOG_FORMAT = "$request_method $uri $status upstream=$upstream_addr"
"""One line per request: which instance served it (to check that both instances took calls)."""

_LOG_LINE = re.compile(r"^POST /voice/\S* \d+ upstream=(\S+)")


def nginx_binary() -> str:
    """The nginx executable; RuntimeError naming the Debian package when it is not installed."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("nginx is not installed: apt-get install nginx (Debian package)")
    return found


def config_text(folder: Path, port: int, upstreams: list[int]) -> str:
    """The nginx.conf: docs/operators/instances.md's proxy settings (no TLS), round-robin over
    `upstreams`, all paths in `folder`, one worker process, an access log naming the upstream of
    each request."""
    if not upstreams:
        raise ValueError("nginx needs at least one upstream")
    upstream_lines = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams
    )
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
worker_processes {WORKER_PROCESSES};
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} notice;
events {{
    worker_connections {WORKER_CONNECTIONS};
}}
http {{
{temp}
    log_format upstreams '{ACCESS_LOG_FORMAT}';
    access_log {folder / "access.log"} upstreams;
    upstream ivr {{
{upstream_lines}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64k;
        location / {{
            proxy_pass http://ivr;
            proxy_set_header Host              $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host  $http_host;
            proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout    20s;
        }}
    }}
}}
"""


def upstream_counts(log_text: str) -> dict[str, int]:
    """Webhooks (POST /voice/...) per upstream address in an access log of ours."""
    counts: Counter[str] = Counter()
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            # A request nginx passed on after a refused connection names both: "a, b".
            counts[match[1].rstrip(",")] += 1
    return dict(counts)


class Nginx:
    """Our nginx on `port`, started (and restarted) in front of a list of instance ports."""

    def __init__(self, folder: Path, port: int) -> None:
        self.binary = nginx_binary()
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.upstreams: list[int] = []

    @property
    def url(self) -> str:
        """The public base URL: what the instances' PUBLIC_BASE_URL is, and what is signed."""
        return f"http://127.0.0.1:{self.port}"

    def _command(self, *extra: str) -> list[str]:
        folder = str(self.folder)
        config, errors = str(self.folder / "nginx.conf"), str(self.folder / "error.log")
        return [self.binary, *extra, "-p", folder, "-c", config, "-e", errors]

    def serve(self, upstreams: list[int]) -> None:
        """Be running in front of exactly `upstreams`, with an empty access log (restart if needed)."""
        self.stop()  # also when unchanged: each run starts with a fresh access log
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "access.log").unlink(missing_ok=True)
        (self.folder / "nginx.conf").write_text(
            config_text(self.folder, self.port, upstreams), encoding="utf-8"
        )
        check = subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=STOP_TIMEOUT
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config: {check.stderr}")
        self.process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.upstreams = list(upstreams)
        self._wait_listening()

    def _wait_listening(self) -> None:
        """Bounded: until nginx passes /healthz to an instance and gets its 200."""
        try:
            servers.wait_until_ok(f"{self.url}/healthz", self.process, START_TIMEOUT)  # type: ignore[arg-type]
        except RuntimeError as error:
            log = (self.folder / "error.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{error}; nginx error log: {log}") from error

    def served(self) -> dict[str, int]:
        """Webhooks per instance since the last `serve` (from the access log)."""
        log = self.folder / "access.log"
        return upstream_counts(log.read_text(errors="replace")) if log.exists() else {}

    def stop(self) -> None:
        """Stop nginx by its PID: SIGQUIT (graceful), then SIGKILL after a bound."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the master and its worker: our group
            process.wait(STOP_TIMEOUT)
        # Bounded wait for the worker to let go of the port (it exits with the master).
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _answers(self.url):
            time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
