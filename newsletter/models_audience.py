"""The audience desk's tables: subscriber tags, bounce receipts, segments, import jobs, and the
outbox of confirmation emails.

They do not import ``newsletter.models`` (which re-exports them), so foreign keys are named by
table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

__all__ = [
    "BounceReceipt",
    "ConfirmationOutbox",
    "ImportJob",
    "ImportUpload",
    "NewsletterWelcome",
    "Segment",
    "SubscriberTag",
]


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


class BounceReceipt(SQLModel, table=True):
    """One bounce or complaint received from a provider's webhook (or an ARF complaint).

    ``event_key`` (the provider's own event id, prefixed with the provider) is unique, so an
    event delivered twice is applied once; ``issue_id`` is the send a complaint is counted
    against by the complaint-rate guardrail. Only ids: nothing personal is kept here.
    """

    __table_args__ = (
        Index("ix_bouncereceipt_issue_kind", "issue_id", "kind"),
        Index("ix_bouncereceipt_source_kind", "source", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(sa_type=String(255), unique=True)
    source: str = Field(sa_type=String(16))  # ses | postmark | sendgrid | mailgun | generic | arf
    kind: str = Field(sa_type=String(16))  # hard | soft | complaint; guard: a one-time token
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    subscriber_id: int | None = None  # no foreign key: an id, like the audit trail's
    received_at: datetime = Field(default_factory=_now)


class NewsletterWelcome(SQLModel, table=True):
    """A newsletter's welcome email: which standing issue (``Issue.kind == "welcome"``) goes to
    a subscriber who confirms, whether it is on, and whether the latest sent issue goes too."""

    newsletter_id: int = Field(foreign_key="newsletter.id", primary_key=True)
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    enabled: bool = False
    with_latest: bool = False  # the latest sent issue goes with the welcome
    updated_at: datetime = Field(default_factory=_now)


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
    #: runs started (a worker that went away leaves its job to be started again: ``import_reaper``)
    attempts: int = 0
    #: the running job's last sign of life (its claim, each chunk's progress)
    heartbeat_at: datetime | None = None


class ImportUpload(SQLModel, table=True):
    """The uploaded file of an import job, kept until the import finished."""

    job_id: int = Field(foreign_key="importjob.id", primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ConfirmationOutbox(SQLModel, table=True):
    """One confirmation email to send, written in the transaction of the sign-up that made it due
    (``audience.outbox``): relayed to the queue at once, else by the beat; sent once.

    ``next_attempt_at``: when the beat may relay it (a grace for the web app's own try, then a
    lease while a beat relays it); ``send_lease_until`` and ``send_token``: the task that is
    sending it; ``sent_at``: handed over (or nothing was left to confirm), never sent again.
    """

    __table_args__ = (
        Index("ix_confirmationoutbox_relayed_next", "relayed_at", "next_attempt_at"),
        # the beat's look for rows relayed and never sent (``outbox.requeue_stale``)
        Index(
            "ix_confirmationoutbox_unsent",
            "relayed_at",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    newsletter_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(sa_type=String(2000))  # form|api|admin|a page's URL, as on the event
    consent_text_version: str = Field(sa_type=String(32))
    created_at: datetime = Field(default_factory=_now)
    next_attempt_at: datetime = Field(default_factory=_now)
    relayed_at: datetime | None = None
    attempts: int = 0  # relays tried (the web app's and the beat's)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    send_lease_until: datetime | None = None
    send_token: str | None = Field(default=None, sa_type=String(32))
    sent_at: datetime | None = None
