"""The preference centre: what a subscriber's signed link shows, and saving their choices.

The signed link proves the mailbox is the subscriber's, so choosing a newsletter here is a
confirmed consent (source ``preferences``), through the one way in (``Way.preferences``); leaving
one is ``lifecycle.unsubscribe``. Bounced and complained subscriptions stay as they are.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_
from sqlmodel import Session, col, select

from newsletter.audience.consent import consent_text
from newsletter.audience.events import EventKind, record_event
from newsletter.audience.fields import check_locale, check_time_zone
from newsletter.audience.lifecycle import (
    CONFIRMABLE,
    activate,
    ensure_pending,
    subscriptions_of,
    unsubscribe,
)
from newsletter.audience.subscribers import (
    Way,
    admit,
    check_name,
    live_subscriber,
)
from newsletter.exceptions import InvalidInput
from newsletter.models import Newsletter, Subscriber, SubscriptionStatus, utcnow
from newsletter.tables import S


@dataclass(frozen=True)
class Preferences:
    subscriber: Subscriber
    choices: list[tuple[Newsletter, str | None]]  # every newsletter and our status (None: never)


@dataclass(frozen=True)
class PreferencesChange:
    subscribed: tuple[int, ...]
    unsubscribed: tuple[int, ...]
    renamed: bool
    rezoned: bool = False  # their time zone changed (a local-time send reaches them at theirs)
    relanguaged: bool = False  # their language changed (the edition and the pages they get)


def preferences(session: Session, subscriber_id: int) -> Preferences:
    """What the preference centre shows: every newsletter and this subscriber's status in it.

    One statement: the newsletters by name (as ``list_newsletters``), each with the status of
    this subscriber's subscription as the database has it now (a page after a change shows it).
    """
    subscriber = live_subscriber(session, subscriber_id)
    mine = and_(S.c.newsletter_id == Newsletter.id, S.c.subscriber_id == subscriber_id)
    rows = session.execute(
        select(Newsletter, S.c.status).outerjoin(S, mine).order_by(col(Newsletter.name))
    ).all()
    return Preferences(subscriber, [(nl, status) for nl, status in rows])


def update_preferences(
    session: Session,
    *,
    subscriber_id: int,
    newsletter_ids: Collection[int],
    name: str | None = None,
    time_zone: str | None = None,
    language: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    consent_text_version: str,
    now: datetime | None = None,
) -> PreferencesChange:
    """Save the preference centre: the newsletters wanted (others are left), the name, and the
    time zone (None: unchanged; "": the newsletter's; InvalidInput when zoneinfo does not know it)
    and the language (None: unchanged; "": the newsletter's; one of the shipped locales).

    The signed link proves the mailbox is the subscriber's, so choosing a newsletter here is
    a confirmed consent (source ``preferences``); bounced and complained ones stay as they are.
    """
    now = now or utcnow()
    current = preferences(session, subscriber_id)
    known = {nl.id for nl, _ in current.choices}
    unknown = set(newsletter_ids) - known
    if unknown:
        raise InvalidInput(f"unknown newsletter ids {sorted(unknown)}")
    consent_text(consent_text_version)
    zone = None if time_zone is None else check_time_zone(time_zone)  # refused before any change
    tongue = None if language is None else check_locale(language)
    renamed = _rename(session, current.subscriber, name, ip=ip, user_agent=user_agent, now=now)
    rezoned = time_zone is not None and _rezone(
        session, current.subscriber, zone, ip=ip, user_agent=user_agent, now=now
    )
    relanguaged = language is not None and _change(
        session, current.subscriber, "language", tongue, ip=ip, user_agent=user_agent, now=now
    )
    wanted = list(newsletter_ids)
    subscribed = _join(
        session, subscriber_id, wanted, ip=ip, ua=user_agent, version=consent_text_version, now=now
    )
    left: list[int] = []
    for newsletter, status in current.choices:
        if newsletter.id not in wanted and status in (SubscriptionStatus.pending, "active"):
            left += unsubscribe(
                session,
                subscriber_id=subscriber_id,
                newsletter_id=newsletter.id,
                source="preferences",
                ip=ip,
                user_agent=user_agent,
                now=now,
            )
    return PreferencesChange(tuple(subscribed), tuple(left), renamed, rezoned, relanguaged)


def _rename(
    session: Session,
    subscriber: Subscriber,
    name: str | None,
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> bool:
    if name is None:
        return False
    # the name itself stays out of the event (the event log outlives a correction of it)
    return _change(
        session,
        subscriber,
        "name",
        check_name(name),
        ip=ip,
        user_agent=user_agent,
        now=now,
        shown=False,
    )


def _rezone(
    session: Session,
    subscriber: Subscriber,
    zone: str | None,
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> bool:
    return _change(session, subscriber, "time_zone", zone, ip=ip, user_agent=user_agent, now=now)


def _change(
    session: Session,
    subscriber: Subscriber,
    field: str,
    value: str | None,
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    shown: bool = True,
) -> bool:
    """Set one of the subscriber's own settings; a preferences event when it changed (with the
    new value, when ``shown``)."""
    if value == getattr(subscriber, field):
        return False
    setattr(subscriber, field, value)
    session.add(subscriber)
    record_event(
        session,
        subscriber_id=subscriber.id,  # type: ignore[arg-type]
        kind=EventKind.preferences,
        ip=ip,
        user_agent=user_agent,
        source="preferences",
        at=now,
        detail={"changed": [field]} | ({field: value} if shown else {}),
    )
    return True


def _join(
    session: Session,
    subscriber_id: int,
    newsletter_ids: list[int],
    *,
    ip: str | None,
    ua: str | None,
    version: str,
    now: datetime,
) -> list[int]:
    """Activate the wanted newsletters that are not active (nor locked) yet."""
    active = {
        s.newsletter_id
        for s in subscriptions_of(session, subscriber_id, newsletter_ids)
        if s.status == SubscriptionStatus.active
    }
    if set(newsletter_ids) - active:  # joining something: the suppression list has a say
        admit(session, live_subscriber(session, subscriber_id).email, way=Way.preferences)
    subs = ensure_pending(
        session, subscriber_id, newsletter_ids, source="preferences", version=version, now=now
    )
    joined = []
    for sub in subs:
        if sub.status not in CONFIRMABLE:
            continue
        kind = EventKind.confirm if sub.status == "pending" else EventKind.resubscribe
        if activate(
            session,
            sub,
            kind=kind,
            ip=ip,
            user_agent=ua,
            source="preferences",
            version=version,
            now=now,
        ):
            joined.append(sub.newsletter_id)
    return sorted(joined)
