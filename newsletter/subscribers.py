"""Subscribers and their subscriptions: add, list, status changes."""

from __future__ import annotations

from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, func, select

from newsletter.editor import get_newsletter
from newsletter.exceptions import InvalidInput
from newsletter.models import Subscriber, Subscription, SubscriptionStatus, utcnow

#: statuses a new sign-up or an import must never overwrite
STICKY = frozenset(
    {SubscriptionStatus.unsubscribed, SubscriptionStatus.bounced, SubscriptionStatus.complained}
)


def normalise_email(email: str) -> str:
    """Validate and normalise an address (domain lower-cased); InvalidInput says why not."""
    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address {email!r}: {exc}") from exc


def clean_name(name: str) -> str:
    """One line of text: CR/LF and other control characters could inject headers."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:200]


def get_or_create_subscriber(session: Session, *, email: str, name: str = "") -> Subscriber:
    address = normalise_email(email)
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, name=clean_name(name))
        session.add(subscriber)
        session.flush()
    elif name and not subscriber.name:
        subscriber.name = clean_name(name)
        session.add(subscriber)
    return subscriber


def subscribe(
    session: Session,
    *,
    email: str,
    newsletters: Sequence[str | int],
    name: str = "",
    status: SubscriptionStatus = SubscriptionStatus.active,
    source: str = "admin",
) -> Subscriber:
    """Add an address to newsletters; an unsubscribed/bounced/complained one stays so."""
    if not newsletters:
        raise InvalidInput("name at least one newsletter")
    subscriber = get_or_create_subscriber(session, email=email, name=name)
    for ref in newsletters:
        newsletter = get_newsletter(session, ref)
        sub = session.exec(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.newsletter_id == newsletter.id,
            )
        ).first()
        if sub is None:
            sub = Subscription(
                subscriber_id=subscriber.id,  # type: ignore[arg-type]
                newsletter_id=newsletter.id,  # type: ignore[arg-type]
                status=status,
                consent_source=source,
                consent_at=utcnow() if status == SubscriptionStatus.active else None,
                unsubscribed_at=utcnow() if status == SubscriptionStatus.unsubscribed else None,
            )
        elif sub.status not in STICKY and status == SubscriptionStatus.active:
            sub.status, sub.updated_at = status, utcnow()
        session.add(sub)
    session.flush()
    return subscriber


def set_status(
    session: Session, *, subscriber_id: int, newsletter_id: int, status: SubscriptionStatus
) -> Subscription:
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.newsletter_id == newsletter_id,
        )
    ).first()
    if sub is None:
        raise InvalidInput(f"subscriber {subscriber_id} is not on newsletter {newsletter_id}")
    sub.status, sub.updated_at = status, utcnow()
    if status == SubscriptionStatus.unsubscribed:
        sub.unsubscribed_at = utcnow()
    session.add(sub)
    session.flush()
    return sub


def list_subscriptions(
    session: Session,
    *,
    newsletter: str | int | None = None,
    status: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[tuple[Subscriber, Subscription]]]:
    """(total, one page of (subscriber, subscription)) filtered by newsletter, status, email."""
    stmt = select(Subscriber, Subscription).join(
        Subscription, col(Subscription.subscriber_id) == Subscriber.id
    )
    if newsletter is not None:
        stmt = stmt.where(Subscription.newsletter_id == get_newsletter(session, newsletter).id)
    if status:
        stmt = stmt.where(Subscription.status == status)
    if search:
        stmt = stmt.where(col(Subscriber.email).contains(search.lower()))
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    page = session.exec(stmt.order_by(col(Subscriber.id)).limit(limit).offset(offset)).all()
    return int(total), [(s, sub) for s, sub in page]
