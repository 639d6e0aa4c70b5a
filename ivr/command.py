"""What the `ivr` subcommands share: argument types that refuse what makes no sense, the error that
ends a command with one line, and the database a command reads, checked before it is read.

A subcommand raises `CommandError` for what the operator must fix; `ivr.cli.main` prints it on
stderr as one line and exits 1, so no command ends in a traceback for bad input.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

from ivr.db import Database, failure_reason


class CommandError(Exception):
    """What keeps a command from doing its job, in words the operator can act on (exit 1)."""


# --- argument types: argparse turns their ArgumentTypeError into a usage line and exit 2 --------


def _number(kind: Callable[[str], int | float], text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        name = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more (a count of calls, rows, processes)."""
    value = int(_number(int, text))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def count(text: str) -> int:
    """A whole number of 0 or more (retries, a niceness increment)."""
    value = int(_number(int, text))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def seconds(text: str) -> float:
    """A duration of 0 seconds or more."""
    value = float(_number(float, text))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more (got {text})")
    return value


def positive_seconds(text: str) -> float:
    """A duration of more than 0 seconds (something that repeats must take some time)."""
    value = float(_number(float, text))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds (got {text})")
    return value


def port(text: str) -> int:
    """A TCP port to listen on, 1 to 65535 (0: any free one, as the system picks)."""
    value = int(_number(int, text))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535 (got {value})")
    return value


# --- the database a command reads ----------------------------------------------------------------


@contextmanager
def reading_database(url: str, doing: str) -> Iterator[Database]:
    """The database at `url`, once it answers and has the schema the code reads; otherwise
    `CommandError` ("cannot list tickets: the database is without any schema, the code needs 0003:
    run `ivr db upgrade`"). `doing` says what the command was about to do. A database that fails
    while the command reads it is a `CommandError` too. Disposed of afterwards."""
    database = Database(url)
    try:
        problem = database.unready()
        if problem:
            raise CommandError(f"cannot {doing}: {problem}")
        yield database
    except OperationalError as exc:  # it went away after it answered the check
        raise CommandError(f"cannot {doing}: the database failed ({failure_reason(exc)})") from exc
    finally:
        database.dispose()
