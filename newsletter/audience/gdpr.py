"""GDPR requests about one subscriber: export everything we hold, or erase it.

Erasure anonymises the ``Subscriber`` row instead of deleting it: the address becomes
``erased-<id>@invalid`` (a reserved domain nothing is ever sent to), the name and attributes are
emptied, subscriptions, tags, events and clicks/opens (``analytics.retention``) are deleted, and
the delivery rows stay with their SMTP responses blanked (a response can quote the address).
Keeping the rows keeps every sent issue's ledger and counts true, and a send in progress simply
skips the row (the subscriber has no active subscription any more). A SHA-256 of the address
goes on the suppression list, so a later import of an old file does not bring the person back
silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session

from newsletter.analytics import retention
from newsletter.audience.subscribers import (
    erased_address,
    find_subscriber_id,
    is_erased,
    normalise_email,
)
from newsletter.audience.suppression import Reason, suppress
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import (
    Subscriber,
    utcnow,
)
from newsletter.tables import EV, NL, TAG, D, I, S


@dataclass(frozen=True)
class Erasure:
    subscriber_id: int
    email_hash: str
    subscriptions: int  # deleted
    events: int  # deleted
    deliveries: int  # kept, anonymised
    engagement: int = 0  # clicks and opens, deleted

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscriber_id": self.subscriber_id,
            "email_hash": self.email_hash,
            "subscriptions_deleted": self.subscriptions,
            "events_deleted": self.events,
            "deliveries_anonymised": self.deliveries,
            "engagement_events_deleted": self.engagement,
        }


def find_subscriber(session: Session, ref: int | str) -> Subscriber:
    """By id (an int or a string of digits) or by email address."""
    if isinstance(ref, int) or str(ref).strip().isdigit():
        subscriber = session.get(Subscriber, int(ref))
        if subscriber is None:
            raise NotFound(f"no subscriber with id {int(ref)}")
    else:
        try:
            address = normalise_email(str(ref))
        except InvalidInput as exc:
            raise NotFound(f"no subscriber {ref!r} ({exc})") from exc
        found = find_subscriber_id(session, address)
        subscriber = session.get(Subscriber, found) if found is not None else None
    if subscriber is None:
        raise NotFound(f"no subscriber {ref!r}")
    return subscriber


# ---------------------------------------------------------------- export


def export_subscriber(session: Session, ref: int | str) -> dict[str, Any]:
    """Everything about one subscriber, as JSON-ready data."""
    subscriber = find_subscriber(session, ref)
    sid = subscriber.id
    return {
        "exported_at": _iso(utcnow()),
        "subscriber": {
            "id": sid,
            "email": subscriber.email,
            "name": subscriber.name,
            "attributes": subscriber.attributes,
            "created_at": _iso(subscriber.created_at),
        },
        "subscriptions": _rows(session, _subscriptions_query(sid)),
        "events": _rows(session, _events_query(sid)),
        "deliveries": _rows(session, _deliveries_query(sid)),
        "engagement": retention.export(session, sid),  # type: ignore[arg-type]
    }


def _subscriptions_query(sid: int | None) -> Any:
    return (
        select(
            NL.c.slug.label("newsletter"),
            NL.c.name.label("newsletter_name"),
            *(c for c in S.c if c.name not in ("id", "subscriber_id")),
        )
        .select_from(S.join(NL, NL.c.id == S.c.newsletter_id))
        .where(S.c.subscriber_id == sid)
        .order_by(S.c.id)
    )


def _events_query(sid: int | None) -> Any:
    return (
        select(*(c for c in EV.c if c.name != "subscriber_id"))
        .where(EV.c.subscriber_id == sid)
        .order_by(EV.c.at, EV.c.id)
    )


def _deliveries_query(sid: int | None) -> Any:
    return (
        select(
            D.c.issue_id,
            NL.c.slug.label("newsletter"),
            I.c.number.label("issue_number"),
            I.c.title.label("issue_title"),
            D.c.status,
            D.c.attempts,
            D.c.message_id,
            D.c.smtp_response,
            D.c.sent_at,
            D.c.updated_at,
        )
        .select_from(D.join(I, I.c.id == D.c.issue_id).join(NL, NL.c.id == I.c.newsletter_id))
        .where(D.c.subscriber_id == sid)
        .order_by(D.c.id)
    )


def _rows(session: Session, stmt: Any) -> list[dict[str, Any]]:
    return [
        {key: _iso(value) if isinstance(value, datetime) else value for key, value in r.items()}
        for r in session.execute(stmt).mappings().all()
    ]


def _iso(value: datetime) -> str:
    return value.isoformat()


# ---------------------------------------------------------------- erase


def erase_subscriber(session: Session, ref: int | str) -> Erasure:
    """Delete the person's data, keep an anonymous ledger and the address's hash (see above)."""
    subscriber = find_subscriber(session, ref)
    sid = subscriber.id
    assert sid is not None
    digest = suppress(session, subscriber.email, Reason.erased) if not is_erased(subscriber) else ""
    events = session.execute(delete(EV).where(EV.c.subscriber_id == sid))
    engagement = retention.erase(session, sid)  # clicks and opens (the tallies hold no one)
    subscriptions = session.execute(delete(S).where(S.c.subscriber_id == sid))
    session.execute(delete(TAG).where(TAG.c.subscriber_id == sid))
    deliveries = session.execute(
        update(D).where(D.c.subscriber_id == sid).values(smtp_response=None)
    )
    subscriber.email, subscriber.name, subscriber.attributes = erased_address(sid), "", {}
    subscriber.language = subscriber.time_zone = None
    session.add(subscriber)
    session.flush()
    return Erasure(
        subscriber_id=sid,
        email_hash=digest,
        subscriptions=int(subscriptions.rowcount),  # type: ignore[attr-defined]
        events=int(events.rowcount),  # type: ignore[attr-defined]
        deliveries=int(deliveries.rowcount),  # type: ignore[attr-defined]
        engagement=engagement,
    )
