"""sign-up box: a newsletter's one-line pitch; an event's source may be the signing-up page's URL

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("newsletter", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("signup_pitch", sa.String(length=200), nullable=False, server_default="")
        )
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.alter_column(
            "source",
            existing_type=sa.String(length=32),
            type_=sa.String(length=2000),
            existing_nullable=True,
        )


def downgrade() -> None:
    # a page's URL does not fit the old column: keep its first 32 characters
    op.execute("UPDATE subscriberevent SET source = substr(source, 1, 32) WHERE length(source) > 32")
    with op.batch_alter_table("subscriberevent", schema=None) as batch_op:
        batch_op.alter_column(
            "source",
            existing_type=sa.String(length=2000),
            type_=sa.String(length=32),
            existing_nullable=True,
        )
    with op.batch_alter_table("newsletter", schema=None) as batch_op:
        batch_op.drop_column("signup_pitch")
