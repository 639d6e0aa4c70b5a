"""Rules versions in the database: every live version kept, rollback, drafts for testers, calls
pinned to the version they started with, and every instance taking a change up within 5 s.

Each test works on a copy of the shipped rules and catalogs, and on the test database (emptied
around each test), so the store starts empty.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from ivr.cli import main
from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.queue.base import Assignment
from ivr.rules.live import LiveRules
from ivr.rules.loader import RulesError
from ivr.rules.store import RulesStore, Sources, StoreError
from ivr.services import Services
from ivr.simulator.rest import TwilioRest
from tests.support import (
    PUBLIC,
    REST_ACCOUNT_SID,
    Phone,
    apply_edits,
    copy_project,
    edit,
    run_ivr,
)

FUNDS_MENU = """  funds:
    intro: prepare_transaction
    options:
      "1": {label: opt_deposit, queue: funds, issue: deposit}
      "2": {label: opt_withdrawal, queue: funds, issue: withdrawal}
      "3": {label: opt_records, queue: funds, issue: transaction_records}
"""
WITHOUT_FUNDS_MENU = (
    (
        '"2": {label: opt_funds, menu: funds}',
        '"2": {label: opt_funds, queue: general, issue: funds}',
    ),
    (FUNDS_MENU, ""),
)
"""A version in which "funds" is no longer a menu: option 2 of the main menu queues at once."""
FUNDS_QUEUE = """  funds:
    team: {zh-CN: asia, en-US: americas, default: europe}
    priority: 30
"""
WELCOME = ("Welcome to {brand} customer", "Hello from {brand} customer")
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    return copy_project(tmp_path)


@pytest.fixture
def store(database: Database, project: tuple[Path, Path]) -> RulesStore:
    return RulesStore(database, project[1] / "audio")


def _services(app: Flask) -> Services:
    services: Services = app.extensions["ivr"]
    return services


def _edited(project: tuple[Path, Path], tmp_path: Path, *edits: tuple[str, str]) -> Sources:
    """The project's files with `edits` made to the rules file (the project itself unchanged)."""
    rules, prompts = project
    copy = tmp_path / "edited.yaml"
    copy.write_text(rules.read_text("utf-8"), "utf-8")
    edit(copy, *edits)
    return Sources.read(copy, prompts)


# --- the store ----------------------------------------------------------------------------------


def test_a_version_is_kept_once_with_its_digest_who_and_when(
    store: RulesStore, project: tuple[Path, Path]
) -> None:
    sources = Sources.read(*project)
    first, new = store.publish(sources, "cli:ana", NOW)
    again, new_again = store.publish(Sources.read(*project), "file on web-2", NOW)

    assert new and not new_again
    assert again == first
    assert first.sha256 == Sources.read(*project).sha256  # what `sha256sum` prints for the file
    [listed] = store.history()
    assert (listed.by, listed.at, listed.live, listed.kind) == ("cli:ana", NOW, True, "publish")


def test_a_version_that_could_not_run_is_never_stored(
    store: RulesStore, project: tuple[Path, Path], tmp_path: Path
) -> None:
    broken = _edited(project, tmp_path, ("timezone: Asia/Shanghai", "timezone: Asia/Shanghia"))
    with pytest.raises(RulesError):
        store.publish(broken, "cli:ana", NOW)
    with pytest.raises(RulesError):
        store.stage_draft(broken, "cli:ana", NOW)
    assert store.history() == []


def test_a_rollback_is_a_new_version_with_the_old_content(
    store: RulesStore, project: tuple[Path, Path], tmp_path: Path
) -> None:
    one, _ = store.publish(Sources.read(*project), "cli:ana", NOW)
    store.publish(_edited(project, tmp_path, ("brand: BitP", "brand: BitQ")), "x", NOW)
    back = store.rollback(one.id, "admin:root", NOW)

    assert (back.id, back.kind, back.based_on, back.live) == (3, "rollback", one.id, True)
    assert back.content_sha256 == one.content_sha256
    assert [v.live for v in store.history()] == [False, False, True]
    with pytest.raises(StoreError, match="there is no rules version 9"):
        store.rollback(9, "admin:root", NOW)


