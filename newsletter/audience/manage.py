"""What the admin API does with subscribers: search a page of them, create one, change one.

An admin may set a subscription status explicitly, unlike an import or a sign-up, as far as the
table of moves allows (``models.SUBSCRIPTION_MOVES``: nothing goes back to pending); but moving a
subscription out of unsubscribed, bounced or complained needs ``reactivate=True``, so that nobody
re-activates a person who said no by accident. Such a move is recorded as an ``admin`` event and
lifts the address's bounce/complaint suppression. Both go through ``subscribers.admit``: an
address on the suppression list cannot be created again here, and an erased person comes back
only by signing up and confirming themselves. An erased subscriber cannot be edited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session
from sqlmodel import select as sm_select

# the search lives in its own module; these names stay for the callers of manage
from newsletter.audience.search import Page as Page
from newsletter.audience.search import search as search
from newsletter.audience.search import subscriptions_of
from newsletter.audience.subscribers import (
    STICKY,
    Way,
    admit,
    clean_name,
    find_subscriber_id,
    is_erased,
    move_subscription,
    normalise_email,
)
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import (
    SUBSCRIPTION_MOVES,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from newsletter.newsletters import get_newsletter
from newsletter.tables import EV


def get(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber


def subscriptions(session: Session, subscriber_id: int) -> list[tuple[Subscription, str]]:
    """(subscription, newsletter slug) of one subscriber, oldest first."""
    return subscriptions_of(session, [subscriber_id]).get(subscriber_id, [])


def create(
    session: Session,
    *,
    email: str,
    newsletters: Sequence[str | int],
    name: str = "",
    status: SubscriptionStatus = SubscriptionStatus.active,
    actor: str = "admin",
) -> Subscriber:
    """A new subscriber on ``newsletters``; an existing or suppressed address is refused."""
    address = normalise_email(email)
    if not newsletters:
        raise InvalidInput("name at least one newsletter")
    ids = [_newsletter_id(session, ref) for ref in newsletters]
    existing = find_subscriber_id(session, address)
    if existing is not None:
        raise InvalidState(f"{address} is already subscriber {existing}")
    admit(session, address, way=Way.operator)
    subscriber = Subscriber(email=address, name=clean_name(name))
    session.add(subscriber)
    session.flush()
    assert subscriber.id is not None
    for nid in dict.fromkeys(ids):
        _set(session, subscriber.id, nid, None, status, actor)
    session.flush()
    return subscriber


def update(
    session: Session,
    subscriber_id: int,
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    statuses: Mapping[str, SubscriptionStatus] | None = None,
    reactivate: bool = False,
    actor: str = "admin",
) -> Subscriber:
    """Change the name, replace the attributes, set statuses per newsletter (slug or id)."""
    subscriber = get(session, subscriber_id)
    if is_erased(subscriber):
        raise InvalidState(f"subscriber {subscriber_id} was erased; their record cannot change")
    if name is not None:
        subscriber.name = clean_name(name)
    if attributes is not None:
        subscriber.attributes = dict(attributes)
    session.add(subscriber)
    current = {
        sub.newsletter_id: sub.status for sub, _slug in subscriptions(session, subscriber_id)
    }
    for ref, status in (statuses or {}).items():
        nid = _newsletter_id(session, ref)
        before = current.get(nid)
        if before == status:
            continue
        _check_move(subscriber_id, ref, before, status)
        if before in STICKY and status not in STICKY and not reactivate:
            raise InvalidState(
                f"subscriber {subscriber_id} is {before} on {ref!r}: "
                "set reactivate to true to subscribe them again"
            )
        if status == SubscriptionStatus.active:
            admit(session, subscriber.email, way=Way.operator, override=reactivate)
        _set(session, subscriber_id, nid, before, status, actor)
    session.flush()
    return subscriber


def _newsletter_id(session: Session, ref: str | int) -> int:
    try:
        newsletter = get_newsletter(session, ref)
    except NotFound as exc:  # a bad value in a request body, not a missing resource
        raise InvalidInput(str(exc)) from exc
    assert newsletter.id is not None
    return newsletter.id


def _check_move(subscriber_id: int, ref: str | int, before: str | None, to: str) -> None:
    """InvalidState when the table of moves has no ``before`` -> ``to`` (a new one is free)."""
    if before is None:
        return
    allowed = sorted(SUBSCRIPTION_MOVES[SubscriptionStatus(before)])
    if to not in allowed:
        choices = " or ".join(allowed) or "nothing"
        raise InvalidState(
            f"subscriber {subscriber_id} is {before} on {ref!r}: from {before} a subscription "
            f"can move to {choices}, not to {to}"
        )


def _set(
    session: Session,
    subscriber_id: int,
    newsletter_id: int,
    before: str | None,
    status: SubscriptionStatus,
    actor: str,
) -> None:
    now = utcnow()
    sub = _subscription(session, subscriber_id, newsletter_id)
    if sub is None:
        session.add(_new_subscription(subscriber_id, newsletter_id, status, now))
    else:
        _move(session, sub, status, now)
    session.execute(
        insert(EV).values(
            subscriber_id=subscriber_id,
            newsletter_id=newsletter_id,
            kind="admin",
            at=now,
            source="api",
            detail={"from": before, "status": str(status), "by": actor},
        )
    )


def _new_subscription(
    subscriber_id: int, newsletter_id: int, status: SubscriptionStatus, now: datetime
) -> Subscription:
    return Subscription(
        subscriber_id=subscriber_id,
        newsletter_id=newsletter_id,
        consent_source="admin",
        consent_at=now if status == SubscriptionStatus.active else None,
        status=status,
        updated_at=now,
        unsubscribed_at=now if status == SubscriptionStatus.unsubscribed else None,
    )


def _move(session: Session, sub: Subscription, to: SubscriptionStatus, now: datetime) -> None:
    """The guarded move of an existing subscription; InvalidState if it changed meanwhile."""
    values: dict[str, Any] = {"updated_at": now}
    if to == SubscriptionStatus.active:
        values["soft_bounces"] = 0
    if to == SubscriptionStatus.unsubscribed:
        values["unsubscribed_at"] = now
    if not move_subscription(session, sub, to, **values):
        raise InvalidState(
            f"subscriber {sub.subscriber_id}'s subscription changed meanwhile: reload, try again"
        )
    session.expire(sub)  # read back what the UPDATE left


def _subscription(session: Session, subscriber_id: int, newsletter_id: int) -> Subscription | None:
    return session.exec(
        sm_select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.newsletter_id == newsletter_id,
        )
    ).first()
