"""Room for outage references: `tickets.reference` holds up to 16 digits (it held 12).

A process that used up its leased reference numbers during a database outage goes on with longer
references of its own (`ivr.tickets.references`), 10 digits at first and more the longer it lasts.
SQLite does not enforce a VARCHAR's length, so only other databases change (copying the table, as
Alembic's batch mode does on SQLite, would fire the foreign keys' ON DELETE SET NULL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "tickets", "reference", type_=sa.String(length=16), existing_type=sa.String(length=12)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "tickets", "reference", type_=sa.String(length=12), existing_type=sa.String(length=16)
        )