def test_a_draft_is_promoted_as_a_new_live_version(
    store: RulesStore, project: tuple[Path, Path], tmp_path: Path
) -> None:
    store.publish(Sources.read(*project), "cli:ana", NOW)
    draft = store.stage_draft(_edited(project, tmp_path, ("brand: BitP", "brand: BitQ")), "b", NOW)
    assert (draft.draft, draft.live) == (True, False)
    assert store.state().draft_id == draft.id

    promoted = store.promote("cli:ana", NOW)

    assert (promoted.kind, promoted.based_on, promoted.live) == ("promote", draft.id, True)
    assert store.state().draft_id is None
    with pytest.raises(StoreError, match="no draft to promote"):
        store.promote("cli:ana", NOW)


def test_incidents_start_and_end_in_the_history(store: RulesStore) -> None:
    first = store.start_incident(frozenset({"withdrawal"}), None, None, "cli:ana", NOW)
    second = store.start_incident(frozenset({"deposit"}), NOW, frozenset({"de-DE"}), "api", NOW)
    assert store.state().incident == second
    ended = store.end_incident("cli:ana", NOW)

    assert ended is not None and ended.id == second.id
    assert store.state().incident is None
    assert store.end_incident("cli:ana", NOW) is None
    [one, two] = store.incidents()
    assert (one.id, one.ended_by) == (first.id, "api")  # the second's start ended the first
    assert (two.languages, two.ended_by) == (frozenset({"de-DE"}), "cli:ana")


# --- a process and the store --------------------------------------------------------------------


def test_an_edit_of_the_file_is_published_as_a_version(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0, store=store)
    live.sync()
    assert live.version == 1
    edit(rules, ("brand: BitP", "brand: BitQ"))

    assert live.get().rules.brand == "BitQ"
    assert live.version == 2
    [_, published] = store.history()
    assert published.kind == "file" and published.by.startswith("file on ")
    assert published.sha256 == Sources.read(rules, prompts).sha256


def test_a_rollback_to_a_version_the_process_holds_goes_live_without_a_load(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0, store=store)
    live.sync()
    first = live.get()
    edit(rules, ("brand: BitP", "brand: BitQ"))
    assert live.get().rules.brand == "BitQ"

    store.rollback(1, "cli:ana", NOW)
    assert live.sync() is True

    assert live.version == 3
    assert live.get() is first  # the bundle it held for calls on version 1


def test_a_broken_edit_is_neither_served_nor_published(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock
) -> None:
    rules, prompts = project
    live = LiveRules(rules, prompts, clock, check_every=0, store=store)
    live.sync()
    edit(rules, ("timezone: Asia/Shanghai", "timezone: Asia/Shanghia"))

    assert live.get().rules.teams["asia"].timezone == "Asia/Shanghai"
    assert live.status().problems
    assert len(store.history()) == 1


def test_an_instance_starting_with_an_older_copy_of_the_file_serves_the_live_version(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock, tmp_path: Path
) -> None:
    rules, prompts = project
    store.publish(Sources.read(rules, prompts), "cli:ana", NOW)
    newer = _edited(project, tmp_path, ("brand: BitP", "brand: BitQ"))
    store.publish(newer, "cli:ana", NOW)

    live = LiveRules(rules, prompts, clock, check_every=0, store=store)  # the older file
    live.sync()

    assert live.get().rules.brand == "BitQ"
    assert (live.version, len(store.history())) == (2, 2)


def test_an_instance_starting_with_a_new_file_publishes_it(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock, tmp_path: Path
) -> None:
    rules, prompts = project
    store.publish(_edited(project, tmp_path, ("brand: BitP", "brand: BitQ")), "cli:ana", NOW)

    live = LiveRules(rules, prompts, clock, check_every=0, store=store)  # a deploy: new content
    live.sync()

    assert live.get().rules.brand == "BitP"
    assert live.version == 2


