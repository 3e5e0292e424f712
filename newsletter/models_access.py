"""The editors' and the outgoing webhooks' tables: editor accounts, their second factor and roles,
sessions, the audit trail, webhook endpoints and their deliveries.

Like ``models_audience`` they do not import ``newsletter.models`` (which re-exports them), so
foreign keys are named by table; timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "AuditEntry",
    "EditorNewsletterRole",
    "EditorRecoveryCode",
    "EditorSession",
    "EditorUser",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookStatus",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookEndpoint(SQLModel, table=True):
    """A URL that receives signed POSTs for the events it subscribed to (``newsletter.webhooks``).

    The secret signs every POST, so it is stored as it is; the API shows it once, at creation.
    """

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=String(2000))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(sa_type=String(100))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint, and its attempts: pending -> delivered | failed."""

    __table_args__ = (Index("ix_webhookdelivery_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhookendpoint.id", index=True)
    event_type: str = Field(sa_type=String(40))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=WebhookStatus.pending, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class EditorUser(SQLModel, table=True):
    """A person who signs in to the editor UI under /admin (``newsletter admin create-user``).

    ``password_hash`` is an Argon2id hash in PHC form (argon2-cffi): algorithm, parameters and
    salt travel with it, so raising the cost later re-hashes each password at its next sign-in.
    """

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True, index=True)
    name: str = ""
    password_hash: str = Field(sa_type=String(255))
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    disabled_at: datetime | None = None
    #: two-factor sign-in (``newsletter.access.two_factor``): the TOTP secret, Fernet-encrypted;
    #: in force from ``totp_enabled_at``; the last 30-second step whose code was accepted
    totp_secret: str | None = Field(default=None, sa_type=String(255))
    totp_enabled_at: datetime | None = None
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    #: writer | editor | audience | admin (``newsletter.access.roles``); per newsletter it may
    #: differ (``EditorNewsletterRole``)
    role: str = Field(default="admin", sa_type=String(20))


class EditorRecoveryCode(SQLModel, table=True):
    """A one-time recovery code of an editor's second factor, kept as its SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="editoruser.id", index=True)
    code_hash: str = Field(sa_type=String(64))
    used_at: datetime | None = None


class EditorNewsletterRole(SQLModel, table=True):
    """An editor's role for one newsletter, in place of their role elsewhere."""

    __table_args__ = (UniqueConstraint("user_id", "newsletter_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="editoruser.id", index=True)
    newsletter_id: int = Field(foreign_key="newsletter.id")
    role: str = Field(sa_type=String(20))


class AuditEntry(SQLModel, table=True):
    """Who did what, when, to which object, from where: append-only (``access.audit``).

    The actor is named by kind, id and a label kept as it was; a subscriber appears by id only,
    so erasing them leaves the entry and nothing personal in it.
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_kind: str = Field(sa_type=String(10))  # editor | token | cli
    actor_id: int | None = None
    actor_label: str = Field(sa_type=String(320))
    action: str = Field(sa_type=String(60), index=True)
    target_type: str = Field(default="", sa_type=String(30))
    target_id: int | None = None
    newsletter_id: int | None = None
    ip: str | None = Field(default=None, sa_type=String(45))
    detail: str = Field(default="", sa_type=String(500))


class EditorSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries a random token, the table only its SHA-256.

    Signing out (or disabling the user) deletes the row, so a copied cookie stops working at
    once; ``csrf_token`` is the session's anti-forgery token that every form and fetch sends.
    """

    id: str = Field(sa_type=String(64), primary_key=True)  # sha256 hex of the cookie's token
    user_id: int = Field(foreign_key="editoruser.id", index=True)
    csrf_token: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
