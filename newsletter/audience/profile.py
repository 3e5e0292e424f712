"""One subscriber's whole story, read in a few statements: who they are, what they hold, what
happened to them and what we sent them.

What the subscriber page, ``GET /api/subscribers/{id}/profile`` and ``newsletter subscribers
show`` print. Every event says who acted (``actor_of``): the reader themselves through a public
page or link, an editor, an API token or the CLI (named in the event's ``detail["by"]``), the
import, or the bounce and complaint processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from newsletter.audience.gdpr import find_subscriber
from newsletter.audience.subscribers import is_erased
from newsletter.models import Subscriber
from newsletter.tables import EV, NL, TAG, D, I, S

__all__ = [
    "DELIVERIES",
    "EVENTS",
    "LABELS",
    "DeliveryRow",
    "EventRow",
    "Profile",
    "SubscriptionRow",
    "actor_of",
    "describe",
    "load",
]

#: how many of the newest events and deliveries the story shows
EVENTS, DELIVERIES = 200, 20

#: who acts, by an event's source, when the event does not name its actor
_BY_SOURCE = {
    "form": "the subscriber",
    "api": "the subscriber",  # the public JSON sign-up
    "link": "the subscriber",
    "preferences": "the subscriber",
    "one-click": "the subscriber (one-click unsubscribe)",
    "unsubscribe-page": "the subscriber",
    "seed": "seed",
    "import": "import",
    "bounce": "bounce processing",
    "dsn": "bounce processing",
    "arf": "complaint processing",
    "mailto": "the subscriber (mailto unsubscribe)",
}
_BY_KIND = {"bounce": "bounce processing", "complaint": "complaint processing"}

#: what each kind of event reads as, in the UI and the CLI
LABELS = {
    "signup": "signed up",
    "confirm": "confirmed",
    "resubscribe": "subscribed again",
    "unsubscribe": "unsubscribed",
    "preferences": "preferences changed",
    "import": "imported",
    "bounce": "bounced",
    "complaint": "complained (spam report)",
    "admin": "status set",
    "edit": "details edited",
    "tag": "tags changed",
    "admin-subscribe": "subscribed, consent recorded by an editor",
    "confirmation-resent": "confirmation email sent again",
    "export": "data exported (GDPR)",
    "erase": "erased (GDPR)",
}
_DETAIL_SKIP = frozenset({"by"})


@dataclass(frozen=True)
class SubscriptionRow:
    newsletter_id: int
    newsletter: str  # slug
    newsletter_name: str
    status: str
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str | None
    consent_text_version: str | None
    created_at: datetime
    updated_at: datetime
    unsubscribed_at: datetime | None
    confirmation_sent_at: datetime | None
    soft_bounces: int
    last_bounce_at: datetime | None


@dataclass(frozen=True)
class EventRow:
    id: int
    kind: str
    at: datetime
    newsletter: str | None  # slug
    source: str | None
    ip: str | None
    consent_text_version: str | None
    actor: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class DeliveryRow:
    issue_id: int
    newsletter: str
    issue_number: int
    issue_title: str
    status: str
    attempts: int
    smtp_response: str | None
    sent_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Profile:
    subscriber: Subscriber
    erased: bool
    subscriptions: list[SubscriptionRow]
    tags: list[str]
    events: list[EventRow]  # newest first
    deliveries: list[DeliveryRow]  # newest first

    @property
    def id(self) -> int:
        assert self.subscriber.id is not None
        return self.subscriber.id

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601)."""
        person = self.subscriber
        data: dict[str, Any] = _jsonable(
            {
                "id": self.id,
                "email": person.email,
                "name": person.name,
                "attributes": person.attributes,
                "language": person.language,
                "time_zone": person.time_zone,
                "created_at": person.created_at,
                "erased": self.erased,
                "tags": self.tags,
                "subscriptions": [vars(s) for s in self.subscriptions],
                "events": [vars(e) for e in self.events],
                "deliveries": [vars(d) for d in self.deliveries],
            }
        )
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def actor_of(kind: str, source: str | None, detail: dict[str, Any]) -> str:
    """Who caused an event: the actor it names, else what its kind and source say."""
    named = detail.get("by") if isinstance(detail, dict) else None
    if isinstance(named, str) and named:
        return named
    if kind in _BY_KIND:
        return _BY_KIND[kind]
    return _BY_SOURCE.get(source or "", source or "system")