def test_a_process_loads_the_versions_calls_may_be_on_off_the_request_path(
    store: RulesStore, project: tuple[Path, Path], clock: FrozenClock, tmp_path: Path
) -> None:
    rules, prompts = project
    old = store.publish(_edited(project, tmp_path, ("brand: BitP", "brand: BitA")), "a", NOW)[0]
    clock.advance(7 * 3600)  # older than any URL a call could bring: not loaded up front
    recent = store.publish(_edited(project, tmp_path, ("brand: BitP", "brand: BitR")), "b", NOW)
    store.publish(Sources.read(rules, prompts), "c", clock.now())
    live = LiveRules(rules, prompts, clock, check_every=0, store=store)  # a process (re)started

    live.sync()

    assert live.for_call(recent[0].id)[1].rules.brand == "BitR"  # loaded at its first look
    assert live.for_call(old.id) == (3, live.get())  # not in memory: the live one, this time
    live.sync()
    assert live.for_call(old.id)[1].rules.brand == "BitA"  # loaded at the next look


def test_the_store_away_changes_nothing_for_callers(
    project: tuple[Path, Path], clock: FrozenClock, tmp_path: Path
) -> None:
    rules, prompts = project
    away = RulesStore(Database(f"sqlite:///{tmp_path}/no-schema.sqlite3"))
    live = LiveRules(rules, prompts, clock, check_every=0, store=away)
    assert live.sync() is False
    edit(rules, ("brand: BitP", "brand: BitQ"))

    assert live.get().rules.brand == "BitQ"  # the files alone decide, as before
    assert live.version is None
    assert live.for_call(7)[1].rules.brand == "BitQ"  # a version it cannot load: the live one


# --- calls ------------------------------------------------------------------------------------------


def _app(
    app_factory: Callable[..., Flask], project: tuple[Path, Path], **settings: object
) -> Flask:
    rules, prompts = project
    app = app_factory(routing_rules=rules, voice_prompts=prompts, **settings)
    _services(app).rules.sync()
    return app


def _url_version(phone: Phone) -> str | None:
    assert phone.twiml is not None
    gather = phone.twiml.find("Gather")
    url = gather.attrib["action"] if gather is not None else phone.twiml.findtext("Redirect")
    return parse_qs(urlsplit(url or "").query).get("rv", [None])[0]


def test_a_caller_in_a_menu_a_new_version_removes_finishes_on_their_version(
    app_factory: Callable[..., Flask],
    project: tuple[Path, Path],
    store: RulesStore,
    tmp_path: Path,
) -> None:
    app = _app(app_factory, project)
    rules = _services(app).rules
    phone = Phone(app.test_client())
    phone.dial()
    phone.press("2")  # English
    phone.press("2")  # funds
    assert "transaction ID" in phone.last_heard()
    assert _url_version(phone) == "1"

    store.publish(_edited(project, tmp_path, *WITHOUT_FUNDS_MENU), "cli:ana", NOW)
    assert rules.sync() is True
    assert rules.version == 2 and "funds" not in rules.get().rules.menus

    phone.press("2")  # withdrawal, in the funds menu of version 1
    assert "hold" in phone.last_heard().lower()
    phone.follow()  # the first hold round, in queue funds
    assert "You are next in line" in phone.last_heard()
    assert _url_version(phone) == "1"
    assert phone.twiml is not None
    gather = phone.twiml.find("Gather")
    assert gather is not None and "queue=funds" in gather.attrib["action"]

    newcomer = Phone(app.test_client(), caller="+14155550111")
    newcomer.dial()
    newcomer.press("2")
    newcomer.press("2")  # version 2: option 2 queues in general at once
    assert "transaction ID" not in newcomer.last_heard()
    assert "hold" in newcomer.last_heard().lower()


