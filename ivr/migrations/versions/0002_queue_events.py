"""Queue events, one row per event like Asterisk's queue_log, for reports and a call's history.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_queue_events_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_events")),
    )
    op.create_index(op.f("ix_queue_events_call_sid"), "queue_events", ["call_sid"])
    op.create_index(op.f("ix_queue_events_ticket_id"), "queue_events", ["ticket_id"])
    op.create_index("ix_queue_events_queue_at", "queue_events", ["queue", "at"])
    op.create_index("ix_queue_events_event_at", "queue_events", ["event", "at"])


def downgrade() -> None:
    op.drop_index("ix_queue_events_event_at", table_name="queue_events")
    op.drop_index("ix_queue_events_queue_at", table_name="queue_events")
    op.drop_index(op.f("ix_queue_events_ticket_id"), table_name="queue_events")
    op.drop_index(op.f("ix_queue_events_call_sid"), table_name="queue_events")
    op.drop_table("queue_events")
