"""welcome email: standing issues (issue.kind) and each newsletter's welcome settings

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="issue")
        )
    op.create_table(
        "newsletterwelcome",
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("with_latest", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.ForeignKeyConstraint(["newsletter_id"], ["newsletter.id"]),
        sa.PrimaryKeyConstraint("newsletter_id"),
    )


def downgrade() -> None:
    op.drop_table("newsletterwelcome")
    # a standing issue was never sent to the list; the older code would offer to: cancel it
    op.execute("UPDATE issue SET status = 'cancelled' WHERE kind <> 'issue'")
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_column("kind")
