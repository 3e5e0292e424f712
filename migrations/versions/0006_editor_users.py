"""editor UI: editor accounts and their sign-in sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "editoruser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_editoruser_email"), ["email"], unique=True)
    op.create_table(
        "editorsession",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["editoruser.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("editorsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_editorsession_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("editorsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_editorsession_user_id"))
    op.drop_table("editorsession")
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_editoruser_email"))
    op.drop_table("editoruser")
