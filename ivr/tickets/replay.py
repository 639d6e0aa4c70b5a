"""`ivr journal replay FILE...`: put the records of `JOURNAL-LOST` log lines back into the journal.

A record that nothing could keep (neither the spool nor Redis took it, and the process's memory for
such records was full) is logged whole, as `JOURNAL-LOST <json>` (`ivr.tickets.journal`). This
command finds those lines in log files, in the text format and in the JSON one
(`IVR_LOG_FORMAT=json`, where the record is inside the `message` string; any JSON line whose string
field carries the mark, so a log collector's wrapping too), and appends the records to the journal:
the Redis stream, or this host's spool when Redis does not take them (a serving process on this
host ships it). Replaying is safe to repeat: a record's id is its key in `ticket_changes`, so a
record replayed twice is applied once.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from redis.exceptions import RedisError

from ivr.tickets.journal import LOST_MARK, Journal, Where
from ivr.tickets.records import BadRecord, JournalRecord

_MARK = f"{LOST_MARK} "
_BATCH = 1000
"""Records per Redis round trip."""


@dataclass
class LostRecords:
    """The `JOURNAL-LOST` records found in log lines, each once, and the lines that were unreadable."""

    records: dict[str, JournalRecord] = field(default_factory=dict)
    """By record id, in the order first found."""
    repeated: int = 0
    """Records found more than once (a log read twice, two handlers)."""
    unreadable: list[str] = field(default_factory=list)
    """`SOURCE:LINE: why`, for each mark whose record could not be read."""

    def read(self, lines: Iterable[bytes], source: str) -> None:
        """Collect the records of the marked lines of one log."""
        for number, raw in enumerate(lines, 1):
            if LOST_MARK.encode() not in raw:
                continue
            where = f"{source}:{number}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                self.unreadable.append(f"{where}: not UTF-8 text")
                continue
            for text in _marked_texts(line):
                self._take(text, where)

    def _take(self, text: str, where: str) -> None:
        start = text.find(_MARK)
        while start >= 0:
            begin = start + len(_MARK)
            try:
                _, end = json.JSONDecoder().raw_decode(text, begin)
                record = JournalRecord.from_json(text[begin:end])
            except (ValueError, BadRecord) as exc:  # json's errors are ValueErrors
                self.unreadable.append(f"{where}: not a whole journal record ({exc})")
                end = begin
            else:
                if record.id in self.records:
                    self.repeated += 1
                else:
                    self.records[record.id] = record
            start = text.find(_MARK, end)


def _marked_texts(line: str) -> list[str]:
    """Where a record may be: the string fields of a JSON log line, or the text line itself."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            body: Any = json.loads(stripped)
        except ValueError:
            body = None
        if isinstance(body, dict):
            return [v for v in body.values() if isinstance(v, str) and _MARK in v]
    return [line]


def put_back(journal: Journal, records: Sequence[JournalRecord], *, stream_first: bool) -> Where:
    """Append records to the Redis stream (with `stream_first`), else to the spool, sealed at once
    so that a serving process ships it; where they went. Raises OSError when neither takes them."""
    lines = [record.to_json() for record in records]
    if stream_first:
        try:
            for start in range(0, len(lines), _BATCH):
                journal.stream.add_many(lines[start : start + _BATCH])
            return "stream"
        except RedisError:
            pass  # what went already is applied once, whatever goes again below
    journal.spool.write_many(lines)
    journal.spool.seal()
    return "spool"


def _open(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    if name.endswith(".gz"):  # a rotated log
        return gzip.open(name, "rb")  # type: ignore[return-value]
    return open(name, "rb")  # closed by the caller


def _replay(args: argparse.Namespace) -> int:
    from ivr.config import EMBEDDED_REDIS, ConfigError, Settings
    from ivr.queue import connect

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    found = LostRecords()
    for name in args.files:
        try:
            log = _open(name)
            try:
                found.read(log, "<stdin>" if name == "-" else name)
            finally:
                if log is not sys.stdin.buffer:
                    log.close()
        except OSError as exc:
            found.unreadable.append(f"{name}: cannot read it: {exc.strerror or exc}")
    for problem in found.unreadable:
        print(problem, file=sys.stderr)
    records = list(found.records.values())
    where: Where = "stream"
    if records:
        journal = Journal(connect(settings.redis_url), settings.spool_dir)
        try:
            # The embedded Redis lives in this process only: what it took would end with it.
            where = put_back(journal, records, stream_first=settings.redis_url != EMBEDDED_REDIS)
        except OSError as exc:
            print(
                f"nothing replayed: Redis is unreachable and the spool ({settings.spool_dir}) "
                f"refused the records ({exc.strerror or exc})",
                file=sys.stderr,
            )
            return 1
    repeated = f" (and {found.repeated} repeats of them)" if found.repeated else ""
    into = {"stream": "the Redis stream", "spool": f"the spool in {settings.spool_dir}"}
    print(
        f"found {len(records)} JOURNAL-LOST records{repeated}, replayed {len(records)}"
        f"{f' into {into[where]}' if records else ''}, {len(found.unreadable)} could not be read"
    )
    return 1 if found.unreadable else 0


def add_parser(commands: Any) -> None:
    """Add `ivr journal replay` to the `ivr` command."""
    journal = commands.add_parser("journal", help="the ticket journal")
    journal_commands = journal.add_subparsers(dest="journal_command", required=True)
    replay = journal_commands.add_parser(
        "replay",
        help="put the ticket changes of JOURNAL-LOST log lines back into the journal (safe to repeat)",
    )
    replay.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="log files, text or JSON lines (.gz too); - reads standard input",
    )
    replay.set_defaults(run=_replay)
