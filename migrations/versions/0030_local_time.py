"""send at a local time (issue 16, part 3): an issue's local time, each ledger row's due time

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-29 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issue") as batch:
        batch.add_column(sa.Column("local_time", sa.String(length=5), nullable=True))
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_delivery_issue_status_due", "delivery", ["issue_id", "status", "due_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_issue_status_due", table_name="delivery")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("due_at")
    with op.batch_alter_table("issue") as batch:
        batch.drop_column("local_time")
