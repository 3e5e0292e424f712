"""The subscriber event record: what happened to a subscriber, for consent and the GDPR export.

The public life cycle and the preference centre add their events here; the import, the bounce
path and the admin write theirs in bulk (``newsletter.tables.EV``) with the same columns.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from newsletter.models import SubscriberEvent, utcnow


class EventKind(StrEnum):
    signup = "signup"
    confirm = "confirm"
    resubscribe = "resubscribe"
    unsubscribe = "unsubscribe"
    preferences = "preferences"


def record_event(
    session: Session,
    *,
    subscriber_id: int,
    kind: str,
    newsletter_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    source: str | None = None,
    consent_text_version: str | None = None,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one event (IP and user agent cut to their columns' lengths)."""
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber_id,
            newsletter_id=newsletter_id,
            kind=kind,
            at=at or utcnow(),
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:500] if user_agent else None,
            source=source,
            consent_text_version=consent_text_version,
            detail=detail or {},
        )
    )
