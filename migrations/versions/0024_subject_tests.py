"""subject tests (issue 15, item 4): an issue's subject variants and the pick; the variant each
ledger row gets

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 01:20:00

``delivery.variant`` is NULL for every row of an issue without a test (all rows before this).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("variant", sa.Integer(), nullable=True))
    op.create_table(
        "subject_test",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("wait_seconds", sa.Integer(), nullable=False),
        sa.Column("decide_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.PrimaryKeyConstraint("issue_id"),
    )


def downgrade() -> None:
    op.drop_table("subject_test")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("variant")
