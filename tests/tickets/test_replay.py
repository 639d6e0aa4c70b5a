"""`ivr journal replay`: the records of `JOURNAL-LOST` log lines go back into the journal, once."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from ivr.cli import main
from ivr.logs import JsonFormatter
from ivr.services import services
from ivr.tickets.journal import Journal, JournalStream
from ivr.tickets.models import TicketChangeRow
from ivr.tickets.reads import get_ticket
from ivr.tickets.records import JournalRecord
from tests.conftest import MONDAY_AFTERNOON
from tests.faults import RedisProcess, free_port
from tests.support import journal_record
from tests.tickets.test_journal import unreachable_redis

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The format of `ivr`'s text logs (`ivr.cli.main`)."""
SID = "CA" + "5" * 32


def lost_in_log(log: Path, formatter: logging.Formatter, *records: JournalRecord) -> None:
    """Append to `log` what the service logs for records nothing could keep."""
    blocked = log.parent / "not-a-folder"
    blocked.touch()
    journal = Journal(unreachable_redis(), blocked / "spool", memory_records=0)
    handler = logging.FileHandler(log, encoding="utf-8")
    handler.setFormatter(formatter)
    logger = logging.getLogger("ivr.journal")
    logger.addHandler(handler)
    try:
        assert [journal.append(r) for r in records] == ["lost"] * len(records)
    finally:
        logger.removeHandler(handler)
        handler.close()


def records_of_a_call() -> list[JournalRecord]:
    return [
        journal_record(SID, MONDAY_AFTERNOON, language="en-US", menu_step="language:2"),
        journal_record(SID, MONDAY_AFTERNOON, menu_step="main:2"),
        journal_record(SID, MONDAY_AFTERNOON, menu_step="funds:1"),
    ]


def test_lost_records_in_text_and_json_logs_are_put_in_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = records_of_a_call()
    text_log, json_log = tmp_path / "ivr.log", tmp_path / "ivr.json.log"
    text_log.write_text("2026-11-23 15:00:00,000 INFO ivr.app: serving\n")
    lost_in_log(text_log, logging.Formatter(TEXT_FORMAT), first, second)
    lost_in_log(json_log, JsonFormatter(), third, first)  # the first one twice: replayed once
    with RedisProcess() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        monkeypatch.setenv("IVR_SPOOL_DIR", str(tmp_path / "spool"))

        assert main(["journal", "replay", str(text_log), str(json_log)]) == 0

        stream = JournalStream(redis.Redis.from_url(server.url))
        replayed = [d.record for d in stream.read("writer", 10)]
    assert replayed == [first, second, third]
    assert capsys.readouterr().out == (
        "found 3 JOURNAL-LOST records (and 1 repeats of them), replayed 3 into the Redis stream, "
        "0 could not be read\n"
    )


def test_lines_that_cannot_be_read_are_named_and_the_rest_goes_to_the_spool_if_redis_is_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole, cut = records_of_a_call()[:2]
    log = tmp_path / "ivr.log"
    lost_in_log(log, logging.Formatter(TEXT_FORMAT), whole, cut)
    text = log.read_text()
    log.write_text(text[: text.rindex(cut.id)] + "\n")  # the log was cut inside the last record
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody answers
    monkeypatch.setenv("IVR_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(log.read_bytes())))

    assert main(["journal", "replay", "-", str(tmp_path / "missing.log")]) == 1

    out, err = capsys.readouterr()
    assert err.splitlines()[0].startswith("<stdin>:3: not a whole journal record (Unterminated")
    assert (
        err.splitlines()[1]
        == f"{tmp_path / 'missing.log'}: cannot read it: No such file or directory"
    )
    assert out == (
        f"found 1 JOURNAL-LOST records, replayed 1 into the spool in {tmp_path / 'spool'}, "
        "2 could not be read\n"
    )
    spool = Journal(unreachable_redis(), tmp_path / "spool").spool
    (path,) = spool.files()
    with spool.claim(path) as deliveries:  # sealed: a serving process ships it
        assert deliveries is not None and [d.record for d in deliveries] == [whole]


def test_a_call_replayed_twice_is_written_once(
    app_factory: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = app_factory(writer="off")
    records = records_of_a_call()
    log = tmp_path / "ivr.log"
    lost_in_log(log, logging.Formatter(TEXT_FORMAT), *records)
    with app.app_context():
        s = services()
        # The embedded Redis lives in the command's own process: it replays into the spool.
        monkeypatch.setenv("REDIS_URL", "embedded://")
        monkeypatch.setenv("IVR_SPOOL_DIR", str(s.settings.spool_dir))
        for _ in range(2):  # an operator who runs it again, before or after the writer ran
            assert main(["journal", "replay", str(log)]) == 0
            assert s.writer.drain() == len(records)

        with s.db.sessions() as session:
            ticket = get_ticket(session, SID)
            ids = [r.id for r in records]
            rows = session.scalar(
                select(func.count()).select_from(TicketChangeRow).where(TicketChangeRow.id.in_(ids))
            )
    assert rows == len(records)
    assert ticket is not None
    assert ticket.language == "en-US"
    assert ticket.menu_path == ["language:2", "main:2", "funds:1"]  # each step once
