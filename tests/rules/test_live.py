"""The rules the running service uses: edits go live by themselves, broken edits never do.

Each test works on a copy of the shipped rules and catalogs. File modification times are moved forward
explicitly after every edit, so a change is seen even on file systems with coarse timestamps.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr.clock import FrozenClock
from ivr.rules import live as live_module
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.live import LiveRules
from ivr.rules.loader import RulesError
from tests.rules.big_rules import write_big_rules
from tests.support import HERE, Phone, apply_edits, copy_project, edit

BROKEN_RULES = [
    ("brand: BitP", "brand: BitQ"),  # would be heard if the broken version went live
    ("timezone: Asia/Shanghai", "timezone: ‸Asia/Shanghia"),
]
BROKEN_RULES_MESSAGE = (
    "teams.asia.timezone: unknown time zone 'Asia/Shanghia' (use an IANA name like Europe/Berlin)"
)


def undo(path: Path, *edits: tuple[str, str]) -> None:
    """Put back what `edit(path, *edits)` changed."""
    edit(path, *((new.replace(HERE, ""), old) for old, new in reversed(edits)))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    return copy_project(tmp_path)


@pytest.fixture
def live(project: tuple[Path, Path], clock: FrozenClock) -> LiveRules:
    rules, prompts = project
    return LiveRules(rules, prompts, clock, check_every=0)


def test_an_edit_goes_live_on_the_next_request(
    live: LiveRules, project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, _ = project
    assert live.get().rules.brand == "BitP"
    clock.advance(60)
    edit(rules, ("brand: BitP", "brand: BitQ"))
    assert live.get().rules.brand == "BitQ"
    status = live.status()
    assert status.loaded_at == clock.now()
    assert status.problems == ()
    assert status.file == str(rules)


def test_reload_if_changed_says_whether_a_new_version_went_live(
    live: LiveRules, project: tuple[Path, Path]
) -> None:
    rules, _ = project
    assert live.reload_if_changed() is False
    edit(rules, ("brand: BitP", "brand: BitQ"))
    assert live.reload_if_changed() is True
    assert live.reload_if_changed() is False
    assert live.get().rules.brand == "BitQ"


def test_an_edited_prompt_goes_live(live: LiveRules, project: tuple[Path, Path]) -> None:
    _, prompts = project
    edit(prompts / "en-US.yaml", ("Welcome to {brand} customer", "Hello from {brand} customer"))
    assert live.reload_if_changed() is True
    assert live.get().prompts.catalog("en-US").texts["greeting"] == (
        "Hello from {brand} customer support."
    )


@pytest.mark.parametrize(
    ("file", "edits", "message"),
    [
        pytest.param("routing_rules.yaml", BROKEN_RULES, BROKEN_RULES_MESSAGE, id="rules-file"),
        pytest.param(
            "routing_rules.yaml",
            [
                ("brand: BitP", "brand: BitQ"),
                ('    extension: "102"\n', '    extension: "102"\n    ‸pin: "730152"\n'),
            ],
            "agents.emma.pin: a PIN does not belong in the rules file: delete this line and set "
            "it with `ivr agents set-pin emma` (it is stored hashed in IVR_AGENT_PINS)",
            id="a-pin-in-the-rules-file",
        ),
        pytest.param(
            "voice_prompts/fr-FR.yaml",
            [
                ("Bienvenue au service", "Salut du service"),
                (
                    '  queue_position: "Vous êtes en position {position} dans',
                    '  queue_position: ‸"Vous êtes en position dans',
                ),
            ],
            "must contain {position}",
            id="prompt-catalog",
        ),
    ],
)
def test_a_broken_edit_never_goes_live_and_its_fix_does(
    live: LiveRules,
    project: tuple[Path, Path],
    clock: FrozenClock,
    file: str,
    edits: list[tuple[str, str]],
    message: str,
) -> None:
    path = project[0].parent / file
    served = live.get()
    loaded_at = live.status().loaded_at
    clock.advance(60)

    [(line, column)] = edit(path, *edits)
    assert live.reload_if_changed() is False
    assert live.get() is served
    assert live.get().rules.brand == "BitP"
    assert live.get().prompts.catalog("fr-FR").texts["greeting"].startswith("Bienvenue")
    status = live.status()
    assert [str(p) for p in status.problems] == [f"{path}:{line}:{column}: {message}"]
    assert status.loaded_at == loaded_at

    clock.advance(60)
    undo(path, *edits)
    assert live.reload_if_changed() is True
    assert live.get() is not served
    status = live.status()
    assert status.problems == ()
    assert status.loaded_at == clock.now()


def test_a_broken_file_at_start_up_is_refused(
    project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    [(line, column)] = edit(rules, *BROKEN_RULES)
    with pytest.raises(RulesError) as raised:
        LiveRules(rules, prompts, clock, check_every=0)
    assert [str(p) for p in raised.value.problems] == [
        f"{rules}:{line}:{column}: {BROKEN_RULES_MESSAGE}"
    ]


def test_while_nothing_changes_the_same_rules_are_served(
    live: LiveRules, project: tuple[Path, Path]
) -> None:
    served = live.get()
    for _ in range(3):
        assert live.get() is served


def test_an_impossible_date_is_a_broken_edit_like_any_other(
    live: LiveRules, project: tuple[Path, Path]
) -> None:
    rules, _ = project
    served = live.get()
    [(line, column)] = edit(rules, ("{date: 2026-12-24,", "{date: ‸2026-02-30,"))
    assert live.reload_if_changed() is False
    assert live.get() is served
    assert [(p.file, p.line, p.column) for p in live.status().problems] == [
        (str(rules), line, column)
    ]


# --- the running app ----------------------------------------------------------------------------


def test_after_a_broken_edit_calls_are_answered_with_the_last_good_rules(
    app_factory: Callable[..., Flask], tmp_path: Path
) -> None:
    rules, _ = copy_project(tmp_path)
    client = app_factory(routing_rules=rules, rules_reload_seconds=0).test_client()
    [(line, column)] = edit(rules, *BROKEN_RULES)

    phone = Phone(client)
    phone.dial()
    assert "Welcome to BitP customer support." in phone.heard
    assert not any("BitQ" in text for text in phone.heard)

    response = client.get("/healthz")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert "last good version" in body["rules"]["state"]
    assert body["rules"]["problems"] == [f"{rules}:{line}:{column}: {BROKEN_RULES_MESSAGE}"]


def test_healthz_shows_a_broken_edit_before_any_call(
    app_factory: Callable[..., Flask], tmp_path: Path
) -> None:
    rules, _ = copy_project(tmp_path)
    client = app_factory(routing_rules=rules, rules_reload_seconds=0).test_client()
    [(line, column)] = edit(rules, *BROKEN_RULES)

    response = client.get("/healthz")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert "last good version" in body["rules"]["state"]
    assert body["rules"]["problems"] == [f"{rules}:{line}:{column}: {BROKEN_RULES_MESSAGE}"]
    phone = Phone(client)
    phone.dial()
    assert "Welcome to BitP customer support." in phone.heard


# --- background mode ----------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll `condition` until it holds or `seconds` have passed; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def replace_file(path: Path, *edits: tuple[str, str]) -> list[tuple[int, int]]:
    """`edit(path, *edits)`, but atomically, as an editor that writes a new file and renames it
    does: the watcher thread must not read a half-written file, whose problems are not the edit's."""
    before = path.stat().st_mtime_ns
    text, spots = apply_edits(path.read_text(encoding="utf-8"), *edits, where=path.name)
    new = path.with_name(path.name + ".new")
    new.write_text(text, encoding="utf-8")
    later = before + 5_000_000_000
    os.utime(new, ns=(later, later))
    os.replace(new, path)
    return spots


