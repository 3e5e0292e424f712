"""the subscription table loses ix_subscription_subscriber_id: the unique constraint's index on
(subscriber_id, newsletter_id) starts with the same column and answers the same lookups, so the
second index only cost every insert (about a fifth of the index work of a bulk import's
subscriptions)

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 01:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.drop_index("ix_subscription_subscriber_id")


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.create_index("ix_subscription_subscriber_id", ["subscriber_id"], unique=False)
