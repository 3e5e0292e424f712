"""editor accounts: two-factor sign-in (TOTP secret, recovery codes)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "editorrecoverycode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["editoruser.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("editorrecoverycode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_editorrecoverycode_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("editorrecoverycode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_editorrecoverycode_user_id"))
    op.drop_table("editorrecoverycode")
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
