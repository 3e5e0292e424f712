"""roles of editors (per newsletter too) and API tokens; the audit trail

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 13:40:00

Accounts and tokens that exist could do everything before: they become admins.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="admin")
        )
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="admin")
        )
    op.create_table(
        "editornewsletterrole",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["newsletter_id"], ["newsletter.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["editoruser.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "newsletter_id"),
    )
    with op.batch_alter_table("editornewsletterrole", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_editornewsletterrole_user_id"), ["user_id"])
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("newsletter_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditentry_at"), ["at"])
        batch_op.create_index(batch_op.f("ix_auditentry_action"), ["action"])


def downgrade() -> None:
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditentry_action"))
        batch_op.drop_index(batch_op.f("ix_auditentry_at"))
    op.drop_table("auditentry")
    with op.batch_alter_table("editornewsletterrole", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_editornewsletterrole_user_id"))
    op.drop_table("editornewsletterrole")
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.drop_column("role")
    with op.batch_alter_table("editoruser", schema=None) as batch_op:
        batch_op.drop_column("role")
