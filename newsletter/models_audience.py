"""The audience desk's tables: subscriber tags (and, beside them, segments and import jobs).

They do not import ``newsletter.models`` (which re-exports them), so foreign keys are named by
table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["ImportJob", "ImportUpload", "SubscriberTag"]


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


class ImportJob(SQLModel, table=True):
    """A CSV import: uploaded (``draft``, while the editor looks at the preview), ``queued``,
    ``running`` (with its progress), then ``done`` (with the report) or ``failed``. The file is
    an ``ImportUpload`` row, so a worker in another container reads it from the database."""

    __table_args__ = (Index("ix_importjob_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="draft", sa_type=String(16))
    filename: str = Field(default="", sa_type=String(255))
    created_by: str = Field(default="", sa_type=String(255))
    size_bytes: int = 0
    total_rows: int = 0  # data rows in the file (lines after the header, an estimate)
    processed_rows: int = 0
    processed_bytes: int = 0
    columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    newsletters: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    existing: str = Field(default="keep", sa_type=String(16))  # keep or overwrite
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    failure: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ImportUpload(SQLModel, table=True):
    """The uploaded file of an import job, kept until the import finished."""

    job_id: int = Field(foreign_key="importjob.id", primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
