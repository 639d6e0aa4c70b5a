"""`ivr tickets`: list, export and show call tickets from the command line (reads $DATABASE_URL),
and prune the journal records of calls that ended long ago.

Caller numbers are masked ("+49 *** *** 456") unless --full-numbers is given.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ivr.clock import clock_from
from ivr.command import CommandError, positive_int, reading_database
from ivr.config import ConfigError, Settings
from ivr.db import Database
from ivr.tickets.listing import (
    DATE_HELP,
    TicketFilter,
    count_tickets,
    csv_of,
    find_tickets,
    json_of,
    mask_number,
    said_line,
    timeline,
)
from ivr.tickets.models import Ticket
from ivr.tickets.reads import find_by_reference
from ivr.tickets.retention import cutoff, prune, would_prune

_TABLE = ("REFERENCE", "TIME", "LANGUAGE", "ISSUE", "QUEUE", "OUTCOME", "WAIT", "CALLER")


def add_parser(commands: Any) -> None:
    """Register `ivr tickets list|export|show|prune` on the `ivr` command's subparsers."""
    tickets = commands.add_parser(
        "tickets", help="list, export and show call tickets ($DATABASE_URL)", description=__doc__
    )
    actions = tickets.add_subparsers(dest="tickets_command", required=True)

    listing = actions.add_parser("list", help="an aligned table of tickets, newest first")
    _add_filters(listing)
    listing.add_argument(
        "--limit", type=positive_int, default=50, help="show at most this many (default 50)"
    )
    listing.set_defaults(run=_list)

    export = actions.add_parser("export", help="every matching ticket as CSV or JSON, newest first")
    _add_filters(export)
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="default csv")
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(run=_export)

    show = actions.add_parser("show", help="one ticket's fields and its whole timeline")
    show.add_argument("reference", help="the ticket reference (spaces allowed: '482 1093')")
    show.add_argument("--full-numbers", action="store_true", help="show phone numbers in full")
    show.set_defaults(run=_show)

    prune = actions.add_parser(
        "prune",
        help="delete the journal records of calls that ended long ago (tickets stay)",
        description="Delete the journal records (ticket_changes) of calls whose ticket ended more "
        "than DAYS ago, in batches; the tickets and queue events stay. ivr worker does this every "
        "minute with IVR_TICKET_CHANGES_RETENTION_DAYS.",
    )
    prune.add_argument(
        "--older-than",
        type=positive_int,
        metavar="DAYS",
        help="calls that ended more than DAYS ago (default IVR_TICKET_CHANGES_RETENTION_DAYS)",
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    prune.set_defaults(run=_prune)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help=f"calls that arrived at or after: {DATE_HELP}")
    parser.add_argument(
        "--until", help="calls that arrived before this time (a date: up to the end of that day)"
    )
    parser.add_argument("--language", help="e.g. de-DE")
    parser.add_argument("--issue", help="issue id from the rules, e.g. withdrawal")
    parser.add_argument("--queue", help="queue id from the rules, e.g. funds")
    parser.add_argument("--outcome", help="answered, abandoned, voicemail, callback, ...")
    parser.add_argument("--reference", help="one ticket reference")
    parser.add_argument("--caller", help="digits the caller's number contains, e.g. 5678")
    parser.add_argument(
        "--full-numbers", action="store_true", help="show caller numbers in full (default masked)"
    )


def _filter_of(args: argparse.Namespace) -> TicketFilter | None:
    """The filter the options ask for; None, said why on one line, when one is bad."""
    given = {
        name: value
        for name in (
            "since",
            "until",
            "language",
            "issue",
            "queue",
            "outcome",
            "reference",
            "caller",
        )
        if (value := getattr(args, name)) is not None
    }
    try:
        return TicketFilter.from_args(given)
    except ValueError as exc:
        print(f"ivr tickets: {exc}", file=sys.stderr)
        return None


def _database(doing: str) -> AbstractContextManager[Database]:
    """The database of $DATABASE_URL, checked before it is read (see `reading_database`)."""
    return reading_database(Settings.from_env().database_url, doing)


