"""An issue's side tables: reviewers' comments and the frozen, compiled email.

Like ``models_audience`` they do not import ``newsletter.models`` (which re-exports them), so
foreign keys are named by table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

__all__ = ["IssueComment", "RenderedIssue"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class IssueComment(SQLModel, table=True):
    """A reviewer's (or writer's) comment on an issue, or on one of its items."""

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    item_id: int | None = None  # no foreign key: the comment outlives a removed item
    author: str = Field(sa_type=String(320))
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)


class RenderedIssue(SQLModel, table=True):
    """The frozen email of an issue: what every worker personalises and the archive shows."""

    issue_id: int = Field(foreign_key="issue.id", primary_key=True)
    subject: str
    preheader: str = ""
    html: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    compiled_at: datetime = Field(default_factory=utcnow)
