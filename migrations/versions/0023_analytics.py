"""analytics (issue 15) and the per-newsletter relay (issue 17): the newsletter's tracking
switches and relay name, an issue's numbered links, engagement events and their folded tallies

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 01:10:00

Tracking is off by default (``track_clicks``, ``track_opens``); ``relay`` names one of the relays
of the settings ("" for the default). Events keep no IP and no user agent, only the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("newsletter") as batch:
        batch.add_column(
            sa.Column("track_clicks", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("track_opens", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("relay", sa.String(length=64), nullable=False, server_default="")
        )
    op.create_table(
        "issue_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("section", sa.String(length=200), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issue_id", "n"),
    )
    op.create_index("ix_issue_link_issue_id", "issue_link", ["issue_id"])
    op.create_table(
        "engagement_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"]),
        sa.ForeignKeyConstraint(["link_id"], ["issue_link.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_engagement_event_issue_kind", "engagement_event", ["issue_id", "kind", "verdict"]
    )
    op.create_index("ix_engagement_event_subscriber", "engagement_event", ["subscriber_id"])
    op.create_table(
        "engagement_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("uniques", sa.Integer(), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.ForeignKeyConstraint(["link_id"], ["issue_link.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_engagement_tally_issue", "engagement_tally", ["issue_id", "kind", "verdict"]
    )


def downgrade() -> None:
    op.drop_index("ix_engagement_tally_issue", table_name="engagement_tally")
    op.drop_table("engagement_tally")
    op.drop_index("ix_engagement_event_subscriber", table_name="engagement_event")
    op.drop_index("ix_engagement_event_issue_kind", table_name="engagement_event")
    op.drop_table("engagement_event")
    op.drop_index("ix_issue_link_issue_id", table_name="issue_link")
    op.drop_table("issue_link")
    with op.batch_alter_table("newsletter") as batch:
        for name in ("relay", "track_opens", "track_clicks"):
            batch.drop_column(name)
