"""`ivr worker`: write tickets from the journal, keep the queues tidy, place after-hours callbacks."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from ivr import logs
from ivr.command import count
from ivr.config import ConfigError, Settings
from ivr.rules.loader import RulesError

log = logging.getLogger("ivr.cli")
"""The logger `ivr worker` had as one module: log lines keep their logger name."""


def _worker(args: argparse.Namespace) -> int:
    """`ivr worker`: write tickets from the journal, keep the queues tidy and place after-hours
    callbacks when their team opens, until stopped."""
    import threading

    from ivr.app import build_services
    from ivr.clock import clock_from

    try:
        settings = Settings.from_env().with_overrides(writer="thread")
        settings.validate()
        logs.configure(settings.log_format)
    except ConfigError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    clock = clock_from(settings.clock_start, settings.clock_anchor)
    try:
        s = build_services(settings, clock)
    except RulesError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    if args.drain:
        from ivr.tickets.writer import StoreUnavailable

        try:
            written = s.writer.drain()
        except StoreUnavailable as exc:
            print(f"nothing written: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {written} journal records")
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.nice:
        # Tickets can wait a moment; callers on the same host cannot: webhooks get the CPU first.
        os.nice(args.nice)
    assert s.background is not None
    s.background.ensure_started()
    log.info("ivr worker %s: writing tickets and placing after-hours callbacks", s.writer.consumer)
    stop.wait()
    # The batch being applied is committed whole (and acknowledged) or not at all: give it time.
    s.background.finish(timeout=WORKER_FINISH_SECONDS)
    return 0


WORKER_FINISH_SECONDS = 25.0
"""How long `ivr worker` waits on SIGTERM for the batch it is applying: PostgreSQL statements time out
after 10 s, and a batch is a lease and one transaction. Past it the process exits anyway; the open
transaction dies with its connection (nothing half-written) and its entries go to another writer."""


def add_parser(commands: Any) -> None:
    """Add `ivr worker` to the `ivr` command."""
    worker = commands.add_parser(
        "worker", help="write tickets from the journal to the database (run one or more)"
    )
    worker.add_argument("--drain", action="store_true", help="write what is waiting now, then exit")
    worker.add_argument(
        "--nice",
        type=count,
        default=10,
        help="lower the worker's CPU priority by this much (default 10; 0 keeps it)",
    )
    worker.set_defaults(run=_worker)
