"""Every shell command in the README and the docs runs as written, or this file says why it is not run.

The commands are read from the code blocks of README.md and of every page under docs/: fenced blocks
marked `sh` (every fenced block must name its language, so that a command cannot hide in an unmarked
one) and indented blocks. A command is a line of a block (with the lines it continues with a `\\`),
with its comment left out; one that several pages give is run, or listed, once. Each is either run
here as written, in a copy of the project with an `instance/` of its own and `ivr` on PATH (as the
`export PATH=...` line of docs/operators/production.md puts it), or listed in `NOT_RUN` with the
reason; one that is neither, or an entry no longer in the README or the docs, fails
`test_every_readme_command_is_run_or_listed_with_a_reason`.

Three liberties, each said where it is taken: `localhost:5000`, the port of `ivr serve --dev`, and
8099, that of `ivr exchange serve`, are other free ports (the machine may run something on them), the
exchange example waits for its server to listen before its request (a person typing does), and the
diagram example's own files (`other.yaml`, `other_prompts/`) are copies of the shipped ones.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ivr.db import Database
from ivr.simulator.load import load_scenario
from tests.faults import free_port, wait_until
from tests.instances import answers, stop_group
from tests.support import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
"""The README, then every page of the docs: where commands are read from."""
CI_SCRIPT = ROOT / ".ci" / "run"
SHELL = {"sh", "bash", "shell", "console"}
"""Fenced blocks of commands; every other fenced block must name what it holds instead."""
NOT_COMMANDS = {"text", "nginx", "yaml"}
DIRECTIVES = {"{toctree}"}
"""The docs site's own blocks (MyST directives): a table of contents, no command."""
EXPORT_PATH = 'export PATH="$PWD/.venv/bin:$PATH"'
"""The line (docs/operators/production.md) that puts `ivr` on PATH; every shell this file starts
begins with it."""
DEV_PORT = "5000"
"""The port of `ivr serve --dev` that the README's requests name."""
EXCHANGE_PORT = "8099"
"""The port of `ivr exchange serve` in the README's example, another free one here."""
SETTINGS = {
    "DATABASE_URL",
    "REDIS_URL",
    "ROUTING_RULES",
    "VOICE_PROMPTS",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "PUBLIC_BASE_URL",
    "HOST",
    "PORT",
    "PROMETHEUS_MULTIPROC_DIR",
}
"""Settings of the environment the tests run in that the README's commands must not inherit
(nor any IVR_*): they run on the defaults, as on a fresh clone."""
PASSWORD = "correct horse battery staple"


# --- reading the README -----------------------------------------------------------------------


def code_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, language, lines) of each code block: fenced ones with their info string,
    indented ones (after a blank line, four spaces in) as `sh`."""
    blocks: list[tuple[int, str, list[str]]] = []
    lines = text.splitlines()
    fence: tuple[int, str, list[str]] | None = None
    indented: tuple[int, str, list[str]] | None = None
    for number, line in enumerate(lines, start=1):
        marker = re.match(r"^\s*```(.*)$", line)
        if fence is not None:
            if marker:
                blocks.append(fence)
                fence = None
            elif fence[2] and fence[2][-1].endswith("\\"):  # a command continued
                fence[2][-1] = fence[2][-1][:-1].rstrip() + " " + line.strip()
            else:
                fence[2].append(line.strip())
            continue
        if marker:
            fence = (number, marker.group(1).strip(), [])
            continue
        if line.startswith("    ") and line.strip() and (indented or not lines[number - 2].strip()):
            indented = indented or (number, "sh", [])
            indented[2].append(line.strip())
            continue
        if indented is not None:
            blocks.append(indented)
            indented = None
    return blocks


def without_comment(line: str) -> str:
    """The line up to a `#` that starts a shell comment (outside quotes, at the start of a word)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def readme_commands() -> list[str]:
    """Every command of the shell blocks of the README and the docs pages, as written (without its
    comment), each once, in the order of `PAGES`."""
    commands: dict[str, None] = {}
    for page in PAGES:
        for _, language, lines in code_blocks(page.read_text(encoding="utf-8")):
            if language in SHELL:
                commands.update(dict.fromkeys(c for c in map(without_comment, lines) if c))
    return list(commands)


