"""a million readers: trigram search on addresses, status indexes in subscriber order, an
index for the dashboard's list health

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 16:00:00

On PostgreSQL only: the pg_trgm extension and a GIN trigram index on subscriber.email, so that
"address contains" (ILIKE '%part%') reads the index instead of every row. SQLite gets nothing
for it (a desk there is small). ``migrations/env.py`` keeps the index out of ``alembic check``
(it is not in the models, being PostgreSQL's alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEX = "ix_subscriber_email_trgm"


def upgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_newsletter_status")
        batch_op.drop_index("ix_subscription_status")
        batch_op.create_index(
            "ix_subscription_newsletter_status", ["newsletter_id", "status", "subscriber_id"]
        )
        batch_op.create_index("ix_subscription_status_subscriber", ["status", "subscriber_id"])
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.create_index("ix_subscriberevent_at_kind", ["at", "kind", "newsletter_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON subscriber "
            "USING gin (email gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
        # the extension stays: other databases objects may use it, and it holds no data
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriberevent_at_kind")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_status_subscriber")
        batch_op.drop_index("ix_subscription_newsletter_status")
        batch_op.create_index("ix_subscription_status", ["status"])
        batch_op.create_index("ix_subscription_newsletter_status", ["newsletter_id", "status"])
