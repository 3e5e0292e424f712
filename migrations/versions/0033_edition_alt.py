"""an edition's image alt text per story (issue 16 gap): the picture described in the edition's
language, beside the headline and blurb overrides

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edition_item") as batch:
        batch.add_column(sa.Column("image_alt", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("edition_item") as batch:
        batch.drop_column("image_alt")