# --- what is run, and what is not ---------------------------------------------------------------

RUN = {
    EXPORT_PATH: "every shell of this file starts with it",
    "ivr db upgrade": "test_the_database_commands",
    "ivr diagram": "test_the_diagram_commands",
    "ivr diagram --out flow.svg": "test_the_diagram_commands",
    "ivr diagram --format png --out flow.png": "test_the_diagram_commands",
    "ivr diagram --format dot": "test_the_diagram_commands",
    "ivr diagram --language zh-CN --rules other.yaml --prompts other_prompts/": (
        "test_the_diagram_commands"
    ),
    "ivr diagram --out docs/diagram.svg && ivr diagram --format png --out docs/diagram.png": (
        "test_the_diagram_commands"
    ),
    "ivr admins set-password ada": "test_the_admin_account_commands",
    'echo "$PASSWORD" | ivr admins set-password ada --password-stdin': (
        "test_the_admin_account_commands"
    ),
    "ivr admins list": "test_the_admin_account_commands",
    "ivr admins remove ada": "test_the_admin_account_commands",
    'ivr simulate --at "2026-12-25 09:00 Europe/Berlin" --from +4930123456 --keys "4,2,2,1,r8"': (
        "test_the_simulator_commands"
    ),
    'ivr simulate --at "2026-11-23 10:00 America/New_York" --agents emma --keys "2,2,2,w1,4"': (
        "test_the_simulator_commands"
    ),
    'ivr simulate --calls 50 --at "2026-11-23 10:00 America/New_York" --agents emma,li_wei '
    '--keys "2,2,2|2,0|2,6,1,w2,h"': "test_the_simulator_commands",
    'ivr simulate --at "2026-11-25 03:00 UTC" --from +4915112345678 --exchange '
    'known=+4915112345678 --keys "3,1,1,code" --hangup-after 150': "test_the_simulator_commands",
    'ivr simulate --at "2026-11-23 10:00 America/New_York" --keys "2,s" --say "my withdrawal '
    'never arrived" --hangup-after 90': "test_the_simulator_commands",
    "ivr rules publish": "test_the_release_commands",
    "ivr rules publish --draft my_edit.yaml": "test_the_release_commands",
    'ivr simulate --draft --keys "2,5"': "test_the_release_commands",
    "ivr rules diff live draft": "test_the_release_commands",
    "ivr rules promote": "test_the_release_commands",
    "ivr rules history": "test_the_release_commands",
    "ivr rules rollback 1": "test_the_release_commands",
    'ivr incident start --issues withdrawal --eta "2030-06-01 18:00 UTC"': (
        "test_the_release_commands"
    ),
    "ivr incident end": "test_the_release_commands",
    "curl -s -XPOST localhost:5000/voice/incoming -d CallSid=CA123 "
    "--data-urlencode From=+4930123456 | tee first.xml": "test_the_development_server_commands",
    "greet=$(grep -o '<Redirect[^>]*>[^<]*' first.xml | sed 's/.*>//; s/&amp;/\\&/g')": (
        "test_the_development_server_commands"
    ),
    'curl -s -XPOST "localhost:5000$greet" -d CallSid=CA123 '
    "--data-urlencode From=+4930123456 | tee menu.xml": "test_the_development_server_commands",
    "next=$(grep -o 'action=\"[^\"]*\"' menu.xml | head -1 | cut -d'\"' -f2 "
    "| sed 's/&amp;/\\&/g')": "test_the_development_server_commands",
    'curl -s -XPOST "localhost:5000$next" -d CallSid=CA123 -d Digits=2': (
        "test_the_development_server_commands"
    ),
    "curl -s localhost:5000/healthz": "test_the_development_server_commands",
    'ivr simulate --url http://127.0.0.1:5000 --keys "2,6,1,h"': (
        "test_the_development_server_commands"
    ),
    'export IVR_EXCHANGE_SECRET=$(python3 -c "import secrets; print(secrets.token_urlsafe(32))")': (
        "test_the_exchange_commands"
    ),
    "ivr exchange serve --port 8099 &": "test_the_exchange_commands",
    'body=\'{"caller": "+4915112345678", "call": "CA123"}\' t=$(date +%s)': (
        "test_the_exchange_commands"
    ),
    'sig=$(printf \'%s.%s\' "$t" "$body" | openssl dgst -sha256 -hmac "$IVR_EXCHANGE_SECRET" '
    "| sed 's/^.*= //')": "test_the_exchange_commands",
    'curl -s localhost:8099/ivr/lookup -H "X-IVR-Signature: t=$t,v1=$sig" -d "$body"': (
        "test_the_exchange_commands"
    ),
}
"""Each command run here as written, and the test that runs it."""

