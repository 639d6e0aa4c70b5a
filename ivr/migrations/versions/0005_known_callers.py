"""Known callers: the exchange account, how and when the caller was verified, when their account was
locked, and the code a callback we place opens with (`ivr.exchange`, `TicketChange`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("account", sa.String(length=128)),
    ("verified_by", sa.String(length=8)),
    ("verified_at", sa.DateTime(timezone=True)),
    ("locked_at", sa.DateTime(timezone=True)),
    ("callback_code", sa.String(length=8)),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        for name, type_ in _COLUMNS:
            table.add_column(sa.Column(name, type_, nullable=True))
    op.create_index(op.f("ix_tickets_account"), "tickets", ["account"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_account"), table_name="tickets")
    with op.batch_alter_table("tickets") as table:
        for name, _ in reversed(_COLUMNS):
            table.drop_column(name)
