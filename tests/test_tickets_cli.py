"""`ivr tickets list|export|show` on a database filled by simulated calls (see
tests/tickets/test_listing.py for the calls): what an admin reads on the terminal, and a CSV file a
spreadsheet opens; `ivr tickets prune` on journal records written straight to the database."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.cli import main
from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.simulator.rest import TwilioRest
from ivr.tickets.models import Ticket
from ivr.tickets.records import CallEnd
from tests.support import journal_record, ticket_of, write_records
from tests.tickets.test_listing import (  # the calls of the listing tests
    AMERICAN,
    FRENCH,
    GERMAN,
    MONDAY_15,
    ODD_RECORDING,
    answered_call,
    fill,
)

pytestmark = pytest.mark.usefixtures("agent_pins")


@pytest.fixture
def app(rest_app: Flask) -> Flask:
    """The app with Twilio REST credentials, as in the listing tests."""
    return rest_app


@pytest.fixture
def tickets(
    client: FlaskClient, clock: FrozenClock, database: Database, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Ticket]:
    """Four simulated calls, and the commands pointed at their database."""
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    return fill(client, clock, database)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tickets", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_an_aligned_table_newest_first_with_numbers_masked(
    tickets: dict[str, Ticket], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "REFERENCE", "TIME", "LANGUAGE", "ISSUE", "QUEUE", "OUTCOME", "WAIT", "CALLER"
    ]  # fmt: skip
    order = ["voicemail", "other_german", "self_served", "abandoned"]
    assert [row.split()[0] for row in rows] == [tickets[n].reference for n in order]
    for column in ("LANGUAGE", "QUEUE", "CALLER"):  # every row's cell starts under its heading
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows)
    abandoned = rows[3]
    assert "2026-11-23 15:00:00Z" in abandoned and "de-DE" in abandoned and "45 s" in abandoned
    assert abandoned.endswith("+49 *** *** 678")
    for number in (GERMAN, AMERICAN, FRENCH):
        assert number.removeprefix("+") not in out


def test_list_filters_limits_and_shows_full_numbers_only_when_asked(
    tickets: dict[str, Ticket], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list", "--queue", "funds", "--outcome", "abandoned")
    assert code == 0 and [r.split()[0] for r in out.splitlines()[1:]] == [
        tickets["abandoned"].reference
    ]
    code, out, _ = run(capsys, "list", "--caller", "5678", "--full-numbers")
    assert code == 0 and GERMAN in out and FRENCH in out and AMERICAN not in out
    code, out, _ = run(capsys, "list", "--limit", "1")
    assert out.splitlines()[1].split()[0] == tickets["voicemail"].reference
    assert out.splitlines()[-1] == "(1 of 4 tickets: use --limit to see more)"
    code, out, _ = run(capsys, "list", "--since", "2026-12-01")
    assert (code, out) == (0, "no tickets match\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "last monday"], "since 'last monday' is not a date or time"),
        (["--until", "2026-11-23 15:00"], "has no time zone"),
        (["--outcome", "hung_up"], "unknown outcome 'hung_up'"),
    ],
)
@pytest.mark.parametrize("command", ["list", "export"])
def test_a_bad_filter_value_exits_2_with_one_line_saying_why(
    tickets: dict[str, Ticket],
    capsys: pytest.CaptureFixture[str],
    command: str,
    argv: list[str],
    message: str,
) -> None:
    code, out, err = run(capsys, command, *argv)
    assert code == 2 and out == ""
    assert err.startswith("ivr tickets: ") and message in err and err.count("\n") == 1


def test_export_writes_a_csv_file_that_reads_back_without_full_numbers(
    tickets: dict[str, Ticket], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "tickets.csv"
    code, out, err = run(capsys, "export", "--format", "csv", "--out", str(target))
    assert code == 0 and out == "" and err == f"4 tickets written to {target}\n"
    raw = target.read_bytes()
    assert raw.count(b"\r\n") == 5 and not raw.startswith(b"\xef\xbb\xbf")  # header + 4, no BOM
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert [r["reference"] for r in rows][-1] == tickets["abandoned"].reference
    assert rows[0]["recording_url"] == ODD_RECORDING  # a comma and quotes, read back whole
    assert rows[0]["arrived_at"] == "2026-11-28T12:00:00+00:00"
    assert {r["caller"] for r in rows} == {
        "'+33 *** *** 678",
        "'+49 *** *** 820",
        "'+1 *** *** 100",
        "'+49 *** *** 678",
    }  # fmt: skip (the apostrophe: a spreadsheet shows the text, and runs no formula)
    for number in (GERMAN, AMERICAN, FRENCH, "+4930901820"):
        assert number.removeprefix("+").encode() not in raw


def test_export_json_to_stdout_filtered_with_full_numbers(
    tickets: dict[str, Ticket], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "export", "--format", "json", "--until", "2026-11-23", "--full-numbers"
    )
    assert code == 0
    rows = json.loads(out)
    assert [(r["outcome"], r["caller"]) for r in rows] == [
        ("self_served", AMERICAN),
        ("abandoned", GERMAN),
    ]


def test_show_prints_the_fields_and_the_whole_timeline_of_an_answered_call(
    client: FlaskClient,
    rest: TwilioRest,
    clock: FrozenClock,
    database: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    clock.set(MONDAY_15)
    ticket = ticket_of(database, answered_call(client, rest, clock).sid)
    code, out, _ = run(capsys, "show", " ".join(ticket.reference))  # as the caller heard it
    assert code == 0
    fields, story = out.split("\ntimeline:\n")
    assert f"reference:        {ticket.reference}" in fields.splitlines()
    for line in (
        "caller:           +49 *** *** 678",
        "menu path:        language:4 > main:2 > funds:2",
        "outcome:          answered",
        "agent:            anna",
        "satisfaction:     4 of 5",
    ):
        assert line in fields.splitlines()
    steps = [line.split(None, 3)[2:] for line in story.splitlines()]
    assert steps[0] == ["call", "call from +49 *** *** 678 to +18005550199"]
    assert ["menu", "menu funds: pressed 2"] in steps
    assert ["queue", "CONNECT, funds (de-DE), agent anna, waited 75 s"] in steps
    assert steps[-2:] == [
        ["survey", "survey score 4 of 5"],
        ["end", "call ended: completed after 360 s"],
    ]
    assert "2026-11-23 15:01:15Z  queue" in story
    assert GERMAN not in out
    code, out, _ = run(capsys, "show", ticket.reference, "--full-numbers")
    assert code == 0 and f"call from {GERMAN}" in out


def test_show_of_an_unknown_reference_exits_1_saying_so(
    tickets: dict[str, Ticket], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "show", "9999999")
    assert (code, out) == (1, "")
    assert err == "ivr tickets: no ticket with reference '9999999'\n"


# --- a database the commands cannot read -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "doing"),
    [
        (["list"], "cannot list tickets"),
        (["export", "--format", "json"], "cannot export tickets"),
        (["show", "4821093"], "cannot show the ticket"),
    ],
)
def test_a_database_without_the_schema_gets_one_line_saying_what_to_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    doing: str,
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.sqlite3"
    head = Database(url).head_revision()
    monkeypatch.setenv("DATABASE_URL", url)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == (
        f"{doing}: the database is without any schema, the code needs {head}: "
        "run `ivr db upgrade`\n"
    )


def test_a_database_behind_the_code_says_its_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    database = Database(url)
    try:
        database.upgrade("0002")
        head = database.head_revision()
    finally:
        database.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    code, out, err = run(capsys, "list")
    assert (code, out) == (1, "")
    assert err == (
        f"cannot list tickets: the database is at revision 0002, the code needs {head}: "
        "run `ivr db upgrade`\n"
    )


def test_a_database_that_does_not_answer_gets_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.faults import free_port

    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    code, out, err = run(capsys, "list")
    assert (code, out) == (1, "")
    assert err.startswith("cannot list tickets: cannot reach the database (")
    assert err.count("\n") == 1 and "Connection refused" in err


def test_a_listing_read_by_head_ends_quietly(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.support import EXIT_READER_GONE, first_line_then_close

    url = f"sqlite:///{tmp_path}/many.sqlite3"
    database = Database(url)
    start = datetime(2026, 11, 23, 15, tzinfo=UTC)
    try:
        database.upgrade()
        with database.session() as session:  # more than a pipe holds: the lister must wait on it
            session.add_all(
                Ticket(
                    call_sid=f"CA{n:032d}",
                    reference=f"{1000000 + n}",
                    caller="+4930123456",
                    language="de-DE",
                    arrived_at=start + timedelta(seconds=n),
                )
                for n in range(1500)
            )
    finally:
        database.dispose()
    line, status, err = first_line_then_close(
        "tickets", "list", "--limit", "1500", cwd=tmp_path, DATABASE_URL=url
    )
    assert line.split() == [
        "REFERENCE",
        "TIME",
        "LANGUAGE",
        "ISSUE",
        "QUEUE",
        "OUTCOME",
        "WAIT",
        "CALLER",
    ]
    assert (status, err) == (EXIT_READER_GONE, "")


# --- ivr tickets prune ------------------------------------------------------------------------


@pytest.fixture
def old_and_recent_calls(database: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A call that ended 40 days before the clock (4 records) and one that ended two days before (4)."""
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    monkeypatch.setenv("IVR_CLOCK", "2026-12-07T12:00:00Z")
    monkeypatch.delenv("IVR_TICKET_CHANGES_RETENTION_DAYS", raising=False)
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    for sid, start in (("CA-old", now - timedelta(days=40)), ("CA-new", now - timedelta(days=2))):
        write_records(
            database,
            journal_record(sid, start, caller=GERMAN),
            journal_record(sid, start + timedelta(seconds=5), language="de-DE"),
            journal_record(sid, start + timedelta(seconds=9), queue="funds", queued=True),
            journal_record(sid, start + timedelta(seconds=60), end=CallEnd("completed", 60)),
        )
    return database