INSTALL = (
    "makes a virtualenv and installs every dependency from PyPI (minutes, and the network); CI's "
    ".ci/run installs the same way, test_every_install_command_names_the_same_uv checks the uv "
    "version, and the development server it ends with runs in test_the_development_server_commands"
)
VERSION_12 = (
    "needs a line whose database holds a version 12; tests/rules/test_versions.py and "
    "tests/simulator/test_versions.py run show, diff, rollback and --rules-version on stored versions"
)
PAGER = (
    "asks a line on the internet with an account of its own; tests/admin/test_rules_versions.py "
    "starts and ends incidents over HTTP Basic at /admin/api/incident"
)
NO_ENGINE = (
    "needs a container engine that can run containers, which the machines these tests run on do "
    "not have (docs/operators/deploying.md says what was tried); tests/deploy/ checks the image"
)
NO_CLUSTER = "needs a Kubernetes cluster; tests/deploy/test_manifests.py validates the manifests"
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install -q uv==0.13.9 && .venv/bin/uv sync -q "
    "--locked --inexact --extra dev && .venv/bin/ivr serve --dev": INSTALL,
    "python3 -m venv .venv && .venv/bin/pip install -q uv==0.13.9 && .venv/bin/uv sync -q "
    "--locked --inexact --extra dev && .venv/bin/python -m pytest": (
        "installs (see above), then runs this whole suite, this test with it"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -q uv==0.13.9 && .venv/bin/uv sync -q "
    "--locked --inexact --no-editable": INSTALL,
    "apt-get update && apt-get install -y redis-server graphviz chromium nginx": (
        "needs root and Debian's archive; test_the_apt_get_line_names_what_ci_installs checks it "
        "names the packages .ci/run installs"
    ),
    "command -v kubectl || apt-get install -y kubernetes-client": (
        "needs root and Debian's archive; test_the_apt_get_line_names_what_ci_installs checks it "
        "with the line above"
    ),
    "export DATABASE_URL=postgresql://ivr@db.internal/ivr REDIS_URL=redis://redis.internal:6379/0": (
        "names the production hosts db.internal and redis.internal"
    ),
    "export TWILIO_AUTH_TOKEN=... IVR_SECRET=... PUBLIC_BASE_URL=https://support.example.com": (
        "placeholders for the operator's own secrets"
    ),
    "python3 deploy/make_env.py": (
        "writes .env into the checkout; tests/deploy/test_image.py runs it with --out and checks "
        "every secret the line needs is there"
    ),
    "docker compose up -d --build": (
        "needs a container engine that can run containers, which the machines these tests run on "
        "do not have (docs/operators/deploying.md says what was tried); tests/deploy/ checks "
        "compose.yaml, the image's entrypoint and the compose nginx config with real processes"
    ),
    "curl -s localhost:8080/healthz": "asks the compose line of the command above",
    "IVR_WRITER=off ivr serve --no-migrate --host 127.0.0.1 --port 8000 --workers 4 --threads 8": (
        "serves until stopped, with the production settings above; tests/test_instances.py runs "
        "ivr serve instances behind nginx"
    ),
    "ivr worker": (
        "runs until stopped: tests/test_cli.py::test_ivr_worker_writes_tickets_until_told_to_stop"
    ),
    "IVR_SCREENSHOTS=1 .venv/bin/python -m pytest -q tests/browser": (
        "the browser tests, which this suite runs (writing the screenshots is the only difference)"
    ),
    ".venv/bin/python -m pytest -q tests/browser": "the browser tests, which this suite runs",
    'ivr simulate --url https://ivr.example.com --keys "2,6,1,h"': "an example host on the internet",
    "ivr simulate --load scenarios/waits/*.yaml": (
        "about 70 s, and exits 1 while steady.yaml misses its MAE target (docs/qa/waits.md); "
        "test_the_load_glob_takes_only_scenarios checks what the glob takes, "
        "tests/simulator/test_load.py the load runs"
    ),
    "ivr simulate --load scenarios/waits/peak.yaml --json": (
        "15 s; tests/simulator/test_load.py runs --load --json on a shorter scenario"
    ),
    "ivr simulate --load scenarios/waits/peak.yaml --estimator formula": (
        "15 s; tests/simulator/test_load.py runs --estimator formula on a shorter scenario"
    ),
    ".venv/bin/python -m bench.waits": "about 10 minutes, and it rewrites docs/qa/waits.md",
    ".venv/bin/python -m bench.erlang_check": (
        "6 to 7 minutes of Erlang runs; tests/simulator/test_load.py checks each file is its model"
    ),
    ".venv/bin/python -m bench.waits --only steady,erlang_c_s4_084": (
        "a minute or two; tests/bench/test_waits_report.py checks the report on made-up rounds"
    ),
    ".venv/bin/uv sync -q --locked --inexact --extra dev --extra bench && "
    ".venv/bin/python -m bench.run": "the benchmark: about 12 minutes on PostgreSQL and Redis",
    ".venv/bin/uv lock && .venv/bin/uv sync --locked --inexact --extra dev": (
        "rewrites uv.lock and the virtualenv from PyPI, a maintainer's step (CI runs uv lock --check)"
    ),
    ".venv/bin/uv lock --upgrade && .venv/bin/uv sync --locked --inexact --extra dev": (
        "takes new releases from PyPI into uv.lock, a maintainer's step"
    ),
    # docs/developers/tests.md
    ".venv/bin/python -m pytest": "this suite itself",
    ".venv/bin/python -m sphinx -W --keep-going -n -q docs build/docs": (
        "tests/test_docs.py builds the site with the same options"
    ),
    # docs/admins/releasing.md: the walk-through of a line whose history holds version 12
    "ivr rules show 12": VERSION_12,
    "ivr rules diff 12 live": VERSION_12,
    "ivr rules rollback 12": VERSION_12,
    "ivr simulate --rules-version 12 --explore": VERSION_12,
    "ivr check my_edit.yaml": (
        "my_edit.yaml is the admin's own edit; tests/test_cli.py runs ivr check on rules files"
    ),
    'ivr rules publish --draft my_edit.yaml --note "new funds menu"': (
        "the admin's own edit; test_the_release_commands stages my_edit.yaml as a draft, "
        "tests/rules/test_versions.py publishes with a note"
    ),
    'ivr simulate --draft --keys "2,2,1"': (
        "needs a staged draft; test_the_release_commands simulates one with --draft, "
        "tests/simulator/test_versions.py these keys' kind"
    ),
    'ivr incident start --issues withdrawal,deposit --eta "2026-12-07 18:00 UTC" '
    "[--languages de-DE,fr-FR]": (
        "a synopsis ([...] is optional), not a command; test_the_release_commands starts one"
    ),
    "ivr incident status": (
        "tests/rules/test_versions.py::test_an_incident_is_started_and_ended_from_the_command_line"
    ),
    "curl -u pager:PASSWORD -H 'Content-Type: application/json' -d '{\"issues\": "
    '["withdrawal"], "eta": "2026-12-07 18:00 UTC"}\' '
    "https://ivr.example.com/admin/api/incident": PAGER,
    "curl -u pager:PASSWORD -X DELETE https://ivr.example.com/admin/api/incident": PAGER,
    # docs/operators/deploying.md
    "docker build -f Containerfile -t ivr .": NO_ENGINE,
    "podman build --format docker -f Containerfile -t ivr .": NO_ENGINE,
    "docker compose run --rm app1 ivr admins set-password ada": NO_ENGINE,
    "docker compose run --rm app1 ivr agents set-pin emma": NO_ENGINE,
    "kubectl kustomize deploy/k8s/overlays/production": (
        "tests/deploy/test_manifests.py renders the overlay with kubectl kustomize and validates it"
    ),
    "kubectl create namespace ivr-production": NO_CLUSTER,
    "kubectl -n ivr-production create secret generic ivr-secrets --from-env-file=secrets.env": (
        NO_CLUSTER
    ),
    "kubectl -n ivr-production create secret generic ivr-credentials "
    "--from-file=admins.json=instance/admins.json "
    "--from-file=agent_pins.json=instance/agent_pins.json": NO_CLUSTER,
    "kubectl apply -k deploy/k8s/overlays/production": NO_CLUSTER,
}
"""Each command not run here, and why."""


