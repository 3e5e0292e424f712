"""What an editor does to one subscriber from the subscriber page, the admin API or the CLI.

Edit (name, attributes, language, time zone), tag, subscribe to another newsletter, unsubscribe
from one, resend the confirmation, export (GDPR) and erase. Each verb checks its input
(``InvalidInput`` with the reason) and the subscriber's state (``InvalidState``), and records one
``SubscriberEvent`` whose ``detail["by"]`` names the actor ("editor a@b", "token ops",
"cli alice"), so the subscriber's history says who did what. The caller's transaction holds the
change, the event and the audit entry together.

Subscribing goes through the one way in: by default the subscription is pending and a
double opt-in email is due (the same ``ConfirmationRequest`` a public sign-up makes, under the
same resend window, put in the confirmation outbox with the change); an editor who holds the
person's consent from elsewhere records it with a reason instead, and the subscription is active
at once with consent source ``admin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from newsletter import newsletters
from newsletter.audience import gdpr, lifecycle, outbox, suppression
from newsletter.audience.events import record_event
from newsletter.audience.fields import check_attributes, check_language, check_tag, check_time_zone
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.audience.subscribers import (
    Way,
    admit,
    clean_name,
    is_erased,
    move_subscription,
    normalise_email,
)
from newsletter.db import insert_ignore
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Subscriber, Subscription, SubscriptionStatus, utcnow
from newsletter.tables import TAG

__all__ = [
    "DeskEvent",
    "Subscribed",
    "add_tag",
    "edit",
    "erase",
    "export",
    "remove_tag",
    "resend_confirmation",
    "subscribe_to",
    "unsubscribe_from",
]

REASON_MAX = 500


class DeskEvent(StrEnum):
    """The event kinds an editor's action records (beside the life cycle's own)."""

    edit = "edit"
    tag = "tag"
    admin_subscribe = "admin-subscribe"  # consent recorded by an editor, with a reason
    signup = "signup"  # an editor asked for a double opt-in (source admin)
    resend = "confirmation-resent"
    export = "export"
    erase = "erase"


@dataclass(frozen=True)
class Subscribed:
    newsletter_id: int
    status: SubscriptionStatus
    confirmation: ConfirmationRequest | None  # the email to queue once committed


def _live(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = gdpr.find_subscriber(session, subscriber_id)
    if is_erased(subscriber):
        raise InvalidState(f"subscriber {subscriber_id} was erased; their record cannot change")
    return subscriber


def _newsletter_id(session: Session, ref: str | int) -> tuple[int, str]:
    try:
        newsletter = newsletters.get_newsletter(session, ref)
    except NotFound as exc:
        raise InvalidInput(str(exc)) from exc
    assert newsletter.id is not None
    return newsletter.id, newsletter.name


def _subscription(session: Session, subscriber_id: int, newsletter_id: int) -> Subscription | None:
    found = lifecycle.subscriptions_of(session, subscriber_id, [newsletter_id])
    return found[0] if found else None


# ---------------------------------------------------------------- edit and tags


def edit(
    session: Session,
    subscriber_id: int,
    *,
    actor: str,
    name: str | None = None,
    attributes: Any = None,
    language: str | None = None,
    time_zone: str | None = None,
) -> list[str]:
    """Change what is given (None: unchanged; an empty language or zone: the newsletter's);
    the names of the fields that changed, all checked before any is stored."""
    subscriber = _live(session, subscriber_id)
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = clean_name(name)  # line breaks become spaces, as they always did
    if attributes is not None:
        wanted["attributes"] = check_attributes(attributes)
    if language is not None:
        wanted["language"] = check_language(language)
    if time_zone is not None:
        wanted["time_zone"] = check_time_zone(time_zone)
    changed = [k for k, v in wanted.items() if getattr(subscriber, k) != v]
    if not changed:
        return []
    for key in changed:
        setattr(subscriber, key, wanted[key])
    session.add(subscriber)
    detail: dict[str, Any] = {"by": actor, "fields": changed}
    detail.update({k: wanted[k] for k in ("language", "time_zone") if k in changed})
    record_event(
        session, subscriber_id=subscriber_id, kind=DeskEvent.edit, source="admin", detail=detail
    )
    session.flush()
    return changed


def add_tag(session: Session, subscriber_id: int, tag: str, *, actor: str) -> bool:
    """Tag the subscriber; False when they had the tag already."""
    _live(session, subscriber_id)
    tag = check_tag(tag)
    had = tag in _tags(session, subscriber_id)
    if had:
        return False
    insert_ignore(
        session, TAG, {"subscriber_id": subscriber_id, "tag": tag, "created_at": utcnow()}
    )
    record_event(
        session,
        subscriber_id=subscriber_id,
        kind=DeskEvent.tag,
        source="admin",
        detail={"by": actor, "added": tag},
    )
    return True


def remove_tag(session: Session, subscriber_id: int, tag: str, *, actor: str) -> bool:
    """Take a tag off; False when they did not have it."""
    _live(session, subscriber_id)
    gone = session.execute(
        delete(TAG).where(TAG.c.subscriber_id == subscriber_id, TAG.c.tag == tag.strip())
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        return False
    record_event(
        session,
        subscriber_id=subscriber_id,
        kind=DeskEvent.tag,
        source="admin",
        detail={"by": actor, "removed": tag.strip()},
    )
    return True


def _tags(session: Session, subscriber_id: int) -> set[str]:
    stmt = select(TAG.c.tag).where(TAG.c.subscriber_id == subscriber_id)
    return {str(t) for t in session.execute(stmt).scalars()}


# ---------------------------------------------------------------- subscriptions


def subscribe_to(
    session: Session,
    subscriber_id: int,
    newsletter: str | int,
    *,
    actor: str,
    consent_text_version: str,
    resend_after_seconds: int,
    consent_reason: str | None = None,
    now: datetime | None = None,
) -> Subscribed:
    """Subscribe to one more newsletter: pending with a confirmation email due, or, with a
    ``consent_reason`` (the editor holds the consent), active at once (see the module's text)."""
    now = now or utcnow()
    subscriber = _live(session, subscriber_id)
    nid, title = _newsletter_id(session, newsletter)
    sub = _subscription(session, subscriber_id, nid)
    if sub is not None and sub.status == SubscriptionStatus.active:
        raise InvalidState(f"{subscriber.email} is already subscribed to {title}")
    if sub is not None and sub.status in lifecycle.LOCKED:
        raise InvalidState(
            f"{subscriber.email} is {sub.status} on {title}: re-activate that only explicitly "
            "(the API's PATCH with reactivate)"
        )
    if consent_reason is not None:
        reason = " ".join(consent_reason.split())
        if not reason:
            raise InvalidInput("say how you have their consent (the reason is kept on record)")
        if len(reason) > REASON_MAX:
            raise InvalidInput(f"the reason is longer than {REASON_MAX} characters")
        return _with_consent(session, subscriber, nid, sub, actor=actor, reason=reason, now=now)
    if suppression.reason_for(session, subscriber.email) in lifecycle.NO_MAIL:
        raise InvalidState(f"{subscriber.email} is on the suppression list: no email goes there")
    subs = lifecycle.ensure_pending(
        session, subscriber_id, [nid], source="admin", version=consent_text_version, now=now
    )
    if not lifecycle.claim_confirmation(session, [subs[0].id or 0], now, resend_after_seconds):
        raise InvalidState(_window(subs[0], resend_after_seconds))
    record_event(
        session,
        subscriber_id=subscriber_id,
        newsletter_id=nid,
        kind=DeskEvent.signup,
        source="admin",
        consent_text_version=consent_text_version,
        at=now,
        detail={"by": actor, "confirmation": "sent"},
    )
    request = ConfirmationRequest(subscriber_id, (nid,), "admin", consent_text_version)
    recorded = outbox.record(session, request, now=now)  # sent once this transaction commits
    return Subscribed(nid, SubscriptionStatus(subs[0].status), recorded)


def _with_consent(
    session: Session,
    subscriber: Subscriber,
    nid: int,
    sub: Subscription | None,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> Subscribed:
    sid = subscriber.id or 0
    admit(session, subscriber.email, way=Way.operator)  # a suppressed address is refused
    consent: dict[str, Any] = {
        "consent_at": now,
        "consent_ip": None,
        "consent_user_agent": None,
        "consent_source": "admin",
        "consent_text_version": None,
        "unsubscribed_at": None,
        "updated_at": now,
        "soft_bounces": 0,
    }
    before = None if sub is None else sub.status
    if sub is None:
        session.add(
            Subscription(
                subscriber_id=sid, newsletter_id=nid, status=SubscriptionStatus.active, **consent
            )
        )
    elif not move_subscription(session, sub, SubscriptionStatus.active, **consent):
        raise InvalidState("the subscription changed meanwhile: reload, try again")
    record_event(
        session,
        subscriber_id=sid,
        newsletter_id=nid,
        kind=DeskEvent.admin_subscribe,
        source="admin",
        at=now,
        detail={"by": actor, "reason": reason, "from": before, "status": "active"},
    )
    session.flush()
    return Subscribed(nid, SubscriptionStatus.active, None)


def unsubscribe_from(
    session: Session, subscriber_id: int, newsletter: str | int, *, actor: str
) -> None:
    """Unsubscribe from one newsletter (from pending or active); InvalidState otherwise."""
    subscriber = _live(session, subscriber_id)
    nid, title = _newsletter_id(session, newsletter)
    changed = lifecycle.unsubscribe(
        session, subscriber_id=subscriber_id, newsletter_id=nid, source="admin", by=actor
    )
    if not changed:
        sub = _subscription(session, subscriber_id, nid)
        status = sub.status if sub else "not subscribed"
        raise InvalidState(f"{subscriber.email} is {status} on {title}: nothing to unsubscribe")


def resend_confirmation(
    session: Session,
    subscriber_id: int,
    newsletter: str | int,
    *,
    actor: str,
    consent_text_version: str,
    resend_after_seconds: int,
    now: datetime | None = None,
) -> ConfirmationRequest:
    """The confirmation email again for a pending subscription, if the window allows it."""
    now = now or utcnow()
    subscriber = _live(session, subscriber_id)
    nid, title = _newsletter_id(session, newsletter)
    sub = _subscription(session, subscriber_id, nid)
    if sub is None or sub.status != SubscriptionStatus.pending:
        status = sub.status if sub else "not subscribed"
        raise InvalidState(f"{subscriber.email} is {status} on {title}: nothing to confirm")
    if suppression.reason_for(session, subscriber.email) in lifecycle.NO_MAIL:
        raise InvalidState(f"{subscriber.email} is on the suppression list: no email goes there")
    if not lifecycle.claim_confirmation(session, [sub.id or 0], now, resend_after_seconds):
        raise InvalidState(_window(sub, resend_after_seconds))
    version = sub.consent_text_version or consent_text_version
    record_event(
        session,
        subscriber_id=subscriber_id,
        newsletter_id=nid,
        kind=DeskEvent.resend,
        source="admin",
        consent_text_version=version,
        at=now,
        detail={"by": actor},
    )
    request = ConfirmationRequest(subscriber_id, (nid,), sub.consent_source or "admin", version)
    recorded = outbox.record(session, request, now=now)  # sent once this transaction commits
    assert recorded is not None
    return recorded


def _window(sub: Subscription, seconds: int) -> str:
    sent = lifecycle._aware(sub.confirmation_sent_at)
    minutes = max(1, round(seconds / 60))
    when = f" at {sent:%Y-%m-%d %H:%M} UTC" if sent else ""
    after = f"; the next may go after {sent + timedelta(seconds=seconds):%H:%M} UTC" if sent else ""
    return f"a confirmation email went to them{when}: one every {minutes} minutes at most{after}"


# ---------------------------------------------------------------- GDPR


def export(session: Session, ref: int | str, *, actor: str) -> dict[str, Any]:
    """Everything about one subscriber (``gdpr.export_subscriber``), the export on record."""
    data = gdpr.export_subscriber(session, ref)
    record_event(
        session,
        subscriber_id=int(data["subscriber"]["id"]),
        kind=DeskEvent.export,
        source="admin",
        detail={"by": actor},
    )
    session.flush()
    return data


def erase(
    session: Session, ref: int | str, *, actor: str, typed: str | None = None
) -> gdpr.Erasure:
    """Erase (``gdpr.erase_subscriber``); with ``typed``, only if it is the subscriber's address
    (the page's typed confirmation). What remains is an event naming the actor, nothing else."""
    subscriber = gdpr.find_subscriber(session, ref)
    if typed is not None and not is_erased(subscriber):
        try:
            same = normalise_email(typed).lower() == subscriber.email.lower()
        except InvalidInput:
            same = False
        if not same:
            raise InvalidInput("type the subscriber's email address exactly to erase them")
    done = gdpr.erase_subscriber(session, subscriber.id or 0)
    record_event(
        session,
        subscriber_id=done.subscriber_id,
        kind=DeskEvent.erase,
        source="admin",
        detail={"by": actor},
    )
    session.flush()
    return done
