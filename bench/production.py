"""What docs/operators/production.md runs, read from the page itself: the benchmark starts exactly that.

The page's first `sh` block holds the web command (`IVR_WRITER=off ivr serve --no-migrate ...
--workers 4 --threads 8`) and `ivr worker`; its text asks for Redis with `appendonly yes` and
`appendfsync everysec`. The benchmark parses the block rather than keeping its own copy, so that an
edit of the page changes what is measured (and tests/bench/test_production.py fails when the
block can no longer be read).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "operators" / "production.md"
"""The operators' Production page (it was the README's "Production" section)."""

GUNICORN_TIMEOUT_SECONDS = 20
"""What `ivr serve` sets (ivr/cli/serve.py `_run_gunicorn`); the floor gets the same."""

REDIS_PERSISTENCE = ("appendonly yes", "appendfsync everysec")
"""The Redis settings the Production page asks for, as `redis-server` options."""


@dataclass(frozen=True)
class ServeCommand:
    """The production web command: its environment prefix and `ivr serve`'s arguments."""

    env: dict[str, str]
    arguments: list[str]

    def option(self, name: str) -> str:
        """The value of `--name` (raises KeyError when the command does not give it)."""
        flag = f"--{name}"
        if flag not in self.arguments:
            raise KeyError(f"the production command has no {flag}")
        return self.arguments[self.arguments.index(flag) + 1]

    @property
    def workers(self) -> int:
        """gunicorn worker processes."""
        return int(self.option("workers"))

    @property
    def threads(self) -> int:
        """Threads per worker."""
        return int(self.option("threads"))

    def argv(self, port: int) -> list[str]:
        """The command as this checkout runs it, on `port` instead of the page's (`ivr` is
        `python -m ivr.cli`, so that the `ivr` of this working tree is the one measured)."""
        arguments = list(self.arguments)
        arguments[arguments.index("--port") + 1] = str(port)
        return [sys.executable, "-m", "ivr.cli", *arguments]

    def shown(self) -> str:
        """The command as the page writes it."""
        prefix = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{prefix} ivr {' '.join(self.arguments)}".strip()

    def gunicorn_settings(self) -> list[str]:
        """The same gunicorn settings for another app (the floor): workers, threads, timeout, and
        the access log on stdout that `ivr serve` keeps."""
        return [
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--timeout",
            str(GUNICORN_TIMEOUT_SECONDS),
            "--access-logfile",
            "-",
        ]


def production_section(text: str) -> str:
    """The Production page up to its first `##` section: its commands and the rules that go with
    them."""
    end = text.find("\n## ")
    return text[: end if end != -1 else len(text)]


def production_block(text: str) -> list[str]:
    """The lines of the section's first `sh` block, comments left out."""
    match = re.search(r"```sh\n(.*?)```", production_section(text), re.DOTALL)
    if match is None:
        raise ValueError("the Production page has no ```sh block")
    lines = []
    for line in match.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append(shlex.join(words))
    return lines


def serve_command(text: str) -> ServeCommand:
    """The block's `... ivr serve ...` line, parsed."""
    for line in production_block(text):
        words = shlex.split(line)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if words[:2] == ["ivr", "serve"]:
            return ServeCommand(env, words[1:])
    raise ValueError("the Production page's block has no `ivr serve` line")


def worker_command(text: str) -> list[str]:
    """The block's `ivr worker` line, as `ivr`'s arguments."""
    for line in production_block(text):
        words = shlex.split(line)
        if words[:2] == ["ivr", "worker"]:
            return words[1:]
    raise ValueError("the Production page's block has no `ivr worker` line")


def redis_settings_named(text: str) -> list[str]:
    """Which of `REDIS_PERSISTENCE` the section names (each in backticks)."""
    section = production_section(text)
    return [setting for setting in REDIS_PERSISTENCE if f"`{setting}`" in section]


def redis_options() -> list[str]:
    """`REDIS_PERSISTENCE` as redis-server command-line options."""
    options: list[str] = []
    for setting in REDIS_PERSISTENCE:
        name, value = setting.split()
        options += [f"--{name}", value]
    return options


def read() -> tuple[ServeCommand, list[str]]:
    """The web command and the worker's arguments of this checkout's Production page."""
    text = PAGE.read_text(encoding="utf-8")
    return serve_command(text), worker_command(text)
