"""The audience desk's tables: subscriber tags (and, beside them, segments and import jobs).

They do not import ``newsletter.models`` (which re-exports them), so foreign keys are named by
table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["NewsletterWelcome", "SubscriberTag"]


def _now() -> datetime:
    return datetime.now(UTC)


class SubscriberTag(SQLModel, table=True):
    """One tag on one subscriber: a row each, so a segment's "has tag" is an indexed EXISTS and
    tagging a whole segment is one ``INSERT ... SELECT``."""

    __table_args__ = (
        UniqueConstraint("tag", "subscriber_id"),  # its index also serves "who has this tag"
        Index("ix_subscribertag_subscriber_id", "subscriber_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id")
    tag: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=_now)


class NewsletterWelcome(SQLModel, table=True):
    """A newsletter's welcome email: which standing issue (``Issue.kind == "welcome"``) goes to
    a subscriber who confirms, whether it is on, and whether the latest sent issue goes too."""

    newsletter_id: int = Field(foreign_key="newsletter.id", primary_key=True)
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    enabled: bool = False
    with_latest: bool = False  # the latest sent issue goes with the welcome
    updated_at: datetime = Field(default_factory=_now)
