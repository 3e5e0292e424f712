"""autopilot gaps (issue 16): a feed source's own fetch interval, and how late a run missed
while the beat was down may still be drafted

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source") as batch:
        batch.add_column(
            sa.Column("fetch_minutes", sa.Integer(), nullable=False, server_default="30")
        )
    with op.batch_alter_table("autopilot") as batch:
        batch.add_column(
            sa.Column("catch_up_hours", sa.Integer(), nullable=False, server_default="24")
        )


def downgrade() -> None:
    with op.batch_alter_table("autopilot") as batch:
        batch.drop_column("catch_up_hours")
    with op.batch_alter_table("source") as batch:
        batch.drop_column("fetch_minutes")
