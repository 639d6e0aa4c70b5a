"""`ivr simulate --rules-version N|live|draft` and `--draft`: a version stored in the database is
what the simulated caller hears, and `--explore` of it says which calls in progress it would strand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ivr.cli import main
from ivr.clock import SystemClock
from ivr.db import Database
from ivr.queue import CallQueue
from ivr.rules.store import RulesStore, Sources
from ivr.simulator import explore as explore_module
from ivr.simulator.explore import ExploreReport, MenuGraph
from tests.conftest import TEST_REDIS_URL
from tests.faults import RedisProcess, free_port
from tests.support import PROMPTS, RULES, apply_edits

MONDAY_NEW_YORK = "2026-11-23 10:00 America/New_York"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SHIPPED_GREETING = '"Welcome to BitP customer support."'

WITHOUT_FUNDS = (
    (
        '      "2": {label: opt_funds, menu: funds}',
        '      "2": {label: opt_funds, queue: general, issue: deposit}',
    ),
    (
        """  funds:
    intro: prepare_transaction
    options:
      "1": {label: opt_deposit, queue: funds, issue: deposit}
      "2": {label: opt_withdrawal, queue: funds, issue: withdrawal}
      "3": {label: opt_records, queue: funds, issue: transaction_records}

""",
        "",
    ),
    (
        """  funds:
    team: {zh-CN: asia, en-US: americas, default: europe}
    priority: 30