def test_every_readme_command_is_run_or_listed_with_a_reason() -> None:
    commands = readme_commands()
    unknown = [c for c in commands if c not in RUN and c not in NOT_RUN]
    assert not unknown, (
        "README and docs commands neither run by tests/test_readme.py nor in its NOT_RUN:\n"
        + ("\n".join(unknown))
    )
    gone = sorted((RUN.keys() | NOT_RUN.keys()) - set(commands))
    assert not gone, (
        "listed in tests/test_readme.py but no longer in the README or docs:\n" + "\n".join(gone)
    )
    assert not RUN.keys() & NOT_RUN.keys()
    assert all(NOT_RUN.values())
    assert set(RUN.values()) - {RUN[EXPORT_PATH]} == GROUPS.keys()  # each run by its test


def test_every_fenced_block_names_its_language() -> None:
    unnamed = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in PAGES
        for number, language, _ in code_blocks(page.read_text(encoding="utf-8"))
        if language not in SHELL | NOT_COMMANDS | DIRECTIVES
    ]
    assert not unnamed, f"{unnamed}: mark the block ```sh or ```text"


def test_every_install_command_names_the_same_uv() -> None:
    readme = [
        version
        for page in PAGES
        for version in re.findall(r"pip install -q uv==([0-9.]+)", page.read_text(encoding="utf-8"))
    ]
    ci = re.findall(r"pip install --quiet uv==([0-9.]+)", CI_SCRIPT.read_text(encoding="utf-8"))
    assert len(readme) == 3 and len(ci) == 1
    assert set(readme) == set(ci), f"README installs uv {set(readme)}, .ci/run uv {set(ci)}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'required-version = ">={ci[0]}"' in pyproject


