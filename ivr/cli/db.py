"""`ivr db`: the database schema (`ivr db upgrade`)."""

from __future__ import annotations

import argparse
from typing import Any

from ivr.command import CommandError
from ivr.config import Settings


def _upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.db import Database, failure_reason

    settings = Settings.from_env()
    database = Database(settings.database_url)
    try:
        database.upgrade()
        print(f"database at revision {database.current_revision()}")
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot upgrade the database schema ({failure_reason(exc)})") from exc
    finally:
        database.dispose()
    return 0


def add_parser(commands: Any) -> None:
    """Add `ivr db` and its subcommands to the `ivr` command."""
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="create or upgrade the schema (Alembic)")
    upgrade.set_defaults(run=_upgrade)
