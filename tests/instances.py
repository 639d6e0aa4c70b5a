"""Several `ivr serve` instances behind a real nginx, and a caller that reaches them over HTTP.

`Instance` is one `ivr serve` (gunicorn) process, `Nginx` a private nginx in front of them (its own
config, PID file, logs and temp paths in a test directory, never the machine's nginx), and `HttpPhone`
a call that Twilio walks through the webhooks: it POSTs to the proxy and signs each request for the
public URL, the proxy's address, as Twilio signs the URL it requested. Every process is stopped by its
own PID and every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from tests.faults import free_port, start_logged, wait_until
from tests.support import AUTH_TOKEN, Phone, new_call_sid, spoken

ROOT = Path(__file__).resolve().parents[1]
NGINX_PACKAGE = "nginx"
"""The Debian package that provides the `nginx` binary (`apt-get install nginx`)."""
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
ACCESS_LOG_FORMAT = '$request_method $uri $status upstream=$upstream_addr body="$request_body"'
"""The test's access log: which instance served each request, and the form (to tell calls apart)."""


def nginx_binary() -> str:
    """The nginx executable; AssertionError naming the Debian package when it is not installed."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert found, f"nginx is not installed: apt-get install {NGINX_PACKAGE} (Debian package)"
    return found


def answers(port: int) -> bool:
    """True once something answers HTTP on 127.0.0.1:`port`'s /healthz (even unhappily)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop `process` (a gunicorn master) with SIGTERM twice, the second skipping the drain
    (`ivr.drain`), as an operator's double Ctrl-C does; the master stops its workers. SIGKILL to
    the process group it leads if that takes too long."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


@dataclass
class Instance:
    """One `ivr serve` process in a process group of its own; its gunicorn access log in `log`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        log: Path,
        workers: int = 1,
        port: int | None = None,
        *,
        root: Path = ROOT,
    ) -> Instance:
        """Start `ivr serve --workers N` on `port` or a free one (the caller waits with
        `wait_ready`), from the source tree `root` (another release's, extracted:
        `tests/test_upgrade.py`); the log is appended to, so a restart on the same port keeps
        the first's."""
        port = port or free_port()
        process = start_logged(
            [
                *(sys.executable, "-m", "ivr.cli", "serve"),
                *("--port", str(port), "--workers", str(workers)),
            ],
            env=env,
            cwd=root,
            log=log,
            append=True,
        )
        return cls(process, port, log)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def up() -> bool:
            assert self.process.poll() is None, f"ivr serve exited: {self.log.read_text()[-2000:]}"
            return answers(self.port)

        wait_until(up, timeout=timeout)

    def stop(self) -> None:
        stop_group(self.process)