def exit_code_of(pid: int, seconds: float = 20.0) -> int:
    """The exit code of our child process `pid`; killed, and the test failed, if it hangs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked worker hung")


@pytest.fixture
def big_project(tmp_path: Path) -> tuple[Path, Path]:
    return write_big_rules(tmp_path, 1000)


@pytest.fixture
def watched(big_project: tuple[Path, Path], clock: FrozenClock) -> Iterator[LiveRules]:
    rules, prompts = big_project
    live = LiveRules(rules, prompts, clock, check_every=0.01, background=True)
    yield live
    live.stop()


def test_in_the_background_no_request_waits_for_a_reload(
    watched: LiveRules,
    big_project: tuple[Path, Path],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules, _ = big_project
    loading, finish = threading.Event(), threading.Event()

    def slow_load(rules_path: Path | str, prompts_dir: Path | str) -> Bundle:
        loading.set()
        assert finish.wait(10), "the test never let the load finish"
        return load_bundle(rules_path, prompts_dir)

    monkeypatch.setattr(live_module, "load_bundle", slow_load)
    served = watched.get()
    assert watched.watching
    clock.advance(60)
    replace_file(rules, ("brand: BitP", "brand: BitQ"))
    assert loading.wait(10), "the watcher never started loading the edit"

    started = time.monotonic()
    for _ in range(100):
        assert watched.get() is served  # the old version, while the new one is being parsed
    assert time.monotonic() - started < 1.0

    finish.set()
    assert wait_until(lambda: watched.get() is not served)
    assert watched.get().rules.brand == "BitQ"
    assert len(watched.get().rules.menus) == 1000
    assert watched.status().loaded_at == clock.now()
    assert watched.status().problems == ()


def test_in_the_background_a_broken_edit_is_reported_and_not_served(
    watched: LiveRules, big_project: tuple[Path, Path]
) -> None:
    rules, _ = big_project
    served = watched.get()
    [(line, column)] = replace_file(rules, *BROKEN_RULES)
    expected = [f"{rules}:{line}:{column}: {BROKEN_RULES_MESSAGE}"]
    assert wait_until(lambda: [str(p) for p in watched.status().problems] == expected)
    assert watched.get() is served

    replace_file(rules, *((new.replace(HERE, ""), old) for old, new in BROKEN_RULES))
    assert wait_until(lambda: watched.get() is not served)
    assert watched.status().problems == ()


def test_in_the_background_get_never_looks_at_the_files(
    project: tuple[Path, Path], clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0.01, background=True)
    looked_from: set[str] = set()
    fingerprint = live._fingerprint

    def watched_fingerprint() -> tuple[tuple[str, float, int], ...]:
        looked_from.add(threading.current_thread().name)
        return fingerprint()

    monkeypatch.setattr(live, "_fingerprint", watched_fingerprint)
    try:
        for _ in range(50):
            live.get()
        assert wait_until(lambda: looked_from != set())
        assert looked_from == {"ivr-rules-watcher"}
    finally:
        live.stop()


def test_stop_ends_the_thread_and_start_is_idempotent(
    project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0.01, background=True)
    assert not live.watching  # nothing runs until the first request (or start)
    live.start()
    live.start()
    live.get()
    watchers = [t for t in threading.enumerate() if t.name == "ivr-rules-watcher"]
    assert len(watchers) == 1 and live.watching
    live.stop()
    assert not watchers[0].is_alive() and not live.watching
    replace_file(rules, ("brand: BitP", "brand: BitQ"))
    assert live.get().rules.brand == "BitP"  # stopped: nothing reloads, not even get()
    assert not live.watching


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_starts_its_own_watcher(
    project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0.01, background=True)
    live.get()  # the watcher runs in this process, as if the app had served in gunicorn's master
    try:
        pid = os.fork()
        if pid == 0:  # the worker: threads did not survive the fork
            code = 1
            try:
                if not live.watching:
                    live.get()
                    replace_file(rules, ("brand: BitP", "brand: BitQ"))
                    if live.watching and wait_until(lambda: live.get().rules.brand == "BitQ"):
                        code = 0
            finally:
                os._exit(code)
        assert exit_code_of(pid) == 0
        assert wait_until(lambda: live.get().rules.brand == "BitQ")  # and the parent's still runs
    finally:
        live.stop()
