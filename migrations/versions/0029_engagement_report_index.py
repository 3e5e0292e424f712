"""engagement_event's report index covers what the report reads: (issue_id, kind, verdict,
subscriber_id, link_id, rule) replaces (issue_id, kind, verdict), so the report's figures
(readers per kind and verdict, per link, per article, the machines' rules) are index-only scans
of the issue's entries instead of a visit to every event row

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-29 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["issue_id", "kind", "verdict", "subscriber_id", "link_id", "rule"]


def upgrade() -> None:
    op.create_index("ix_engagement_event_report", "engagement_event", COLUMNS)
    op.drop_index("ix_engagement_event_issue_kind", table_name="engagement_event")


def downgrade() -> None:
    op.create_index(
        "ix_engagement_event_issue_kind", "engagement_event", ["issue_id", "kind", "verdict"]
    )
    op.drop_index("ix_engagement_event_report", table_name="engagement_event")