def test_prune_deletes_the_records_of_calls_that_ended_before_the_retention_and_says_so(
    old_and_recent_calls: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ticket_of(old_and_recent_calls, "CA-old")

    assert run(capsys, "prune", "--dry-run") == (
        0,
        "would delete 4 journal records of 1 calls ended before 2026-11-07 12:00:00Z\n",
        "",
    )
    assert run(capsys, "prune") == (
        0,
        "deleted 4 journal records of 1 calls ended before 2026-11-07 12:00:00Z\n",
        "",
    )
    assert run(capsys, "prune")[1].startswith("deleted 0 journal records of 0 calls")
    after = ticket_of(old_and_recent_calls, "CA-old")
    assert (after.outcome, after.language, after.queue, after.ended_at) == (
        before.outcome,
        before.language,
        before.queue,
        before.ended_at,
    )
    assert run(capsys, "prune", "--older-than", "1")[1] == (
        "deleted 4 journal records of 1 calls ended before 2026-12-06 12:00:00Z\n"
    )


def test_prune_with_retention_off_deletes_nothing_unless_told_how_old(
    old_and_recent_calls: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_TICKET_CHANGES_RETENTION_DAYS", "0")

    code, out, _ = run(capsys, "prune")

    assert code == 0
    assert out == (
        "IVR_TICKET_CHANGES_RETENTION_DAYS is 0: ticket changes are kept forever "
        "(give --older-than DAYS to prune anyway)\n"
    )
    assert run(capsys, "prune", "--older-than", "30")[1].startswith("deleted 4 journal records")


def test_prune_refuses_a_bad_age_in_one_line(
    old_and_recent_calls: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["tickets", "prune", "--older-than", "0"])
    assert usage.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err

    monkeypatch.setenv("IVR_TICKET_CHANGES_RETENTION_DAYS", "a month")
    code, out, err = run(capsys, "prune")
    assert (code, out) == (1, "")
    assert err.startswith("cannot prune: IVR_TICKET_CHANGES_RETENTION_DAYS must be whole days")
    assert len(err.splitlines()) == 1
