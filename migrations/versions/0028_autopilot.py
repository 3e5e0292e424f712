"""the digest autopilot (issue 16): sources, the recurring schedule and its rules, runs

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 04:03:29.976487
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autopilot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("lead_hours", sa.Integer(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("other_section", sa.String(length=200), nullable=False),
        sa.Column("ordering", sa.String(length=16), nullable=False),
        sa.Column("priority_tag", sa.String(length=200), nullable=False),
        sa.Column("per_section", sa.Integer(), nullable=False),
        sa.Column("lead", sa.String(length=16), nullable=False),
        sa.Column("nothing_new", sa.String(length=16), nullable=False),
        sa.Column("note_text", sa.Text(), nullable=False),
        sa.Column("auto_schedule", sa.Boolean(), nullable=False),
        sa.Column("lookback_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["newsletter_id"],
            ["newsletter.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("newsletter_id"),
    )
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("section", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=False),
        sa.Column("last_modified", sa.String(length=100), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["newsletter_id"],
            ["newsletter.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_newsletter_id"), ["newsletter_id"], unique=False
        )

    op.create_table(
        "source_article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article.id"],
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "article_id"),
    )
    with op.batch_alter_table("source_article", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_article_article_id"), ["article_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_source_article_source_id"), ["source_id"], unique=False
        )

    op.create_table(
        "autopilot_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("stories", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issue.id"],
        ),
        sa.ForeignKeyConstraint(
            ["newsletter_id"],
            ["newsletter.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("newsletter_id", "run_at"),
    )
    with op.batch_alter_table("autopilot_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_autopilot_run_newsletter_id"), ["newsletter_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("autopilot_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_autopilot_run_newsletter_id"))

    op.drop_table("autopilot_run")
    with op.batch_alter_table("source_article", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_article_source_id"))
        batch_op.drop_index(batch_op.f("ix_source_article_article_id"))

    op.drop_table("source_article")
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_newsletter_id"))

    op.drop_table("source")
    op.drop_table("autopilot")
