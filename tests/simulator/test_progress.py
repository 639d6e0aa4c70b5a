"""Progress of the simulator's long runs: a bar on the terminal, nothing anywhere else.

The runs go to the installed `ivr` with stderr on a pseudo-terminal (the `pty` module), as at a
terminal, or on a pipe, as in a script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.simulator.test_load import SMALL
from tests.support import IVR, PROMPTS, RULES, ivr_environment, with_stderr_on_a_terminal

MONDAY_NEW_YORK = "2026-11-23 10:00 America/New_York"
CALLS = ("simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--at", MONDAY_NEW_YORK)
CALLS += ("--calls", "6", "--agents", "emma")
BAR = "calls:"  # the bar's label, then "NN%|" and "n/6"


def piped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IVR), *args],
        cwd=cwd,
        env=ivr_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_many_calls_show_a_bar_on_the_terminal_and_the_same_output(tmp_path: Path) -> None:
    status, out, shown = with_stderr_on_a_terminal(*CALLS, cwd=tmp_path)
    assert status == 0, shown
    assert BAR in shown and "/6 [" in shown and "%|" in shown
    assert shown.endswith("\r") and shown.split("\r")[-2].strip() == ""  # and then wiped
    quiet = piped(*CALLS, cwd=tmp_path)
    assert quiet.returncode == 0
    assert out == quiet.stdout  # stdout is what it was: the bar is on the terminal only
    assert out.startswith("6 calls: ")


def test_nothing_extra_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = piped(*CALLS, cwd=tmp_path)
    assert result.returncode == 0
    assert BAR not in result.stderr and "%|" not in result.stderr and "\r" not in result.stderr


def test_nothing_extra_with_json_even_at_a_terminal(tmp_path: Path) -> None:
    status, out, shown = with_stderr_on_a_terminal(*CALLS, "--json", cwd=tmp_path)
    assert status == 0
    assert BAR not in shown and "%|" not in shown
    assert out.splitlines()[-1].startswith('{"kind": "summary"')


def test_a_load_run_counts_its_callers_on_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    args = ("simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--load", str(path))
    status, out, shown = with_stderr_on_a_terminal(*args, cwd=tmp_path)
    assert status == 0, shown
    assert "load small:" in shown and " callers/s]" in shown
    assert out.startswith("load small (")