class Nginx:
    """A private nginx on a free port in front of `upstreams`, round-robin, configured in `folder`."""

    def __init__(self, folder: Path, upstreams: list[int], server_options: str = "") -> None:
        self.binary = nginx_binary()
        self.server_options = server_options
        """Appended to each upstream `server` line (`max_fails=1 fail_timeout=2s`)."""
        self.folder = folder
        self.port = free_port()
        self.access_log = folder / "access.log"
        self.error_log = folder / "error.log"
        self.config = folder / "nginx.conf"
        folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config(upstreams), encoding="utf-8")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The public base URL, as Twilio and the agents reach the service."""
        return f"http://127.0.0.1:{self.port}"

    def _config(self, upstreams: list[int]) -> str:
        folder = self.folder
        options = f" {self.server_options}" if self.server_options else ""
        servers = "\n".join(f"        server 127.0.0.1:{port}{options};" for port in upstreams)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""\
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {self.error_log} notice;
events {{
    worker_connections 768;  # Debian's nginx.conf: slow clients cost nginx a connection each
}}
http {{
{temp}
    log_format upstreams '{ACCESS_LOG_FORMAT}';
    access_log {self.access_log} upstreams;
    upstream ivr {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 64k;
        client_header_timeout 10s;
        client_body_timeout 10s;
        location / {{
            proxy_pass http://ivr;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_read_timeout 20s;
        }}
    }}
}}
"""

    def _command(self, *extra: str) -> list[str]:
        """nginx with every path in the test folder: prefix, config, and the error log of start-up."""
        folder, config, errors = str(self.folder), str(self.config), str(self.error_log)
        return [self.binary, *extra, "-p", folder, "-c", config, "-e", errors]

    def start(self) -> None:
        check = subprocess.run(
            self._command("-t"),
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT,
        )
        assert check.returncode == 0, f"nginx -t refused the config: {check.stderr}"
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def up() -> bool:
            assert self._process is not None and self._process.poll() is None, (
                f"nginx exited: {self.error_log.read_text(errors='replace')[-2000:]}"
            )
            return answers(self.port)

        wait_until(up, timeout=START_TIMEOUT)

    def stop(self) -> None:
        """Stop nginx by its PID: SIGQUIT (graceful), then SIGKILL of its process group."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)

    def served(self) -> dict[str, set[str]]:
        """For each CallSid in the access log, the upstream addresses that served its webhooks."""
        by_call: dict[str, set[str]] = defaultdict(set)
        pattern = re.compile(r"^POST /voice/\S* \d+ upstream=(\S+) .*?CallSid=(CA[0-9a-f]+)")
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = pattern.match(line)
            if match:
                by_call[match[2]].add(match[1])
        return dict(by_call)


@dataclass
class HttpPhone(Phone):
    """One call walked through the webhooks over HTTP, the way Twilio would: requests go to the
    proxy at `base_url`, signed for `base_url` + the webhook URL exactly as the TwiML gave it.
    Otherwise a `Phone` (the same form, keys, redirects and recordings).

    Twilio (Webhook security): "Twilio signs every webhook request with an included
    X-Twilio-Signature header. [...] The hash uses the request URL, request body, and your Auth
    Token as the secret key." The URL is the public one Twilio requested, the proxy's."""

    client: Any = None
    """None: no Flask test client, the requests go over HTTP."""

    def post(self, url: str, form: dict[str, str]) -> tuple[int, str]:
        """POST `form` to the relative webhook `url` through the proxy, signed for the public URL."""
        public = self.base_url + url
        signature = RequestValidator(AUTH_TOKEN).compute_signature(public, form)
        request = urllib.request.Request(
            public, data=urlencode(form).encode(), headers={"X-Twilio-Signature": signature}
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def _post(self, url: str, **extra: str) -> ET.Element:
        status, body = self.post(url, self.form(**extra))
        assert status == 200, f"{url} answered {status}: {body}"
        self.twiml = ET.fromstring(body)
        assert self.twiml.tag == "Response", body
        self.heard += spoken(self.twiml)
        return self.twiml

    def agent_answers(self) -> str:
        """The agent picks up the <Dial>: Twilio fetches the whisper on the agent's leg."""
        assert self.twiml is not None
        dial = self.twiml.find("Dial")
        assert dial is not None, "the caller is not being put through"
        form = {"CallSid": new_call_sid(), "ParentCallSid": self.sid, "From": self.caller}
        status, body = self.post(dial[0].attrib["url"], form)
        assert status == 200, body
        return body

    def conversation_ends(self, seconds: int) -> ET.Element:
        """The agent hangs up after `seconds`: Twilio requests the <Dial>'s action URL."""
        assert self.twiml is not None
        dial = self.twiml.find("Dial")
        assert dial is not None
        return self._post(
            dial.attrib["action"], DialCallStatus="completed", DialCallDuration=str(seconds)
        )

    def hang_up(self, status: str = "completed", duration: int = 42) -> None:
        form = self.form(CallStatus=status, CallDuration=str(duration))
        answered, body = self.post("/voice/status", form)
        assert answered in (200, 204), body


def agent_request(
    base_url: str, agent_id: str, pin: str, action: str
) -> tuple[int, dict[str, object]]:
    """An agent's API request (`login` or `logout`) with HTTP Basic auth, through the proxy."""
    credentials = base64.b64encode(f"{agent_id}:{pin}".encode()).decode()
    request = urllib.request.Request(
        f"{base_url}/api/agents/{agent_id}/{action}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode()}
