"""The benchmark runs what docs/operators/production.md runs: the same command, workers, threads and Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import production, run

PAGE_TEXT = production.PAGE.read_text(encoding="utf-8")
"""The operators' Production page (the README's "Production" section once)."""


def production_lines() -> list[str]:
    """The page's production block, read here independently of bench.production."""
    section = PAGE_TEXT.split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_bench_reads_the_web_command_the_readme_gives_word_for_word() -> None:
    serve = production.serve_command(PAGE_TEXT)
    assert serve.shown() in production_lines()
    assert serve.env == {"IVR_WRITER": "off"}
    assert serve.arguments[:2] == ["serve", "--no-migrate"]
    assert (serve.workers, serve.threads) == (
        int(serve.option("workers")),
        int(serve.option("threads")),
    )


def test_the_worker_command_is_the_readmes() -> None:
    assert "ivr " + " ".join(production.worker_command(PAGE_TEXT)) in production_lines()


def test_the_floor_gets_the_workers_and_threads_of_the_production_command() -> None:
    serve = production.serve_command(PAGE_TEXT)
    settings = production.serve_command(PAGE_TEXT).gunicorn_settings()
    assert settings[settings.index("--workers") + 1] == str(serve.workers)
    assert settings[settings.index("--threads") + 1] == str(serve.threads)
    assert settings[settings.index("--timeout") + 1] == "20"


def test_the_readme_asks_for_the_redis_persistence_the_bench_starts_redis_with() -> None:
    assert production.redis_settings_named(PAGE_TEXT) == list(production.REDIS_PERSISTENCE)
    assert production.redis_options() == ["--appendonly", "yes", "--appendfsync", "everysec"]


def test_a_different_production_command_in_the_readme_is_what_the_bench_would_run() -> None:
    edited = PAGE_TEXT.replace("--workers 4 --threads 8", "--workers 3 --threads 5")
    if edited == PAGE_TEXT:
        pytest.fail("the production command no longer says --workers 4 --threads 8")
    serve = production.serve_command(edited)
    assert (serve.workers, serve.threads) == (3, 5)


def test_a_readme_without_the_serve_line_stops_the_bench() -> None:
    edited = "\n".join(
        line for line in PAGE_TEXT.splitlines() if not line.startswith("IVR_WRITER=off ivr serve")
    )
    with pytest.raises(ValueError, match="no `ivr serve` line"):
        production.serve_command(edited)


def test_launch_app_starts_the_readmes_commands_on_the_benchs_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[dict[str, Any]] = []

    class Recorded:
        def __init__(self, command: list[str], **kwargs: Any) -> None:
            started.append({"command": command, "env": kwargs["env"]})

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    run.launch_app(9123, {"PATH": "/bin", "IVR_SPOOL_DIR": str(tmp_path)}, tmp_path / "app.log")

    serve = production.serve_command(PAGE_TEXT)
    web, worker = started
    readme_arguments = list(serve.arguments)
    readme_arguments[readme_arguments.index("--port") + 1] = "9123"
    assert web["command"] == [sys.executable, "-m", "ivr.cli", *readme_arguments]
    assert web["env"]["IVR_WRITER"] == "off"
    assert worker["command"] == [sys.executable, "-m", "ivr.cli", "worker"]
    assert "IVR_WRITER" not in worker["env"]
