"""The ticket journal: applied journal records, leased reference blocks, events keyed by their record.

Webhooks no longer write tickets; a writer folds journal records into them (`ivr.writer`).
`processed_webhooks` goes: a record's own id now makes a retried webhook count once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_changes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_changes")),
    )
    op.create_index("ix_ticket_changes_call_sid_at", "ticket_changes", ["call_sid", "at"])
    op.create_table(
        "reference_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_blocks")),
    )
    with op.batch_alter_table("queue_events") as batch:
        batch.add_column(sa.Column("change_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("change_index", sa.Integer(), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_queue_events_change_id"), ["change_id", "change_index"]
        )
    op.drop_index(op.f("ix_processed_webhooks_processed_at"), table_name="processed_webhooks")
    op.drop_table("processed_webhooks")


def downgrade() -> None:
    op.create_table(
        "processed_webhooks",
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_processed_webhooks")),
    )
    op.create_index(
        op.f("ix_processed_webhooks_processed_at"), "processed_webhooks", ["processed_at"]
    )
    with op.batch_alter_table("queue_events") as batch:
        batch.drop_constraint(op.f("uq_queue_events_change_id"), type_="unique")
        batch.drop_column("change_index")
        batch.drop_column("change_id")
    op.drop_table("reference_blocks")
    op.drop_index("ix_ticket_changes_call_sid_at", table_name="ticket_changes")
    op.drop_table("ticket_changes")