def describe(detail: dict[str, Any]) -> str:
    """An event's detail in one line: "from pending to active; reason: ..."."""
    parts = []
    if "status" in detail:
        before = detail.get("from")
        parts.append(f"{before} → {detail['status']}" if before else f"→ {detail['status']}")
    for key, value in detail.items():
        if key in _DETAIL_SKIP or key in ("status", "from") or value in (None, "", []):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def load(session: Session, ref: int | str, *, events: int = EVENTS) -> Profile:
    """The story of the subscriber ``ref`` (an id or an address); NotFound if there is none."""
    subscriber = find_subscriber(session, ref)
    sid = subscriber.id
    assert sid is not None
    return Profile(
        subscriber=subscriber,
        erased=is_erased(subscriber),
        subscriptions=_subscriptions(session, sid),
        tags=tags_of(session, sid),
        events=_events(session, sid, events),
        deliveries=_deliveries(session, sid),
    )


def tags_of(session: Session, subscriber_id: int) -> list[str]:
    stmt = select(TAG.c.tag).where(TAG.c.subscriber_id == subscriber_id).order_by(TAG.c.tag)
    return [str(t) for t in session.execute(stmt).scalars()]


def _subscriptions(session: Session, sid: int) -> list[SubscriptionRow]:
    stmt = (
        select(
            S.c.newsletter_id,
            NL.c.slug.label("newsletter"),
            NL.c.name.label("newsletter_name"),
            *(
                S.c[name]
                for name in (
                    "status",
                    "consent_at",
                    "consent_ip",
                    "consent_source",
                    "consent_text_version",
                    "created_at",
                    "updated_at",
                    "unsubscribed_at",
                    "confirmation_sent_at",
                    "soft_bounces",
                    "last_bounce_at",
                )
            ),
        )
        .select_from(S.join(NL, NL.c.id == S.c.newsletter_id))
        .where(S.c.subscriber_id == sid)
        .order_by(NL.c.name, S.c.id)
    )
    return [SubscriptionRow(**row) for row in session.execute(stmt).mappings()]


def _events(session: Session, sid: int, limit: int) -> list[EventRow]:
    stmt = (
        select(
            EV.c.id,
            EV.c.kind,
            EV.c.at,
            NL.c.slug.label("newsletter"),
            EV.c.source,
            EV.c.ip,
            EV.c.consent_text_version,
            EV.c.detail,
        )
        .select_from(EV.outerjoin(NL, NL.c.id == EV.c.newsletter_id))
        .where(EV.c.subscriber_id == sid)
        .order_by(EV.c.at.desc(), EV.c.id.desc())
        .limit(limit)
    )
    rows = []
    for row in session.execute(stmt).mappings():
        detail = dict(row["detail"] or {})
        rows.append(
            EventRow(
                **{**row, "detail": detail}, actor=actor_of(row["kind"], row["source"], detail)
            )
        )
    return rows


def _deliveries(session: Session, sid: int) -> list[DeliveryRow]:
    stmt = (
        select(
            D.c.issue_id,
            NL.c.slug.label("newsletter"),
            I.c.number.label("issue_number"),
            I.c.title.label("issue_title"),
            D.c.status,
            D.c.attempts,
            D.c.smtp_response,
            D.c.sent_at,
            D.c.updated_at,
        )
        .select_from(D.join(I, I.c.id == D.c.issue_id).join(NL, NL.c.id == I.c.newsletter_id))
        .where(D.c.subscriber_id == sid)
        .order_by(D.c.id.desc())
        .limit(DELIVERIES)
    )
    return [DeliveryRow(**row) for row in session.execute(stmt).mappings()]
