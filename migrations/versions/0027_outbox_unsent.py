"""the confirmation outbox gets a partial index on the rows relayed and never sent, for the
beat's re-relay of confirmations whose task was lost (a killed worker)

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_confirmationoutbox_unsent",
        "confirmationoutbox",
        ["relayed_at"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_confirmationoutbox_unsent", table_name="confirmationoutbox")