""",
        "",
    ),
)
"""The shipped rules without the funds menu and the funds queue (option 2 of main goes to general)."""


def shipped() -> Sources:
    return Sources.read(RULES, PROMPTS)


def greeting(sources: Sources, text: str) -> Sources:
    """`sources` whose English greeting says `text`."""
    catalogs = dict(sources.catalogs)
    english, _ = apply_edits(
        catalogs["en-US.yaml"],
        ('  greeting: "Welcome to {brand} customer support."', f'  greeting: "{text}"'),
    )
    catalogs["en-US.yaml"] = english
    return replace(sources, catalogs=catalogs)


def without_funds() -> Sources:
    text, _ = apply_edits(RULES.read_text(encoding="utf-8"), *WITHOUT_FUNDS)
    text = text.replace(
        "[general, account, funds, tech, supervisors]", "[general, account, tech, supervisors]"
    )
    return replace(shipped(), rules_text=text)


def without_german() -> Sources:
    text, _ = apply_edits(
        RULES.read_text(encoding="utf-8"),
        ('  - {key: "4", code: de-DE}\n', ""),
        ('  "+41": de-DE\n  "+49": de-DE\n  "+43": de-DE\n', ""),
        ("languages: [de-DE, en-US]", "languages: [en-US]"),
        ("languages: [en-US, zh-CN, fr-FR, de-DE]", "languages: [en-US, zh-CN, fr-FR]"),
    )
    catalogs = {name: text for name, text in shipped().catalogs.items() if name != "de-DE.yaml"}
    return Sources(text, catalogs)


@pytest.fixture
def store(database: Database, monkeypatch: pytest.MonkeyPatch) -> RulesStore:
    """The test database's rules store, which `ivr simulate` reads ($DATABASE_URL)."""
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    monkeypatch.setenv("VOICE_PROMPTS", str(PROMPTS))
    monkeypatch.delenv("ROUTING_RULES", raising=False)
    monkeypatch.delenv("IVR_CLOCK", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return RulesStore(database, PROMPTS / "audio")


def hears(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["simulate", *args, "--at", MONDAY_NEW_YORK, "--keys", "2,h"])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


# --- what the caller hears --------------------------------------------------------------------


def test_the_draft_is_what_the_simulated_caller_hears(
    store: RulesStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.publish(shipped(), "test", NOW)
    store.stage_draft(greeting(shipped(), "Hello from the draft."), "test", NOW)

    code, out = hears(capsys, "--draft")
    assert code == 0
    assert '"Hello from the draft."' in out
    assert SHIPPED_GREETING not in out

    code, out = hears(capsys, "--rules-version", "draft")
    assert code == 0
    assert '"Hello from the draft."' in out


def test_a_numbered_version_and_the_live_one(
    store: RulesStore, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = store.publish(greeting(shipped(), "Hello from version one."), "test", NOW)
    store.publish(greeting(shipped(), "Hello from version two."), "test", NOW)

    code, out = hears(capsys, "--rules-version", str(first.id))
    assert code == 0
    assert '"Hello from version one."' in out and "version two" not in out

    code, out = hears(capsys, "--rules-version", "live")
    assert code == 0
    assert '"Hello from version two."' in out and "version one" not in out


def test_many_calls_run_on_the_chosen_version(
    store: RulesStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.publish(without_funds(), "test", NOW)
    # Option 2 of main now goes to the general queue: deposits are no longer a queue of their own.
    many = ["--calls", "2", "--keys", "2,2", "--agent-no-answer", "--hangup-after", "120"]
    code = main(["simulate", "--rules-version", "live", *many, "--at", MONDAY_NEW_YORK, "--json"])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0
    assert set(summary["by_queue"]) == {"general"}


def test_a_version_that_does_not_exist_is_a_clear_error(
    store: RulesStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.publish(shipped(), "test", NOW)
    assert main(["simulate", "--rules-version", "7", "--keys", "2,h"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "cannot simulate rules version 7: there is no rules version 7\n"

    assert main(["simulate", "--draft", "--keys", "2,h"]) == 1
    assert capsys.readouterr().err == (
        "cannot simulate rules version draft: there is no draft version yet\n"
    )


def test_an_unreachable_database_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    assert main(["simulate", "--rules-version", "live", "--keys", "2,h"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("cannot simulate rules version live: cannot reach the database")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rules-version", "3", "--rules", str(RULES)], "leave out --rules and --prompts"),
        (["--draft", "--prompts", str(PROMPTS)], "leave out --rules and --prompts"),
        (["--draft", "--url", "http://127.0.0.1:5000"], "the server at --url serves its own"),
        (["--draft", "--rules-version", "3"], "--draft is --rules-version draft"),
    ],
)
def test_a_version_with_other_rules_or_a_server_is_a_usage_error(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *args, "--keys", "2,h"]) == 2
    assert says in capsys.readouterr().err


# --- what --explore of a version would strand ---------------------------------------------------


@pytest.fixture
def line_redis(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The line's Redis, as `ivr simulate` reaches it ($REDIS_URL): the test Redis when
    TEST_REDIS_URL is set, else a private redis-server (an in-memory fake has no address)."""
    if TEST_REDIS_URL:
        monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
        yield redis_client
        return
    with RedisProcess() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, Path]]:
    """The walk itself is `explore`'s (test_explore.py): here it finds nothing, and records the
    files it was given."""
    walked: list[tuple[Path, Path]] = []

    def walk(rules: Path, prompts: Path, at: datetime, *_: object, **__: object) -> ExploreReport:
        walked.append((rules, prompts))
        graph = MenuGraph(paths={"/voice/incoming": ()}, menus={"main"})
        return ExploreReport([], graph, 1, 1, 0.1, True, at)

    monkeypatch.setattr(explore_module, "explore", walk)
    return walked


def explore(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["simulate", "--explore", "--at", MONDAY_NEW_YORK, *args])
    return code, capsys.readouterr().out.splitlines()


def test_a_draft_removing_a_queue_with_callers_warns_and_says_they_finish(
    store: RulesStore,
    line_redis: redis.Redis,
    walks: list[tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.publish(shipped(), "test", NOW)
    draft = store.stage_draft(without_funds(), "test", NOW)
    line = CallQueue(line_redis, SystemClock())
    line.join("CA" + "1" * 32, "funds", "en-US", 30)
    line.join("CA" + "2" * 32, "funds", "en-US", 30)
    line.join("CA" + "3" * 32, "funds", "de-DE", 30)
    line.join("CA" + "4" * 32, "general", "en-US", 0)  # a queue the draft keeps

    code, lines = explore(capsys, "--draft")
    assert code == 0  # a warning: calls are pinned to their version, none is dropped
    assert lines[:3] == [
        f"explored the draft (version {draft.id}) against the live version ({draft.id - 1}):",
        "warning: queue funds is removed but 3 callers are waiting in it "
        "(they finish on the version they started with)",
        "note: menu funds is removed: callers in it now finish on their version; "
        "new callers cannot reach it",
    ]
    assert lines[-1].startswith("explored 1 menu states")
    ((rules, prompts),) = walks
    assert "queue: funds" not in rules.read_text(encoding="utf-8")
    assert (prompts / "en-US.yaml").is_file()

    code, lines = explore(capsys, "--rules-version", str(draft.id), "--json")
    records = [json.loads(line) for line in lines]
    strands = [r for r in records if r["kind"] == "strand"]
    assert strands == [
        {
            "kind": "strand",
            "level": "warning",
            "removed": "queue",
            "id": "funds",
            "message": "queue funds is removed but 3 callers are waiting in it "
            "(they finish on the version they started with)",
            "waiting": 3,
            "by_language": {"en-US": 2, "de-DE": 1},
            "version": draft.id,
            "live_version": draft.id - 1,
        },
        {
            "kind": "strand",
            "level": "note",
            "removed": "menu",
            "id": "funds",
            "message": "menu funds is removed: callers in it now finish on their version; "
            "new callers cannot reach it",
            "version": draft.id,
            "live_version": draft.id - 1,
        },
    ]
    assert records[-1]["kind"] == "summary"


def test_a_removed_queue_nobody_waits_in_is_a_note(
    store: RulesStore,
    line_redis: redis.Redis,
    walks: list[tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.publish(shipped(), "test", NOW)
    store.stage_draft(without_funds(), "test", NOW)
    CallQueue(line_redis, SystemClock()).join("CA" + "4" * 32, "general", "en-US", 0)

    code, lines = explore(capsys, "--draft")
    assert code == 0
    assert "note: queue funds is removed; no caller is waiting in it now" in lines
    assert not any(line.startswith("warning:") for line in lines)


def test_a_draft_dropping_a_language_warns_of_its_callers_in_every_queue(
    store: RulesStore,
    line_redis: redis.Redis,
    walks: list[tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.publish(shipped(), "test", NOW)
    store.stage_draft(without_german(), "test", NOW)
    line = CallQueue(line_redis, SystemClock())
    line.join("CA" + "1" * 32, "funds", "de-DE", 30)
    line.join("CA" + "2" * 32, "funds", "de-DE", 30)
    line.join("CA" + "3" * 32, "general", "de-DE", 0)
    line.join("CA" + "4" * 32, "funds", "en-US", 30)  # a language the draft keeps

    code, lines = explore(capsys, "--draft")
    assert code == 0
    assert lines[1:] == [
        "warning: language de-DE is removed but 3 callers are waiting in its queues: "
        "general 1, funds 2 (they finish on the version they started with)",
        "menus visited: main",
        lines[-1],
    ]
    code, lines = explore(capsys, "--draft", "--json")
    (strand,) = [json.loads(line) for line in lines if '"strand"' in line]
    assert (strand["removed"], strand["waiting"]) == ("language", 3)
    assert strand["by_queue"] == {"general": 1, "funds": 2}


def test_when_the_line_redis_cannot_be_asked_the_count_is_unknown(
    store: RulesStore,
    walks: list[tuple[Path, Path]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.publish(shipped(), "test", NOW)
    store.stage_draft(without_funds(), "test", NOW)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody answers

    code, lines = explore(capsys, "--draft")
    assert code == 0
    (warning,) = [line for line in lines if line.startswith("warning:")]
    assert warning.startswith(
        "warning: queue funds is removed and how many callers are waiting in it is unknown "
        "(the line's Redis did not answer: "
    )
    assert warning.endswith("any who are finish on the version they started with")

    monkeypatch.delenv("REDIS_URL")  # the embedded Redis of a process of its own
    code, lines = explore(capsys, "--draft", "--json")
    (queue,) = [json.loads(line) for line in lines if '"removed": "queue"' in line]
    assert (queue["level"], queue["waiting"]) == ("warning", None)
    assert queue["unknown"] == "REDIS_URL is not set: the line's Redis is not known"


def test_a_draft_that_removes_nothing_strands_nothing(
    store: RulesStore,
    line_redis: redis.Redis,
    walks: list[tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, _ = store.publish(shipped(), "test", NOW)
    draft = store.stage_draft(greeting(shipped(), "Hello from the draft."), "test", NOW)
    CallQueue(line_redis, SystemClock()).join("CA" + "1" * 32, "funds", "en-US", 30)

    code, lines = explore(capsys, "--draft")
    assert code == 0
    assert lines[0] == (
        f"explored the draft (version {draft.id}) against the live version ({live.id}): "
        "it removes no queue, language or menu"
    )
    assert not any(line.startswith(("warning:", "note:")) for line in lines)

    code, lines = explore(capsys, "--draft", "--json")
    assert [json.loads(line)["kind"] for line in lines] == ["summary"]

    code, lines = explore(capsys, "--rules-version", "live")
    assert lines[0] == (
        f"explored the live version ({live.id}): calls in progress keep everything they can reach"
    )


def test_exploring_files_says_nothing_of_versions(
    walks: list[tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = explore(capsys, "--rules", str(RULES), "--prompts", str(PROMPTS))
    assert code == 0
    assert walks == [(RULES, PROMPTS)]
    assert lines == ["menus visited: main", lines[-1]]
