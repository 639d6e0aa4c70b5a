"""The `ivr` command: run the service and its ticket writer, check a rules file, manage the database
and the agents' PINs."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from ivr import logs
from ivr.cli import agents, check, db, serve, worker
from ivr.command import CommandError


def _version() -> str:
    """The installed package's version (pyproject.toml's, as the installer recorded it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ivr")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: the package is not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ivr {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    from ivr.admin.cli import add_parser as add_admins
    from ivr.diagram import add_parser as add_diagram
    from ivr.exchange.cli import add_parser as add_exchange
    from ivr.rules.cli import add_parser as add_rules
    from ivr.simulator.cli import add_parser as add_simulate
    from ivr.tickets.cli import add_parser as add_tickets
    from ivr.tickets.replay import add_parser as add_journal

    # In this order in `ivr --help`.
    for add_parser in (
        check.add_parser,
        serve.add_parser,
        worker.add_parser,
        add_simulate,
        add_tickets,
        add_journal,
        add_diagram,
        add_admins,
        add_exchange,
        add_rules,
        db.add_parser,
        agents.add_parser,
    ):
        add_parser(commands)
    return parser


EXIT_READER_GONE = 128 + signal.SIGPIPE
"""The status of a command whose reader went away (`ivr tickets list | head`): what the shell
reports for a program that SIGPIPE ended, as `cat` and `grep` end there."""


def main(argv: Sequence[str] | None = None) -> int:
    """`ivr`: run the subcommand; its exit status."""
    logs.configure("text")  # `serve` and `worker` switch to IVR_LOG_FORMAT once it is read
    args = build_parser().parse_args(argv)
    try:
        result = _run(args)
        sys.stdout.flush()  # a reader gone by now is found here, not in Python's flush at exit
    except BrokenPipeError:
        # Nobody reads the rest: stop without a traceback. Python flushes stdout once more at
        # exit, which would fail again, so stdout now points at /dev/null (Python's own advice,
        # "Note on SIGPIPE" in the signal module's documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_READER_GONE
    return result


def _run(args: argparse.Namespace) -> int:
    try:
        result: int = args.run(args)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return 1
    return result