def _list(args: argparse.Namespace) -> int:
    filter = _filter_of(args)
    if filter is None:
        return 2
    with _database("list tickets") as database, database.session() as session:
        tickets = find_tickets(session, filter, limit=args.limit)
        total = count_tickets(session, filter)
    if not tickets:
        print("no tickets match")
        return 0
    rows = [_table_row(t, args.full_numbers) for t in tickets]
    widths = [max(len(row[i]) for row in [_TABLE, *rows]) for i in range(len(_TABLE))]
    for row in [_TABLE, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if total > len(tickets):
        print(f"({len(tickets)} of {total} tickets: use --limit to see more)")
    return 0


def _table_row(ticket: Ticket, full_numbers: bool) -> tuple[str, ...]:
    wait = "" if ticket.wait_seconds is None else f"{ticket.wait_seconds} s"
    caller = (ticket.caller or "") if full_numbers else mask_number(ticket.caller)
    return (
        ticket.reference,
        f"{ticket.arrived_at:%Y-%m-%d %H:%M:%S}Z",
        ticket.language or "-",
        ticket.issue or "-",
        ticket.queue or "-",
        ticket.outcome.value if ticket.outcome is not None else "-",
        wait or "-",
        caller or "-",
    )


def _export(args: argparse.Namespace) -> int:
    filter = _filter_of(args)
    if filter is None:
        return 2
    with _database("export tickets") as database, database.session() as session:
        total = count_tickets(session, filter)
        tickets = find_tickets(session, filter, limit=max(total, 1))
    write = json_of if args.format == "json" else csv_of
    text = write(tickets, full_numbers=args.full_numbers)
    if args.out:
        # newline="": the CSV's own CRLF line ends are written as they are, on every platform.
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        print(f"{len(tickets)} tickets written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _show(args: argparse.Namespace) -> int:
    with _database("show the ticket") as database, database.session() as session:
        ticket = find_by_reference(session, args.reference)
        if ticket is None:
            print(f"ivr tickets: no ticket with reference {args.reference!r}", file=sys.stderr)
            return 1
        story = timeline(session, ticket, full_numbers=args.full_numbers)
    shown = (lambda n: n or "") if args.full_numbers else mask_number
    fields = [
        ("reference", ticket.reference),
        ("arrived", f"{ticket.arrived_at:%Y-%m-%d %H:%M:%S}Z"),
        ("caller", shown(ticket.caller)),
        ("called", ticket.called),
        ("language", ticket.language),
        ("menu path", " > ".join(ticket.menu_path or [])),
        ("said", said_line(ticket)),
        ("issue", ticket.issue),
        ("queue", ticket.queue),
        ("team", ticket.team),
        ("priority", ticket.priority),
        ("outcome", ticket.outcome.value if ticket.outcome is not None else None),
        ("wait", None if ticket.wait_seconds is None else f"{ticket.wait_seconds} s"),
        ("duration", None if ticket.duration_seconds is None else f"{ticket.duration_seconds} s"),
        ("agent", ticket.agent),
        ("recording", ticket.recording_url),
        ("callback number", shown(ticket.callback_number)),
        ("satisfaction", None if ticket.satisfaction is None else f"{ticket.satisfaction} of 5"),
        ("account", ticket.account),
        ("verified", _verified(ticket)),
        ("locked", None if ticket.locked_at is None else f"{ticket.locked_at:%Y-%m-%d %H:%M:%S}Z"),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name + ':':<{width + 1}}  {'-' if value in (None, '') else value}")
    print()
    print("timeline:")
    for entry in story:
        print(f"  {entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.kind:<9}  {entry.text}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise CommandError(f"cannot prune: {exc}") from None
    days = args.older_than or settings.ticket_changes_retention_days
    if not days:
        print(
            "IVR_TICKET_CHANGES_RETENTION_DAYS is 0: ticket changes are kept forever "
            "(give --older-than DAYS to prune anyway)"
        )
        return 0
    now = clock_from(settings.clock_start, settings.clock_anchor).now()
    before = cutoff(now, days)
    ended = f"ended before {before:%Y-%m-%d %H:%M:%S}Z"
    with reading_database(settings.database_url, "prune ticket changes") as database:
        if args.dry_run:
            with database.sessions() as session:
                found = would_prune(session, before=before)
            print(f"would delete {found.records} journal records of {found.calls} calls {ended}")
            return 0
        done = prune(database, before=before, now=now, max_batches=_NO_LIMIT)
    print(f"deleted {done.records} journal records of {done.calls} calls {ended}")
    return 0


_NO_LIMIT = 1_000_000_000
"""Batches `ivr tickets prune` may run: all there is (each batch is its own short transaction)."""


def _verified(ticket: Ticket) -> str | None:
    if ticket.verified_at is None:
        return None
    return (
        f"{ticket.verified_at:%Y-%m-%d %H:%M:%S}Z (code sent to the caller's {ticket.verified_by})"
    )
