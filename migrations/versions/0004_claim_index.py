"""claim index: (issue_id, status, id), so a claim reads its batch in order and stops

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 23:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_issue_status_id", ["issue_id", "status", "id"])
        batch_op.drop_index("ix_delivery_issue_status")


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_issue_status", ["issue_id", "status"])
        batch_op.drop_index("ix_delivery_issue_status_id")