def test_a_draft_is_heard_by_a_tester_and_by_nobody_else(
    app_factory: Callable[..., Flask],
    project: tuple[Path, Path],
    store: RulesStore,
    tmp_path: Path,
) -> None:
    rules_file, prompts = project
    tester = "+14155550123"
    app = _app(app_factory, project)
    draft = tmp_path / "draft"
    draft.mkdir()
    (draft / "voice_prompts").mkdir()
    for catalog in prompts.glob("*.yaml"):
        (draft / "voice_prompts" / catalog.name).write_text(catalog.read_text("utf-8"), "utf-8")
    edit(draft / "voice_prompts" / "en-US.yaml", WELCOME)
    (draft / "rules.yaml").write_text(
        rules_file.read_text("utf-8").replace(
            "satisfaction_survey: true", f'satisfaction_survey: true\ntesters: ["{tester}"]'
        ),
        "utf-8",
    )
    store.stage_draft(Sources.read(draft / "rules.yaml", draft / "voice_prompts"), "b", NOW)
    _services(app).rules.sync()

    heard = {}
    for number in (tester, "+14155550100"):
        phone = Phone(app.test_client(), caller=number)
        phone.dial()
        heard[number] = phone.last_heard()
        phone.press("2")
        assert _url_version(phone) == ("2" if number == tester else "1")
        phone.press("2")
        heard[number] += phone.last_heard()

    assert "Hello from BitP customer" in heard[tester]
    assert "Welcome to BitP customer" in heard["+14155550100"]
    assert "Hello from" not in heard["+14155550100"]


