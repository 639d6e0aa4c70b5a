"""Tickets for every call, and the webhooks already applied to them.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("called", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("menu_path", sa.JSON(), nullable=False),
        sa.Column("issue", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("call_status", sa.String(length=20), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("recording_url", sa.String(length=500), nullable=True),
        sa.Column("recording_duration", sa.Integer(), nullable=True),
        sa.Column("callback_number", sa.String(length=32), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "satisfaction BETWEEN 1 AND 5", name=op.f("ck_tickets_satisfaction_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_tickets_call_sid")),
        sa.UniqueConstraint("reference", name=op.f("uq_tickets_reference")),
    )
    op.create_index(op.f("ix_tickets_arrived_at"), "tickets", ["arrived_at"])
    op.create_index(op.f("ix_tickets_outcome"), "tickets", ["outcome"])

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


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_webhooks_processed_at"), table_name="processed_webhooks")
    op.drop_table("processed_webhooks")
    op.drop_index(op.f("ix_tickets_outcome"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_arrived_at"), table_name="tickets")
    op.drop_table("tickets")
