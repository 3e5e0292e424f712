"""segments: saved subscriber filters, the segment an issue is sent to; attributes as JSONB

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # segments read attributes row by row
        op.alter_column(
            "subscriber",
            "attributes",
            type_=postgresql.JSONB(),
            existing_nullable=False,
            postgresql_using="attributes::jsonb",
        )
    op.create_table(
        "segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["newsletter_id"], ["newsletter.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.create_index("ix_segment_newsletter_id", ["newsletter_id"])
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_issue_segment_id_segment", "segment", ["segment_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_constraint("fk_issue_segment_id_segment", type_="foreignkey")
        batch_op.drop_column("segment_id")
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_newsletter_id")
    op.drop_table("segment")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "subscriber",
            "attributes",
            type_=sa.JSON(),
            existing_nullable=False,
            postgresql_using="attributes::json",
        )
