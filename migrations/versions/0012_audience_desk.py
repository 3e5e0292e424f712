"""audience desk: subscriber language and time zone, subscriber tags

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.create_table(
        "subscribertag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tag", "subscriber_id"),
    )
    with op.batch_alter_table("subscribertag", schema=None) as batch_op:
        batch_op.create_index("ix_subscribertag_subscriber_id", ["subscriber_id"])


def downgrade() -> None:
    with op.batch_alter_table("subscribertag", schema=None) as batch_op:
        batch_op.drop_index("ix_subscribertag_subscriber_id")
    op.drop_table("subscribertag")
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
        batch_op.drop_column("language")
