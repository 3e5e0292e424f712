"""provider webhooks: bounce receipts (replayed events applied once; complaints per issue)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bouncereceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key"),
    )
    with op.batch_alter_table("bouncereceipt", schema=None) as batch_op:
        batch_op.create_index("ix_bouncereceipt_issue_kind", ["issue_id", "kind"])
        batch_op.create_index("ix_bouncereceipt_source_kind", ["source", "kind"])


def downgrade() -> None:
    with op.batch_alter_table("bouncereceipt", schema=None) as batch_op:
        batch_op.drop_index("ix_bouncereceipt_source_kind")
        batch_op.drop_index("ix_bouncereceipt_issue_kind")
    op.drop_table("bouncereceipt")
