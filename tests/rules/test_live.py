"""The rules the running service uses: edits go live by themselves, broken edits never do.

Each test works on a copy of the shipped rules and catalogs. File modification times are moved forward
explicitly after every edit, so a change is seen even on file systems with coarse timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr.clock import FrozenClock
from ivr.rules.live import LiveRules
from ivr.rules.loader import RulesError
from tests.support import HERE, Phone, copy_project, edit

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
