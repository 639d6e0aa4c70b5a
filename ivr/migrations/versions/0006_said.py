"""What a caller said at a menu that listens (`ivr.speech`): the words (long digit runs masked),
where they led, and whether the line asked once before following them (`TicketChange.said`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("said", sa.String(length=200)),
    ("said_to", sa.String(length=64)),
    ("said_checked", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        for name, type_ in _COLUMNS:
            table.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        for name, _ in reversed(_COLUMNS):
            table.drop_column(name)
