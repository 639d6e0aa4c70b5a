"""The `ivr` command as admins and deploy scripts use it: what it prints and its exit code."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import inspect

from ivr.cli import main
from ivr.credentials import PinStore
from ivr.db import Database
from ivr.rules.loader import load_rules
from tests.conftest import write_agent_pins
from tests.support import IVR, PROMPTS, ROOT, RULES, run_ivr, write_rules

PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: .+$")


def ok_summary() -> str:
    """What `ivr check` says after the file name when the shipped rules are valid."""
    rules, _ = load_rules(RULES)
    return (
        f"ok ({len(rules.languages)} languages, {len(rules.menus)} menus, "
        f"{len(rules.queues)} queues, {len(rules.teams)} teams)"
    )


TWO_REFERENCE_MISTAKES = [
    ("  language: en-US ", "  language: ‸en-GB "),
    ("queue: supervisors, issue: complaint", "queue: ‸supervisor, issue: complaint"),
]
TWO_REFERENCE_MESSAGES = [
    "default language 'en-GB' is not in 'languages'",
    "queue 'supervisor' is not defined",
]


# --- ivr check, in process ------------------------------------------------------------------------


def test_check_of_the_shipped_rules_says_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RULES), "--prompts", str(PROMPTS)]) == 0
    assert capsys.readouterr().out == f"{RULES}: {ok_summary()}\n"


@pytest.mark.parametrize(
    ("edits", "messages"),
    [
        pytest.param(TWO_REFERENCE_MISTAKES, TWO_REFERENCE_MESSAGES, id="references"),
        pytest.param(
            [
                ("    max_tries: 2 ", "    max_tries: ‸0 "),
                ("timezone: Asia/Shanghai", "timezone: ‸Asia/Shanghia"),
            ],
            [
                "menus.security.max_tries: Input should be greater than or equal to 1",
                "teams.asia.timezone: unknown time zone 'Asia/Shanghia' "
                "(use an IANA name like Europe/Berlin)",
            ],
            id="settings",
        ),
    ],
)
def test_check_of_a_broken_file_prints_one_line_per_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edits: list[tuple[str, str]],
    messages: list[str],
) -> None:
    rules, spots = write_rules(tmp_path, *edits)
    assert main(["check", str(rules), "--prompts", str(PROMPTS)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{rules}:{line}:{column}: {message}"
        for (line, column), message in zip(spots, messages, strict=True)
    ]


def test_check_of_a_prompt_folder_missing_a_catalog_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "voice_prompts"
    shutil.copytree(PROMPTS, prompts)
    (prompts / "fr-FR.yaml").unlink()
    assert main(["check", str(RULES), "--prompts", str(prompts)]) == 1
    assert capsys.readouterr().out == (
        f"{prompts}/fr-FR.yaml:1:1: no prompt catalog for language fr-FR\n"
    )


def test_check_without_arguments_checks_the_configured_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("ROUTING_RULES", raising=False)
    monkeypatch.delenv("VOICE_PROMPTS", raising=False)
    assert main(["check"]) == 0
    assert capsys.readouterr().out == f"routing_rules.yaml: {ok_summary()}\n"

    broken, [(line, column), _] = write_rules(tmp_path, *TWO_REFERENCE_MISTAKES)
    monkeypatch.setenv("ROUTING_RULES", str(broken))
    assert main(["check"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{broken}:{line}:{column}: {TWO_REFERENCE_MESSAGES[0]}"
    )


def test_check_of_an_impossible_date_prints_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, [(line, column)] = write_rules(tmp_path, ("{date: 2026-12-24,", "{date: ‸2026-02-30,"))
    assert main(["check", str(rules), "--prompts", str(PROMPTS)]) == 1
    [printed] = capsys.readouterr().out.splitlines()
    assert printed.startswith(f"{rules}:{line}:{column}: ")


# --- the installed console script -----------------------------------------------------------------


def test_ivr_check_command_on_the_shipped_rules() -> None:
    result = run_ivr("check", "routing_rules.yaml", cwd=ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"routing_rules.yaml: {ok_summary()}\n",
        "",
    )


def test_ivr_check_command_on_a_broken_file(tmp_path: Path) -> None:
    write_rules(tmp_path, *TWO_REFERENCE_MISTAKES)
    result = run_ivr("check", "routing_rules.yaml", "--prompts", str(PROMPTS), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(TWO_REFERENCE_MESSAGES)
    for line in lines:
        assert PROBLEM_LINE.match(line), line


def test_ivr_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    database = Database(url)
    try:
        head = database.head_revision()
        for _ in range(2):  # a second upgrade finds nothing to do
            result = run_ivr("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
            assert (result.returncode, result.stdout) == (0, f"database at revision {head}\n")
        assert database.current_revision() == head
        with database.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
        assert {"tickets", "ticket_changes", "alembic_version"} <= tables
    finally:
        database.dispose()


def test_ivr_serve_refuses_a_schema_behind_the_code_and_says_what_to_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    database = Database(url)
    try:
        database.upgrade("0002")
        result = run_ivr(
            "serve", "--dev", "--no-migrate", "--port", "0", cwd=ROOT, DATABASE_URL=url
        )
    finally:
        database.dispose()
    assert result.returncode == 1
    assert (
        "cannot start: the database is at revision 0002, the code needs 0009: "
        "run `ivr db upgrade`" in result.stderr
    )


def test_ivr_serve_refuses_a_database_it_cannot_reach(tmp_path: Path) -> None:
    from tests.faults import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    result = run_ivr("serve", "--dev", "--port", "0", cwd=ROOT, DATABASE_URL=url)
    assert result.returncode == 1
    assert "cannot start: cannot upgrade the database schema (" in result.stderr
    assert "Traceback" not in result.stderr


def test_ivr_db_upgrade_of_a_database_it_cannot_reach_says_so_in_one_line(tmp_path: Path) -> None:
    from tests.faults import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    result = run_ivr("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("cannot upgrade the database schema (")
    assert result.stderr.count("\n") == 1 and "Connection refused" in result.stderr


def test_ivr_worker_drain_writes_what_waits_in_the_spool(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ivr.tickets.journal import Spool
    from tests.support import journal_record

    url = f"sqlite:///{tmp_path}/x.sqlite3"
    database = Database(url)
    try:
        database.upgrade()
        spool = Spool(tmp_path / "spool")
        spool.write(journal_record("CA1", datetime(2026, 11, 23, tzinfo=UTC)).to_json())
        spool.seal()
        result = run_ivr(
            "worker",
            "--drain",
            cwd=ROOT,
            DATABASE_URL=url,
            IVR_DEV_MODE="1",
            IVR_SPOOL_DIR=str(tmp_path / "spool"),
        )
        assert (result.returncode, result.stdout) == (0, "wrote 1 journal records\n"), result.stderr
        assert database.current_revision() == "0009"
        with database.engine.connect() as connection:
            tickets = connection.exec_driver_sql("SELECT call_sid FROM tickets").scalars().all()
        assert tickets == ["CA1"]
    finally:
        database.dispose()


def test_ivr_worker_writes_tickets_until_told_to_stop(tmp_path: Path) -> None:
    import signal
    import time
    from datetime import UTC, datetime

    from ivr.tickets.journal import Spool
    from tests.support import journal_record

    url = f"sqlite:///{tmp_path}/x.sqlite3"
    database = Database(url)
    database.upgrade()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in {"ROUTING_RULES", "VOICE_PROMPTS"}},
        "DATABASE_URL": url,
        "IVR_DEV_MODE": "1",
        "IVR_SPOOL_DIR": str(tmp_path / "spool"),
    }
    worker = subprocess.Popen([str(IVR), "worker"], cwd=ROOT, env=environment)
    try:
        spool = Spool(tmp_path / "spool")
        spool.write(journal_record("CA1", datetime(2026, 11, 23, tzinfo=UTC)).to_json())
        spool.seal()  # as a web process that went away leaves its file
        deadline = time.monotonic() + 30
        tickets: list[str] = []
        while not tickets and time.monotonic() < deadline:
            time.sleep(0.2)
            with database.engine.connect() as connection:
                tickets = connection.exec_driver_sql("SELECT call_sid FROM tickets").scalars().all()
        assert tickets == ["CA1"]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        database.dispose()


# --- ivr agents -----------------------------------------------------------------------------------

A_PIN_IN_THE_RULES = ('    extension: "102"\n', '    extension: "102"\n    ‸pin: "730152"\n')
A_PIN_IN_THE_RULES_MESSAGE = (
    "agents.emma.pin: a PIN does not belong in the rules file: delete this line and set it with "
    "`ivr agents set-pin emma` (it is stored hashed in IVR_AGENT_PINS)"
)


@pytest.fixture
def pin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `ivr agents` keeps the PINs in these tests ($IVR_AGENT_PINS)."""
    path = tmp_path / "instance" / "agent_pins.json"
    monkeypatch.setenv("IVR_AGENT_PINS", str(path))
    monkeypatch.setenv("ROUTING_RULES", str(RULES))
    return path