def test_the_apt_get_line_names_what_ci_installs() -> None:
    lines = [c for c in readme_commands() if "apt-get install -y" in c]
    packages = {p for line in lines for p in line.split("apt-get install -y", 1)[1].split()}
    ci = set(re.findall(r"missing\+=\(([a-z-]+)\)", CI_SCRIPT.read_text(encoding="utf-8")))
    assert packages == ci == {"redis-server", "graphviz", "chromium", "nginx", "kubernetes-client"}


# --- running them -------------------------------------------------------------------------------


def run_by(test: str) -> list[str]:
    """The README commands `test` runs, in the README's order."""
    return [c for c in readme_commands() if RUN.get(c) == test]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project, as a fresh clone has it, with this test run's virtualenv as .venv."""
    copy = tmp_path_factory.mktemp("readme") / "ivr"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "instance",
            "__pycache__",
            ".*_cache",
            "*.egg-info",
            "first.xml",
            "menu.xml",
        ),
    )
    (copy / ".venv").symlink_to(sys.prefix)
    return copy


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without the service's settings, with `extra` on top."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS and not name.startswith("IVR_")
    }
    return {**kept, **extra}


def sh(command: str, project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`command` in bash in the project copy, after the README's `export PATH=...`."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", f"{EXPORT_PATH}\n{command}"],
        cwd=project,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ran(command: str, project: Path, **env: str) -> str:
    """Run `command` (see `sh`); its stdout, once it has succeeded."""
    result = sh(command, project, **env)
    assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stderr[-3000:]}"
    return result.stdout


