"""The digest autopilot's tables (issue 16): a newsletter's sources, its recurring schedule and
drafting rules, and one row per scheduled run it handled.

Like ``models_audience`` they do not import ``newsletter.models`` (which re-exports them), so
foreign keys are named by table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "Autopilot",
    "AutopilotRun",
    "RunOutcome",
    "Source",
    "SourceArticle",
    "SourceKind",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class SourceKind(StrEnum):
    feed = "feed"  # an RSS, Atom or JSON Feed URL, fetched on the beat
    query = "query"  # a library query: articles with a tag, in a section, by an author


class Source(SQLModel, table=True):
    """Where a newsletter's autopilot finds stories: a feed URL, or a query over the library."""

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="newsletter.id", index=True)
    kind: str = Field(sa_type=String(8))  # SourceKind
    url: str = Field(default="", sa_type=String(2000))  # a feed's
    tag: str = Field(default="", sa_type=String(200))  # a query's filters ("": any)
    section: str = Field(default="", sa_type=String(200))
    author: str = Field(default="", sa_type=String(200))
    #: the validators the feed's server last gave, sent back as a conditional GET
    etag: str = Field(default="", sa_type=String(500))
    last_modified: str = Field(default="", sa_type=String(100))
    checked_at: datetime | None = None  # last fetch (304 included)
    changed_at: datetime | None = None  # last fetch that brought a new body
    last_result: str = Field(default="", sa_type=Text)  # "12 items", "not modified", an error
    fetch_minutes: int = 30  # a feed is fetched again this long after its last check
    created_at: datetime = Field(default_factory=utcnow)


class SourceArticle(SQLModel, table=True):
    """An article a feed source brought (a re-fetch finds the same row: the URL is identity)."""

    __tablename__ = "source_article"
    __table_args__ = (UniqueConstraint("source_id", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id", index=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    seen_at: datetime = Field(default_factory=utcnow)


class Autopilot(SQLModel, table=True):
    """A newsletter's recurring schedule and the rules its drafts follow (one per newsletter)."""

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="newsletter.id", unique=True)
    enabled: bool = False
    #: "mon 08:00", "mon,thu 07:30", or a five-field cron expression; in the newsletter's zone
    rule: str = Field(default="mon 08:00", sa_type=String(200))
    lead_hours: int = 12  # the draft is made this long before the run
    #: tag or category -> section title, in the order the sections appear
    sections: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    other_section: str = Field(default="", sa_type=String(200))  # the unmapped ("": left out)
    ordering: str = Field(default="newest", sa_type=String(16))  # newest | priority
    priority_tag: str = Field(default="", sa_type=String(200))
    per_section: int = 5  # at most this many stories per section
    lead: str = Field(default="newest", sa_type=String(16))  # newest | priority
    nothing_new: str = Field(default="skip", sa_type=String(16))  # skip | note
    note_text: str = Field(default="", sa_type=Text)  # the short note's intro
    #: the draft is scheduled for the run by itself (never where the newsletter requires review)
    auto_schedule: bool = False
    lookback_days: int = 7  # with no issue sent yet: stories this recent
    #: a run missed while the beat was down is drafted late if its time passed at most this long
    #: ago (only the latest such run; older ones are recorded as missed)
    catch_up_hours: int = 24
    updated_at: datetime = Field(default_factory=utcnow)


class RunOutcome(StrEnum):
    drafted = "drafted"
    noted = "noted"  # nothing new: a short note was drafted
    skipped = "skipped"  # nothing new: no issue this time
    missed = "missed"  # the beat was down at its draft time and it was not caught up (detail)


class AutopilotRun(SQLModel, table=True):
    """One scheduled run a newsletter's autopilot handled: the unique pair is what keeps two
    beats from drafting two issues for one run."""

    __tablename__ = "autopilot_run"
    __table_args__ = (UniqueConstraint("newsletter_id", "run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="newsletter.id", index=True)
    run_at: datetime  # the run's time, UTC
    outcome: str = Field(sa_type=String(16))  # RunOutcome
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    stories: int = 0
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    notified_at: datetime | None = None  # the editors' notification went out
