"""Micro-benchmark: ticket changes per second through the journal (spool -> Redis stream -> PostgreSQL).

    .venv/bin/python -m bench.micro_journal [--quick]

Whole calls' worth of journal records (8 records a call, as the benchmark's call makes them) are
appended to a spool, shipped to the stream, and written to the database by one `TicketWriter`; each
stage is timed on its own and the three together. On its own it starts a redis-server and creates a
database of its own, dropped after (as `bench.run` does); `bench.run` hands it its own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.tickets import writes
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.journal import Journal
from ivr.tickets.records import CallEnd, JournalRecord
from ivr.tickets.references import References
from ivr.tickets.writer import TicketWriter

CALLS = 2_500
QUICK_CALLS = 250
_T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def a_call(number: int) -> list[JournalRecord]:
    """Eight records of one call: incoming, two menus, the queue, answered, rated, talk, the end."""
    sid = f"CAmicro{number:027d}"
    at = _T0 + timedelta(seconds=number)

    def rec(seconds: int, purpose: str, **fields: Any) -> JournalRecord:
        end = fields.pop("end", None)
        return JournalRecord(
            id=f"{sid}-{purpose}",
            call_sid=sid,
            at=at + timedelta(seconds=seconds),
            reference=str(1_000_000 + number),
            caller="+12125550100" if purpose == "incoming" else None,
            called="+18005550199" if purpose == "incoming" else None,
            change=TicketChange(**fields),
            end=end,
        )

    return [
        rec(0, "incoming"),
        rec(3, "language", language="en-US", menu_step="language:2"),
        rec(6, "main", menu_step="main:2"),
        rec(
            9,
            "funds",
            menu_step="funds:1",
            issue="deposit",
            queue="funds",
            team="americas",
            priority=30,
            outcome=Outcome.QUEUED,
            queued=True,
            events=(EventRecord(QueueEvent.ENTERQUEUE, "funds", "en-US"),),
        ),
        rec(40, "answered", outcome=Outcome.ANSWERED, agent="emma"),
        rec(300, "rated", satisfaction=4),
        rec(301, "talk", events=(EventRecord(QueueEvent.COMPLETECALLER, talk_seconds=260),)),
        rec(302, "end", end=CallEnd("completed", 302)),
    ]


def run(redis_url: str, database_url: str, quick: bool = False) -> dict[str, Any]:
    """Records per second through each stage of the journal, and through all of them."""
    calls = QUICK_CALLS if quick else CALLS
    records = [r for n in range(calls) for r in a_call(n)]
    client = redis.Redis.from_url(redis_url)
    client.delete("ivr:{journal}", "ivr:{journal}:rejected")
    database = Database(database_url)
    database.upgrade()
    ours = {"calls": "CAmicro%"}
    with database.engine.begin() as connection:  # a previous run's calls
        for table in ("ticket_changes", "queue_events", "tickets"):
            connection.execute(text(f"DELETE FROM {table} WHERE call_sid LIKE :calls"), ours)
    journal = Journal(client, Path(tempfile.mkdtemp(prefix="ivr-micro-journal-")))

    def lease() -> int:
        with database.sessions() as session:
            return writes.lease_reference_block(session, now=_T0)

    writer = TicketWriter(journal, database, References(lease), FrozenClock(_T0), consumer="micro")

    started = time.perf_counter()
    for record in records:
        journal.append(record)
    appended = time.perf_counter() - started

    started = time.perf_counter()
    shipped = journal.forward_spool(limit_files=1000)
    shipping = time.perf_counter() - started

    started = time.perf_counter()
    written = 0
    while True:
        done = writer.step()
        if not done:
            break
        written += done
    writing = time.perf_counter() - started
    with database.engine.connect() as connection:
        tickets = connection.execute(
            text(
                "SELECT count(*) FROM tickets WHERE call_sid LIKE :calls AND ended_at IS NOT NULL"
            ),
            ours,
        ).scalar_one()
    database.dispose()
    total = appended + shipping + writing
    n = len(records)
    return {
        "calls": calls,
        "records": n,
        "batch_size": writer.batch_size,
        "append_per_second": round(n / appended),
        "ship_per_second": round(shipped / shipping),
        "write_per_second": round(written / writing),
        "end_to_end_per_second": round(n / total),
        "append_us": round(1e6 * appended / n, 1),
        "ship_us": round(1e6 * shipping / n, 1),
        "write_us": round(1e6 * writing / n, 1),
        "complete_tickets": tickets,
    }


def main() -> None:
    from bench import servers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    own = servers.RedisServer()
    own.start()
    try:
        with servers.own_database() as database_url:
            print(json.dumps(run(own.url(0), database_url, args.quick), indent=2))
    finally:
        own.stop()


if __name__ == "__main__":
    main()
