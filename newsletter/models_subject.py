"""An issue's subject test (issue 15, item 4): the subjects tried on a sample, and the pick.

Like ``models_content`` it does not import ``newsletter.models`` (which re-exports it), so the
foreign key is named by table; timestamps are aware UTC like every other table's. Which variant
each recipient got is the ledger's ``Delivery.variant`` (1..k; the rest get the winner's number
when it is picked).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

__all__ = ["SubjectTest"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class SubjectTest(SQLModel, table=True):
    """Two to four subjects, each sent to ``share`` percent of the recipients; after ``wait``
    the one with the highest rate of unique human clickers (or openers) goes to the rest."""

    __tablename__ = "subject_test"

    issue_id: int = Field(foreign_key="issue.id", primary_key=True)
    #: [{"subject": str, "share": int percent}], variant n is the n-th (from 1)
    variants: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    metric: str = Field(default="clicks", sa_type=String(8))  # clicks | opens
    wait_seconds: int
    decide_at: datetime | None = None  # set when the ledger is filled: fill time + wait
    winner: int | None = None  # the variant picked (1..k)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, sa_type=String(320))  # "the tick" or an editor
    #: each variant's figures when it was picked: [{"variant", "recipients", "sent", "uniques"}]
    figures: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reason: str | None = Field(default=None, sa_type=Text)  # why the winner won, in words
    created_at: datetime = Field(default_factory=utcnow)
