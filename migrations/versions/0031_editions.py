"""editions by language (issue 16, part 4): an issue's translated editions, their frozen emails,
and the newsletter's rule for a missing translation

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-29 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preheader", sa.Text(), nullable=False),
        sa.Column("intro_md", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("section_titles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issue_id", "language"),
    )
    op.create_index("ix_edition_issue_id", "edition", ["issue_id"])
    op.create_table(
        "edition_item",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("blurb", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["edition.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["issueitem.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("edition_id", "item_id"),
    )
    op.create_table(
        "rendered_edition",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("preheader", sa.String(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("compiled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("issue_id", "language"),
    )
    with op.batch_alter_table("newsletter") as batch:
        batch.add_column(
            sa.Column(
                "missing_translation",
                sa.String(length=16),
                nullable=False,
                server_default="fallback",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("newsletter") as batch:
        batch.drop_column("missing_translation")
    op.drop_table("rendered_edition")
    op.drop_table("edition_item")
    op.drop_index("ix_edition_issue_id", table_name="edition")
    op.drop_table("edition")
