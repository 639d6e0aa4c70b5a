"""The incident notice a caller heard before their queue (`TicketChange.incident`): the Today page
counts the callers who heard one and those who hung up after it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        table.add_column(sa.Column("incident", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        table.drop_column("incident")
