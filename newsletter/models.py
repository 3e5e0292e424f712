"""SQLModel tables (their status enums and allowed moves are in ``statuses``, re-exported here).

Statuses are stored as short strings (not database enum types) so migrations stay simple on both
SQLite and PostgreSQL. All timestamps are aware UTC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel

# the enums and their allowed moves, re-exported: every table module imports them from here
from newsletter.statuses import DELIVERY_MOVES as DELIVERY_MOVES
from newsletter.statuses import ISSUE_MOVES as ISSUE_MOVES
from newsletter.statuses import SUBSCRIPTION_MOVES as SUBSCRIPTION_MOVES
from newsletter.statuses import DeliveryStatus as DeliveryStatus
from newsletter.statuses import IssueStatus as IssueStatus
from newsletter.statuses import StatusMoveError as StatusMoveError
from newsletter.statuses import SubscriptionStatus as SubscriptionStatus
from newsletter.statuses import moving as moving
from newsletter.statuses import sources as sources

JSB = JSON().with_variant(JSONB(), "postgresql")  # segments read attributes without re-parsing


def utcnow() -> datetime:
    return datetime.now(UTC)


def address_key(address: str) -> str:
    """An address's identity: SHA-256 hex of it trimmed and lower-cased.

    ``Reader@Example.com`` and ``reader@example.com`` are one subscriber; the suppression list
    keys addresses the same way, so a join on this value finds a suppressed subscriber in SQL.
    """
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def _status(default: str) -> Any:
    return Field(default=default, sa_type=String(16), index=True)


class Newsletter(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_type=String(80), unique=True, index=True)
    name: str
    from_name: str
    from_email: str
    reply_to: str | None = None
    postal_address: str
    #: "about this newsletter": the public pages (sign-up, preferences, archive, feed)
    description: str = Field(default="", sa_type=Text)
    website_url: str = ""
    membership_url: str = ""
    brand_color: str = "#b4121b"
    created_at: datetime = Field(default_factory=utcnow)
    language: str = Field(default="en", sa_type=String(35))  # BCP 47: <html lang>
    time_zone: str = Field(default="UTC", sa_type=String(64))  # IANA name: dates in the email
    logo_url: str = Field(default="", sa_type=String(2000))  # https; shown in the email header
    masthead: str = ""  # one line under the name in the email header
    #: "why you get this": the email footer (not the public pages)
    footer_text: str = Field(default="", sa_type=Text)
    membership_cta: bool = False  # the membership call-to-action is shown in the email
    membership_text: str = ""  # its line of text
    membership_button: str = "Become a member"  # its button (to membership_url)
    #: section titles a new issue starts with
    default_sections: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    requires_review: bool = False  # issues need review before they are sent (issue 13, item 3)
    signup_pitch: str = Field(default="", sa_type=String(200))  # the sign-up box's one line
    #: the email's design (issue 18): digest | alert | letter; serif | sans; thumbnail | none
    layout: str = Field(default="digest", sa_type=String(16))
    font: str = Field(default="serif", sa_type=String(16))
    story_images: str = Field(default="thumbnail", sa_type=String(16))
    spam_threshold: float = 5.0  # a SpamAssassin score at or over this blocks a send
    #: analytics (issue 15), off by default: links rewritten to /r/..., an open pixel
    track_clicks: bool = False
    track_opens: bool = False
    #: the SMTP relay this newsletter's mail goes through, by its name in the relay settings
    #: ("": the default relay or relay group)
    relay: str = Field(default="", sa_type=String(64))
    #: an edition missing a translation (issue 16): fallback to the default's text | block
    missing_translation: str = Field(default="fallback", sa_type=String(16))


class Article(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=String(2000), unique=True, index=True)
    title: str
    summary: str = Field(default="", sa_type=Text)
    bullet: str = Field(default="", sa_type=Text)  # one sentence for the digest's summary list
    body_html: str = Field(default="", sa_type=Text)
    image_url: str | None = None
    image_alt: str | None = None
    image_credit: str | None = None
    author: str | None = None
    section: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Issue(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("newsletter_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="newsletter.id", index=True)
    number: int
    title: str
    subject: str | None = None
    preheader: str = ""
    intro_md: str = Field(default="", sa_type=Text)
    status: str = _status(IssueStatus.draft)
    scheduled_at: datetime | None = None
    send_started_at: datetime | None = None
    sent_at: datetime | None = None
    status_reason: str | None = None
    status_changed_at: datetime | None = None  # last pause/resume/cancel/schedule
    # paused by the circuit breaker with the relay down: when the tick next probes the relay
    # (and resumes the send once it answers); None for every other issue (0022)
    breaker_probe_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: str | None = Field(default=None, sa_type=String(320))  # who approved it, if
    approved_at: datetime | None = None
    kind: str = Field(default="issue", sa_type=String(16))  # issue | welcome (a standing issue)
    segment_id: int | None = Field(default=None, foreign_key="segment.id")  # None: everyone
    # "08:00": each reader gets it at that time in their own zone (sending.local_time); None: now
    local_time: str | None = Field(default=None, sa_type=String(5))


class IssueSection(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    title: str
    position: int


class IssueItem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    section_id: int = Field(foreign_key="issuesection.id", index=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    position: int
    blurb: str | None = Field(default=None, sa_type=Text)


def _email_key_default(context: DefaultExecutionContext) -> str:
    return address_key(str(context.get_current_parameters()["email"]))  # type: ignore[no-untyped-call]


class Subscriber(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True, index=True)
    # one identity whatever the case (``address_key``); filled from ``email`` on every write
    email_hash: str = Field(
        default="",
        sa_type=String(64),
        unique=True,
        index=True,
        sa_column_kwargs={"default": _email_key_default},
    )
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSB, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    language: str | None = Field(default=None, sa_type=String(35))  # BCP 47; None: newsletter's
    time_zone: str | None = Field(default=None, sa_type=String(64))  # IANA; None: newsletter's


@event.listens_for(Subscriber, "before_insert")
@event.listens_for(Subscriber, "before_update")
def _stamp_email_hash(_mapper: Mapper[Any], _conn: Connection, target: Subscriber) -> None:
    target.email_hash = address_key(target.email)


class Subscription(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("subscriber_id", "newsletter_id"),
        # a status filter walks these in subscriber order (keyset pages, capped counts)
        Index("ix_subscription_newsletter_status", "newsletter_id", "status", "subscriber_id"),
        Index("ix_subscription_status_subscriber", "status", "subscriber_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # no index of its own: the unique (subscriber_id, newsletter_id) one starts with it (0027)
    subscriber_id: int = Field(foreign_key="subscriber.id")
    newsletter_id: int = Field(foreign_key="newsletter.id")
    status: str = Field(default=SubscriptionStatus.pending, sa_type=String(16))
    consent_at: datetime | None = None
    consent_ip: str | None = None
    consent_user_agent: str | None = None
    consent_source: str | None = None
    consent_text_version: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    unsubscribed_at: datetime | None = None
    confirmation_sent_at: datetime | None = None  # last confirmation email (resend window)
    soft_bounces: int = 0  # soft bounces in a row; reset by a delivery that got through
    last_bounce_at: datetime | None = None


class Delivery(SQLModel, table=True):
    """One row per (issue, recipient): the ledger that makes delivery exactly-once."""

    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        # claims read (issue, pending) in id order and stop at the batch size
        Index("ix_delivery_issue_status_id", "issue_id", "status", "id"),
        Index("ix_delivery_issue_sent_at", "issue_id", "sent_at"),
        # a local-time send's claims and waves read (issue, pending) by due time (0029)
        Index("ix_delivery_issue_status_due", "issue_id", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id")
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    status: str = Field(default=DeliveryStatus.pending, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    lease_token: str | None = Field(default=None, sa_type=String(32))  # which claim holds it
    message_id: str | None = Field(default=None, sa_type=String(255))
    smtp_response: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = None
    updated_at: datetime | None = None  # when the last attempt's result was recorded
    variant: int | None = None  # the subject test's variant it gets (0030); None: no test
    due_at: datetime | None = None  # a local-time send: not claimed before (0029); None: at once


class IssueCounter(SQLModel, table=True):
    """Ledger rows of an issue by status, kept by database triggers on ``delivery`` (migration
    0020) in the transaction of every change; ``shard`` spreads concurrent writers over a few
    rows (PostgreSQL picks one at random per statement), a reader sums them (``counters``)."""

    __tablename__ = "issue_counter"

    issue_id: int = Field(primary_key=True)  # no foreign key: a cascade may run either way
    status: str = Field(primary_key=True, sa_type=String(16))
    shard: int = Field(primary_key=True, default=0)
    n: int = Field(default=0, sa_type=BigInteger)


class ApiToken(SQLModel, table=True):
    """A bearer token of the admin API; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(100), unique=True, index=True)
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    role: str = Field(default="admin", sa_type=String(20))  # what the token may do
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class SubscriberEvent(SQLModel, table=True):
    """What happened to a subscriber, for consent records and the GDPR export.

    kind: signup | confirm | unsubscribe | resubscribe | preferences | import | bounce |
    complaint | admin. Erasing a subscriber deletes their events with them.
    """

    __table_args__ = (
        Index("ix_subscriberevent_subscriber_at", "subscriber_id", "at"),
        Index("ix_subscriberevent_at_kind", "at", "kind", "newsletter_id"),  # list health
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id")
    newsletter_id: int | None = Field(default=None, foreign_key="newsletter.id")
    kind: str = Field(sa_type=String(32))
    at: datetime = Field(default_factory=utcnow)
    ip: str | None = Field(default=None, sa_type=String(64))
    user_agent: str | None = Field(default=None, sa_type=String(500))
    source: str | None = Field(default=None, sa_type=String(2000))  # form|api|...|a page's URL
    consent_text_version: str | None = Field(default=None, sa_type=String(32))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Suppression(SQLModel, table=True):
    """Addresses that must not come back silently: a SHA-256 of the normalised address only."""

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(sa_type=String(64), unique=True, index=True)
    reason: str = Field(sa_type=String(32))  # erased | bounced | complained
    created_at: datetime = Field(default_factory=utcnow)


# the side tables (editors and webhooks, analytics, the audience desk, the autopilot's, the
# issue's, the relays' health), their __all__ re-exported: import from here
from newsletter.models_access import *  # noqa: E402, F403
from newsletter.models_analytics import *  # noqa: E402, F403
from newsletter.models_audience import *  # noqa: E402, F403
from newsletter.models_autopilot import *  # noqa: E402, F403
from newsletter.models_content import *  # noqa: E402, F403
from newsletter.models_editions import *  # noqa: E402, F403
from newsletter.models_relays import *  # noqa: E402, F403
from newsletter.models_subject import *  # noqa: E402, F403