def at_a_terminal(command: str, project: Path, replies: list[tuple[str, str]]) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its controlling terminal (`setsid --ctty`), typing
    each reply once its prompt shows; (exit status, what the terminal showed)."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        ["setsid", "--ctty", "--wait", "bash", "-e", "-c", f"{EXPORT_PATH}\n{command}"],
        cwd=project,
        env=environment(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    shown = ""
    waiting = list(replies)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk.decode("utf-8", "replace")
            if waiting and shown.rstrip().endswith(waiting[0][0]):
                os.write(main, f"{waiting.pop(0)[1]}\n".encode())
        return process.wait(timeout=10), shown
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def development_server(project: Path) -> Iterator[str]:
    """The end of the README's first command, `.venv/bin/ivr serve --dev`, on a free port (the port
    the README's requests then name instead of 5000)."""
    port = str(free_port())
    with (project / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [".venv/bin/ivr", "serve", "--dev", "--port", port],
            cwd=project,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def up() -> bool:
            assert process.poll() is None, (project / "serve.log").read_text()[-2000:]
            return answers(int(port))

        wait_until(up, timeout=30)
        yield port
    finally:
        stop_group(process)


# Each test's commands run in the order of the README, each group in a thread of its own, all
# groups at once from the first test of the file on: every command spends seconds starting Python,
# and the machine has two cores. A test waits for its group and reads what it printed.


def database_commands(project: Path) -> list[str]:
    return [ran(c, project) for c in run_by("test_the_database_commands")]


def diagram_commands(project: Path) -> list[str]:
    # The example's own rules and prompts, which the user names: copies of the shipped ones.
    shutil.copy(project / "routing_rules.yaml", project / "other.yaml")
    shutil.copytree(project / "voice_prompts", project / "other_prompts")
    return [ran(c, project) for c in run_by("test_the_diagram_commands")]


def admin_account_commands(project: Path) -> list[str]:
    typed, piped, listing, removal = run_by("test_the_admin_account_commands")
    status, shown = at_a_terminal(
        typed, project, [("New password:", PASSWORD), ("The same password again:", PASSWORD)]
    )
    assert status == 0, shown
    return [
        shown,
        ran(piped, project, PASSWORD=PASSWORD),
        ran(listing, project),
        ran(removal, project),
    ]


def simulator_commands(project: Path) -> list[str]:
    return [ran(c, project) for c in run_by("test_the_simulator_commands")]


def development_server_commands(project: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    with development_server(project) as port:
        *walk, simulate = [
            c.replace(f":{DEV_PORT}", f":{port}")
            for c in run_by("test_the_development_server_commands")
        ]
        # One shell for the requests: the second one uses what the first one answered.
        return ran("\n".join(walk), project), sh(simulate, project)


def exchange_commands(project: Path) -> str:
    export, serve, *request = run_by("test_the_exchange_commands")
    port = str(free_port())
    listening = (  # the liberty: a bounded wait for the server a person would see start
        f"for _ in $(seq 600); do curl -s -o /dev/null localhost:{port} && break; sleep 0.1; done"
    )
    # Stopped by its PID however the script ends: it would hold the output open past the test.
    script = [export, serve.replace(EXCHANGE_PORT, port), "trap 'kill $!' EXIT", listening]
    script += [line.replace(f":{EXCHANGE_PORT}", f":{port}") for line in request]
    return ran("\n".join(script), project)


MY_EDIT = ('"5": {label: opt_app, queue: tech,', '"5": {label: opt_app, queue: general,')
"""The change `my_edit.yaml` makes: app problems go to the general queue."""
TESTER = "+14155550100"
"""The number `my_edit.yaml` lists under `testers:`: the simulator's default caller."""


def release_commands(project: Path) -> list[str]:
    """In a folder of its own, since promoting and rolling back rewrite its rules files, with the
    `my_edit.yaml` the README names (the shipped rules with `MY_EDIT` and a tester); its
    database's schema made first, as `ivr serve` does it."""
    folder = project / "release"
    folder.mkdir()
    shutil.copy(project / "routing_rules.yaml", folder)
    shutil.copytree(project / "voice_prompts", folder / "voice_prompts")
    (folder / ".venv").symlink_to(sys.prefix)
    rules = (folder / "routing_rules.yaml").read_text(encoding="utf-8")
    edited = rules.replace(*MY_EDIT) + f'\ntesters: ["{TESTER}"]\n'
    (folder / "my_edit.yaml").write_text(edited, encoding="utf-8")
    ran("ivr db upgrade", folder)
    return [ran(c, folder) for c in run_by("test_the_release_commands")]


GROUPS = {
    "test_the_database_commands": database_commands,
    "test_the_diagram_commands": diagram_commands,
    "test_the_admin_account_commands": admin_account_commands,
    "test_the_simulator_commands": simulator_commands,
    "test_the_development_server_commands": development_server_commands,
    "test_the_exchange_commands": exchange_commands,
    "test_the_release_commands": release_commands,
}


@pytest.fixture(scope="module")
def started(project: Path) -> Iterator[dict[str, Future[Any]]]:
    """Every test's group of commands, running."""
    with ThreadPoolExecutor(max_workers=len(GROUPS)) as pool:
        yield {test: pool.submit(group, project) for test, group in GROUPS.items()}


def test_the_database_commands(project: Path, started: dict[str, Future[Any]]) -> None:
    printed = started["test_the_database_commands"].result(timeout=120)
    database = Database(f"sqlite:///{project / 'instance' / 'ivr.sqlite3'}")  # the default
    try:
        head = database.head_revision()
        assert printed == [f"database at revision {head}\n"]
        assert database.current_revision() == head
    finally:
        database.dispose()


def test_the_diagram_commands(project: Path, started: dict[str, Future[Any]]) -> None:
    drawn = started["test_the_diagram_commands"].result(timeout=120)
    assert len(drawn) == 6
    assert drawn[0].startswith("<svg") and drawn[3].startswith("digraph")
    assert "1 · 账户与登录" in drawn[4]  # the labels in Chinese
    for svg in ("flow.svg", "docs/diagram.svg"):
        assert "<svg" in (project / svg).read_text(encoding="utf-8")
    for png in ("flow.png", "docs/diagram.png"):
        assert (project / png).read_bytes().startswith(b"\x89PNG")


def test_the_admin_account_commands(started: dict[str, Future[Any]]) -> None:
    shown, piped, listing, removal = started["test_the_admin_account_commands"].result(timeout=120)
    assert "New password:" in shown and "The same password again:" in shown
    assert PASSWORD not in shown  # not echoed
    assert "password of ada set in instance/admins.json" in shown
    assert piped.startswith("password of ada set")
    assert listing == "ada\n"
    assert removal.startswith("ada removed")


def test_the_simulator_commands(started: dict[str, Future[Any]]) -> None:
    christmas, monday, summary, locked, said = started["test_the_simulator_commands"].result(
        timeout=120
    )
    assert "outcome voicemail" in christmas.splitlines()[-1]
    assert "outcome answered" in monday.splitlines()[-1]
    reached = re.search(r"^reached an agent: (\d+) while holding", summary, re.M)
    assert summary.startswith("50 calls: ") and reached and int(reached.group(1)) > 0, summary
    assert "verified by a code to the app, account locked" in locked.splitlines()[-1]
    assert 'says "my withdrawal never arrived"' in said
    assert "issue withdrawal, queue funds" in said.splitlines()[-1]


def test_the_development_server_commands(project: Path, started: dict[str, Future[Any]]) -> None:
    out, simulated = started["test_the_development_server_commands"].result(timeout=120)
    first = (project / "first.xml").read_text(encoding="utf-8")
    menu = (project / "menu.xml").read_text(encoding="utf-8")
    # A second of silence while the reference exchange is asked; then the greeting and its menu.
    assert "<Pause" in first and "<Redirect" in first and "<Gather" not in first
    assert "<Gather" in menu and out.startswith(first + menu)
    answer, health = out[len(first + menu) :].split("</Response>")
    assert 'language="en-US"' in answer  # key 2 chose English
    assert json.loads(health)["status"] == "ok", health
    assert json.loads(health)["exchange"] == "ok", health  # --dev: the reference, in-process
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    assert "Our phone support is open Monday to Friday" in simulated.stdout  # 6, then 1: the hours
    assert "TWILIO_AUTH_TOKEN is not set, so requests go unsigned" in simulated.stderr


def test_the_exchange_commands(started: dict[str, Future[Any]]) -> None:
    printed = started["test_the_exchange_commands"].result(timeout=120)
    answer = json.loads(printed.splitlines()[-1])
    assert answer == {"account": "acct-demo-de", "language": "de-DE", "tier": "standard"}


def test_the_release_commands(project: Path, started: dict[str, Future[Any]]) -> None:
    published, draft, tried, diff, promoted, history, back, on, off = started[
        "test_the_release_commands"
    ].result(timeout=300)
    assert published.startswith("version 1 (published) is live")
    assert draft.startswith("draft version 2 staged")
    assert "issue app_problem, queue general" in tried.splitlines()[-1]  # the tester hears it
    assert diff == (
        "from version 1 to version 2:\n"
        "  main menu: option 5 now goes to queue general (was tech)\n"
        f"  testers: {TESTER} added\n"
    )
    assert promoted.startswith("version 3 (draft 2 promoted) is live")
    first, staged, live = history.splitlines()
    assert re.search(r"Z +1 +[0-9a-f]{12}  published by cli:", first), history
    assert re.search(r"Z +2 +[0-9a-f]{12}  draft by cli:", staged), history
    assert re.search(r"Z +3 live +[0-9a-f]{12}  draft 2 promoted by cli:", live), history
    assert back.startswith("version 4 (rollback to version 1) is live")
    rules = (project / "release" / "routing_rules.yaml").read_text(encoding="utf-8")
    assert MY_EDIT[0] in rules  # the rollback rewrote the file: it is the live version again
    assert on.startswith("incident 1 on: issues withdrawal, ETA 2030-06-01 18:00 UTC")
    assert off == "incident 1 off: callers no longer hear it\n"


def test_the_load_glob_takes_only_scenarios(project: Path) -> None:
    (command,) = [c for c in NOT_RUN if c.startswith("ivr simulate --load scenarios/waits/*")]
    glob = command.split("--load", 1)[1].strip()
    files = ran(f"printf '%s\\n' {glob}", project).split()
    assert len(files) == 14  # the rules copies under rules/ are left out
    for name in files:
        load_scenario(project / name)  # a file that is not a load scenario raises LoadError