def test_a_rollback_is_live_on_two_instances_within_5_seconds(
    app_factory: Callable[..., Flask],
    project: tuple[Path, Path],
    store: RulesStore,
    database: Database,
    tmp_path: Path,
) -> None:
    rules, prompts = project
    first = _app(app_factory, project, rules_reload_seconds=1.0)
    second = _app(app_factory, project, rules_reload_seconds=1.0)
    edit(rules, ("brand: BitP", "brand: BitQ"))
    for app in (first, second):
        _services(app).rules.sync()
    assert [_services(app).rules.get().rules.brand for app in (first, second)] == ["BitQ"] * 2
    watchers = [_services(app).rules for app in (first, second)]
    for watcher in watchers:
        watcher.start()  # each process's own thread, as `ivr serve` runs it
    try:
        done = run_ivr(
            "rules",
            "rollback",
            "1",
            cwd=tmp_path,
            DATABASE_URL=database.url.render_as_string(hide_password=False),
            ROUTING_RULES=str(rules),
            VOICE_PROMPTS=str(prompts),
        )
        # From when the command returns (it commits, then prints): starting `ivr` takes seconds.
        started = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert "version 3 (rollback to version 1) is live" in done.stdout
        while time.monotonic() - started < 5 and any(w.version != 3 for w in watchers):
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        for watcher in watchers:
            watcher.stop()

    assert [w.version for w in watchers] == [3, 3], f"not live everywhere after {took:.1f} s"
    for app in (first, second):
        phone = Phone(app.test_client())
        phone.dial()
        assert "Welcome to BitP" in phone.last_heard()
    assert "brand: BitP" in rules.read_text("utf-8")  # this machine's file follows the rollback
    assert len(store.history()) == 3  # rewriting the file published nothing more


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def ivr(
    database: Database,
    project: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """`ivr ARGS` in this process, on the test database and the project's files: (status,
    stdout, stderr). In-process because each `ivr` process spends seconds importing."""
    rules, prompts = project
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ROUTING_RULES", str(rules))
    monkeypatch.setenv("VOICE_PROMPTS", str(prompts))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_history_show_and_publish_from_the_command_line(
    store: RulesStore, project: tuple[Path, Path], tmp_path: Path, ivr: Callable[..., Any]
) -> None:
    rules, prompts = project
    store.publish(Sources.read(rules, prompts), "cli:ana", NOW)
    edited = tmp_path / "edited.yaml"
    edited.write_text(rules.read_text("utf-8").replace("brand: BitP", "brand: BitQ"), "utf-8")

    status, out, err = ivr("rules", "publish", str(edited))
    assert status == 0, err
    assert "version 2 (published) is live" in out
    assert "brand: BitQ" in rules.read_text("utf-8")  # this machine's file is the live one

    status, out, _ = ivr("rules", "history", "--json")
    versions = json.loads(out)
    assert [(v["id"], v["live"]) for v in versions] == [(1, False), (2, True)]
    assert set(versions[0]) >= {"id", "sha256", "at", "by", "live"}
    assert versions[0]["by"] == "cli:ana"

    assert ivr("rules", "diff", "1", "live")[1] == (
        "from version 1 to version 2:\n  brand: BitQ (was BitP)\n"
    )
    assert "brand: BitP" in ivr("rules", "show", "1")[1]
    assert "brand: BitQ" in ivr("rules", "show", "live")[1]
    assert ivr("rules", "show", "7") == (
        1,
        "",
        "cannot show the version: there is no rules version 7\n",
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nbrand: [\n", "utf-8")
    status, _, err = ivr("rules", "publish", "--draft", str(broken))
    assert status == 1
    assert f"{broken}:3:1: YAML syntax" in err  # said of the admin's file, line and column
    assert len(store.history()) == 2


def test_an_incident_is_started_and_ended_from_the_command_line(
    store: RulesStore, project: tuple[Path, Path], ivr: Callable[..., Any]
) -> None:
    store.publish(Sources.read(*project), "cli:ana", NOW)
    eta = "2099-12-07 18:00 UTC"

    status, _, err = ivr("incident", "start", "--issues", "withdrawl", "--eta", eta)
    assert status == 1
    assert "no menu option records the issue withdrawl (the menus have: " in err
    status, _, err = ivr("incident", "start", "--issues", "withdrawal", "--eta", "18:00")
    assert status == 1 and "is not a time" in err

    status, out, err = ivr(
        "incident", "start", "--issues", "withdrawal,deposit", "--eta", eta, "--languages", "de-DE"
    )
    assert status == 0, err
    assert "incident 1 on: issues deposit,withdrawal, ETA 2099-12-07 18:00 UTC" in out
    on = store.state().incident
    assert on is not None and on.languages == frozenset({"de-DE"})

    assert "incident 1 off" in ivr("incident", "end")[1]
    assert store.state().incident is None
    assert ivr("incident", "end")[1] == "no incident notice is on\n"
    history = ivr("rules", "history")[1]
    assert "incident 1 on" in history and "incident 1 off" in history


def test_a_caller_an_agents_turn_moves_keeps_their_version_when_the_queue_was_removed(
    app_factory: Callable[..., Flask],
    project: tuple[Path, Path],
    store: RulesStore,
    rest: TwilioRest,
    tmp_path: Path,
) -> None:
    """The URL an agent's turn moves a caller to is built without the caller's own URL (no
    version in it): the version they queued with is remembered for them."""
    app = _app(
        app_factory,
        project,
        twilio_http_client=rest,
        twilio_account_sid=REST_ACCOUNT_SID,
        public_base_url=PUBLIC,
    )
    s = _services(app)
    phone = Phone(app.test_client(), base_url=PUBLIC)
    phone.dial()
    phone.press("2")
    phone.press("2")
    phone.press("2")  # a withdrawal: queue funds, version 1
    phone.follow()
    rules_text = project[0].read_text("utf-8")
    without_funds = apply_edits(rules_text, *WITHOUT_FUNDS_MENU)[0]
    without_funds = without_funds.replace(FUNDS_QUEUE, "").replace(", funds, tech", ", tech")
    removed = tmp_path / "removed.yaml"
    removed.write_text(without_funds, "utf-8")
    store.publish(Sources.read(removed, project[1]), "cli:ana", NOW)
    s.rules.sync()
    assert "funds" not in s.rules.get().rules.queues

    now = s.clock.now()
    s.switchboard._deliver(
        Assignment(phone.sid, "emma", "funds", "en-US", 30, now, now, callback_number=None)
    )
    [moved] = rest.redirects()
    assert "rv=" not in moved.data["Url"]
    phone.redirected_to(moved.path)

    assert "main_intro" not in phone.last_heard()
    assert phone.twiml is not None
    gather = phone.twiml.find("Gather")
    assert gather is not None and "queue=funds" in gather.attrib["action"]
    assert _url_version(phone) == "1"
