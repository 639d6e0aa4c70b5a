"""Rules versions, what is live, drafts and incidents (`ivr.rules.store`).

`rules_versions` keeps every version of the rules file and prompt catalogs that went live or was
staged as a draft; `rules_state` (one row) says which version is live, which is the draft and which
incident notice is on, with a serial every instance polls; `incidents` keeps every incident notice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rules_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("rules_text", sa.Text(), nullable=False),
        sa.Column("catalogs", sa.JSON(), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_versions")),
    )
    op.create_index("ix_rules_versions_content_sha256", "rules_versions", ["content_sha256"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=True),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_table(
        "rules_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("live_id", sa.Integer(), nullable=True),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_state")),
    )


def downgrade() -> None:
    op.drop_table("rules_state")
    op.drop_table("incidents")
    op.drop_index("ix_rules_versions_content_sha256", table_name="rules_versions")
    op.drop_table("rules_versions")
