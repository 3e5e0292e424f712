"""review before send: who approved an issue, and comments on issues and items

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 14:00:00

The new issue statuses (in_review, approved) need no schema change: statuses are strings.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_by", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "issuecomment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("issuecomment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuecomment_issue_id"), ["issue_id"])


def downgrade() -> None:
    # issues in review or approved go back to draft: the older code knows no other
    op.execute("UPDATE issue SET status = 'draft' WHERE status IN ('in_review', 'approved')")
    with op.batch_alter_table("issuecomment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuecomment_issue_id"))
    op.drop_table("issuecomment")
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
