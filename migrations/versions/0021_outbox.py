"""the outbox of confirmation emails: written with the sign-up, relayed to the queue, sent once

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmationoutbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter_ids", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=2000), nullable=False),
        sa.Column("consent_text_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("send_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_token", sa.String(length=32), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("confirmationoutbox", schema=None) as batch_op:
        batch_op.create_index("ix_confirmationoutbox_subscriber_id", ["subscriber_id"])
        batch_op.create_index(
            "ix_confirmationoutbox_relayed_next", ["relayed_at", "next_attempt_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("confirmationoutbox", schema=None) as batch_op:
        batch_op.drop_index("ix_confirmationoutbox_relayed_next")
        batch_op.drop_index("ix_confirmationoutbox_subscriber_id")
    op.drop_table("confirmationoutbox")
