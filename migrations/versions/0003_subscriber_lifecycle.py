"""subscriber lifecycle: confirmation window, soft bounces, events, suppression list

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 22:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmation_sent_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_bounce_at", sa.DateTime(timezone=True)))
    op.create_table(
        "subscriberevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("consent_text_version", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["newsletter_id"], ["newsletter.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscriberevent_subscriber_at", ["subscriber_id", "at"], unique=False
        )
    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suppression_email_hash"), ["email_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppression_email_hash"))
    op.drop_table("suppression")
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriberevent_subscriber_at")
    op.drop_table("subscriberevent")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("last_bounce_at")
        batch_op.drop_column("soft_bounces")
        batch_op.drop_column("confirmation_sent_at")