def set_pin(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["agents", "set-pin", *args, "--pin-stdin"])


def test_check_refuses_a_rules_file_with_a_pin_and_says_where_pins_belong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, [(line, column)] = write_rules(tmp_path, A_PIN_IN_THE_RULES)
    assert main(["check", str(rules), "--prompts", str(PROMPTS)]) == 1
    assert capsys.readouterr().out == f"{rules}:{line}:{column}: {A_PIN_IN_THE_RULES_MESSAGE}\n"


def test_set_pin_stores_a_salted_hash_only_its_owner_can_read(
    pin_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set_pin(monkeypatch, "emma", stdin="604731\n") == 0
    assert capsys.readouterr().out == (
        f"PIN of emma set in {pin_file} (a running server uses it at once)\n"
    )
    assert "604731" not in pin_file.read_text()
    assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
    assert PinStore(pin_file).verify("emma", "604731")


def test_set_pin_at_a_terminal_asks_twice(
    pin_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = iter(["604731", "604713"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    assert main(["agents", "set-pin", "emma"]) == 1
    assert capsys.readouterr().err == "the two PINs differ: nothing changed\n"
    assert not pin_file.exists()


@pytest.mark.parametrize(
    ("agent", "pin", "message"),
    [
        (
            "nobody",
            "604731",
            "no agent 'nobody' in {rules} (its agents: anna, emma, li_wei, lucas, sec_desk)",
        ),
        ("emma", "4821", "PIN not set: a PIN is 6 to 12 digits (0-9)"),
        (
            "emma",
            "222222",
            "PIN not set: that PIN repeats one to three digits (like 111111 or "
            "121212): it is guessed first",
        ),
        (
            "emma",
            "123456",
            "PIN not set: that PIN is a run of digits (like 123456 or 654321): it is guessed first",
        ),
    ],
)
def test_set_pin_refuses_an_unknown_agent_and_a_short_or_guessable_pin(
    pin_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    agent: str,
    pin: str,
    message: str,
) -> None:
    assert set_pin(monkeypatch, agent, stdin=f"{pin}\n") == 1
    assert capsys.readouterr().err == message.format(rules=RULES) + "\n"
    assert not pin_file.exists()


def test_set_pin_refuses_while_the_rules_file_still_holds_pins(
    pin_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules, [(line, column)] = write_rules(tmp_path, A_PIN_IN_THE_RULES)
    assert set_pin(monkeypatch, "emma", "--rules", str(rules), stdin="604731\n") == 1
    assert capsys.readouterr().err == f"{rules}:{line}:{column}: {A_PIN_IN_THE_RULES_MESSAGE}\n"
    assert not pin_file.exists()


def test_agents_list_shows_who_can_log_in(
    pin_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_agent_pins(pin_file, {"emma": "604731", "gone": "604731"})
    assert main(["agents", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "AGENT     EXTENSION  PIN",
        "li_wei    101        not set: cannot log in",
        "emma      102        set",
        "lucas     103        not set: cannot log in",
        "anna      104        not set: cannot log in",
        "sec_desk  190        not set: cannot log in",
        "gone has a PIN but is not in the rules (ivr agents remove-pin gone)",
    ]
    assert main(["agents", "remove-pin", "gone"]) == 0
    assert capsys.readouterr().out == "PIN of gone removed: gone can no longer log in\n"
    assert PinStore(pin_file).agents() == {"emma"}


def test_ivr_agents_set_pin_command_from_a_script(tmp_path: Path) -> None:
    pins = tmp_path / "agent_pins.json"
    result = subprocess.run(
        [str(IVR), "agents", "set-pin", "anna", "--pin-stdin"],
        cwd=ROOT,
        env={**os.environ, "IVR_AGENT_PINS": str(pins), "ROUTING_RULES": str(RULES)},
        input="517394\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert PinStore(pins).verify("anna", "517394")


# --- bad numbers and the version ------------------------------------------------------------------


def test_ivr_version_prints_the_version_of_the_package() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run_ivr("--version", cwd=ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"ivr {version}\n", "")


BAD_NUMBERS = [
    (["simulate", "--calls", "0"], "argument --calls: must be 1 or more (got 0)"),
    (["simulate", "--calls", "-2"], "argument --calls: must be 1 or more (got -2)"),
    (["simulate", "--calls", "many"], "argument --calls: 'many' is not a whole number"),
    (["simulate", "--play-seconds", "0"], "argument --play-seconds: must be more than 0"),
    (["simulate", "--spread", "-1"], "argument --spread: must be 0 seconds or more"),
    (["simulate", "--hangup-after", "nan"], "argument --hangup-after: 'nan' is not a finite"),
    (["simulate", "--retries", "-1"], "argument --retries: must be 0 or more (got -1)"),
    (["simulate", "--status-delay", "-5"], "argument --status-delay: must be 0 seconds"),
    (["simulate", "--agent-talks", "-60"], "argument --agent-talks: must be 0 seconds"),
    (["serve", "--workers", "0"], "argument --workers: must be 1 or more (got 0)"),
    (["serve", "--threads", "0"], "argument --threads: must be 1 or more (got 0)"),
    (["serve", "--port", "70000"], "argument --port: a port is 1 to 65535 (got 70000)"),
    (["worker", "--nice", "-5"], "argument --nice: must be 0 or more (got -5)"),
    (["tickets", "list", "--limit", "0"], "argument --limit: must be 1 or more (got 0)"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD_NUMBERS, ids=[f"{a[0]}{a[-2]}={a[-1]}" for a, _ in BAD_NUMBERS]
)
def test_a_number_that_makes_no_sense_is_refused_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err.splitlines()[-1]


def test_a_port_setting_that_is_not_a_number_is_refused_by_serve_only(tmp_path: Path) -> None:
    result = run_ivr("serve", "--dev", cwd=tmp_path, PORT="eighty")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "ivr serve: error: argument --port: 'eighty' is not a whole number"
    )
    assert (
        run_ivr(
            "check", str(RULES), "--prompts", str(PROMPTS), cwd=tmp_path, PORT="eighty"
        ).returncode
        == 0
    )
