"""the email's design per newsletter: layout, font, story images, the SpamAssassin threshold

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("layout", sa.String(length=16), "digest"),
    ("font", sa.String(length=16), "serif"),
    ("story_images", sa.String(length=16), "thumbnail"),
)


def upgrade() -> None:
    with op.batch_alter_table("newsletter") as batch:
        for name, type_, default in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default=default))
        batch.add_column(
            sa.Column("spam_threshold", sa.Float(), nullable=False, server_default="5.0")
        )


def downgrade() -> None:
    with op.batch_alter_table("newsletter") as batch:
        for name in ("spam_threshold", "story_images", "font", "layout"):
            batch.drop_column(name)
