"""Retention for `ticket_changes`: the ids of pruned records, per call (`pruned_calls`), and an index
on `ticket_changes.at` so that the oldest records are found without reading the rest
(`ivr.tickets.retention`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pruned_calls",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_pruned_calls")),
    )
    op.create_index("ix_ticket_changes_at", "ticket_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_changes_at", table_name="ticket_changes")
    op.drop_table("pruned_calls")
