"""The audience desk's tables: subscriber tags (and, beside them, segments and import jobs).

They do not import ``newsletter.models`` (which re-exports them), so foreign keys are named by
table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["Segment", "SubscriberTag"]


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


class Segment(SQLModel, table=True):
    """A saved filter over subscribers (``audience.segment_rules``): its rules are JSON, compiled
    to one SQL statement whenever it is counted, tagged or sent to. ``newsletter_id`` None: a
    segment of any newsletter's subscribers."""

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int | None = Field(default=None, foreign_key="newsletter.id", index=True)
    name: str = Field(sa_type=String(200))
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    created_by: str = Field(default="", sa_type=String(320))
