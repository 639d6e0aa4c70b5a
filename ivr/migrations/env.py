"""Alembic environment for the IVR schema.

`ivr.db.Database.upgrade()` hands over its connection in `config.attributes["connection"]`; run by
hand (`alembic -c ivr/migrations/alembic.ini ...`) it connects to `DATABASE_URL` instead.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

import ivr.tickets.models  # noqa: F401  (registers the ticket tables on Base.metadata)
from ivr.config import DEFAULT_DATABASE_URL
from ivr.db import Base, Database, normalise_url

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # A migration is a frozen snapshot: autogenerate must write the plain SQLAlchemy type behind
    # a TypeDecorator, or later edits to application code would change what old migrations do.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        **options,
    )


def _run(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def run_offline() -> None:
    """Write the migration SQL for `DATABASE_URL`'s dialect instead of running it."""
    _configure(url=normalise_url(_database_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate over the connection we were handed, or over a new one to `DATABASE_URL`."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    database = Database(_database_url())
    try:
        with database.engine.connect() as own_connection:
            _run(own_connection)
    finally:
        database.dispose()


# Only the command line has an ini file; the application keeps its own logging setup.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_offline()
else:
    run_online()
