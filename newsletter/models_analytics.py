"""Analytics tables (issue 15): an issue's numbered links, what readers did with them, and the
counts kept once the retention period has passed.

Privacy by construction: an event stores who (a subscriber id, erased with the subscriber), what
(a click on one of the issue's links, or an open), when, and the verdict "human" or "machine" with
the rule that decided it; never an IP address or a user agent. After the retention period an
issue's events are folded into ``EngagementTally`` rows without any subscriber id.

Like ``models_audience`` they do not import ``newsletter.models`` (which re-exports them), so
foreign keys are named by table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "EngagementEvent",
    "EngagementKind",
    "EngagementTally",
    "IssueLink",
    "LinkKind",
    "Verdict",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class EngagementKind(StrEnum):
    click = "click"
    open = "open"


class Verdict(StrEnum):
    human = "human"
    machine = "machine"


class LinkKind(StrEnum):
    """What a link of the email is: the story links (headline, image, "Read more", a brief
    bullet) carry the article, its section and its place in the issue."""

    headline = "headline"
    image = "image"
    read_more = "read_more"
    brief = "brief"  # a bullet of "This week in brief"
    intro = "intro"  # a link in the issue's intro text
    other = "other"  # masthead, logo, membership button, any other link
    trap = "trap"  # hidden from people: only a machine follows it


class IssueLink(SQLModel, table=True):
    """A link of an issue's compiled email, numbered in the order it appears (``n`` from 1).

    Written once per issue when tracking rewrites the links at compile time; the redirect
    ``/r/...`` answers only with the URL of a link of the token's issue (never an open redirect).
    Unsubscribe, preferences and archive links are never rewritten, so never listed here.
    """

    __tablename__ = "issue_link"
    __table_args__ = (UniqueConstraint("issue_id", "n"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    n: int  # the link's number within the issue (1, 2, ... in the HTML's order)
    url: str = Field(sa_type=Text)
    kind: str = Field(default=LinkKind.other, sa_type=String(16))
    article_id: int | None = Field(default=None, foreign_key="article.id")
    section: str | None = Field(default=None, sa_type=String(200))  # the section's title
    position: int | None = None  # the story's place in the issue (1 = the lead story)


class EngagementEvent(SQLModel, table=True):
    """A click or an open by one recipient of one issue, with its verdict (no IP, no UA)."""

    __tablename__ = "engagement_event"
    __table_args__ = (
        # covers the report's reads (0027): its figures are index-only scans of one issue
        Index(
            "ix_engagement_event_report",
            "issue_id",
            "kind",
            "verdict",
            "subscriber_id",
            "link_id",
            "rule",
        ),
        Index("ix_engagement_event_subscriber", "subscriber_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id")
    subscriber_id: int = Field(foreign_key="subscriber.id")  # GDPR erase deletes the rows
    link_id: int | None = Field(default=None, foreign_key="issue_link.id")  # None: an open
    kind: str = Field(sa_type=String(8))  # EngagementKind
    verdict: str = Field(sa_type=String(8))  # Verdict
    rule: str = Field(default="", sa_type=String(40))  # the rule that decided the verdict
    at: datetime = Field(default_factory=utcnow)
    variant: int | None = None  # the subject-test variant the recipient got (None: no test)


class EngagementTally(SQLModel, table=True):
    """An issue's events after the retention period, counted without subscriber ids: per link
    (``link_id``; None for opens, and for an issue-wide row) and kind and verdict, the events and
    the distinct recipients as they were when the issue's events were folded."""

    __tablename__ = "engagement_tally"
    __table_args__ = (Index("ix_engagement_tally_issue", "issue_id", "kind", "verdict"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id")
    link_id: int | None = Field(default=None, foreign_key="issue_link.id")
    kind: str = Field(sa_type=String(8))
    verdict: str = Field(sa_type=String(8))
    variant: int | None = None
    events: int = 0
    uniques: int = 0  # distinct recipients
    folded_at: datetime = Field(default_factory=utcnow)
