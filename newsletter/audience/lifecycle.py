"""The public life cycle of a subscription: sign-up, confirm, unsubscribe.

This is what the HTTP pages and personal links call (the preference centre is
``preference_centre``). Each change of a subscription is one guarded ``UPDATE`` (``WHERE status =
<what we saw>``, a move checked against ``models.SUBSCRIPTION_MOVES``), so a double click or a
replayed link changes nothing twice, and records one ``SubscriberEvent`` (``events``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from newsletter import webhooks
from newsletter.audience import outbox, suppression
from newsletter.audience.consent import consent_text
from newsletter.audience.events import EventKind, record_event
from newsletter.audience.fields import check_locale
from newsletter.audience.links import ConfirmData
from newsletter.audience.outbox import ConfirmationRequest as ConfirmationRequest
from newsletter.audience.subscribers import (
    Way,
    admission_refusals,
    check_name,
    find_subscriber_id,
    live_subscriber,
    move_subscription,
    normalise_email,
)
from newsletter.db import insert_ignore
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Subscription, SubscriptionStatus, address_key, moving, utcnow
from newsletter.newsletters import get_newsletter
from newsletter.sending import welcome
from newsletter.tables import SUB, S

#: what a confirmation link may turn active: pending, and unsubscribed by a link sent after that
CONFIRMABLE = frozenset({SubscriptionStatus.pending, SubscriptionStatus.unsubscribed})
#: what the public pages never change: a bad mailbox or a spam complaint needs an operator
LOCKED = frozenset({SubscriptionStatus.bounced, SubscriptionStatus.complained})
#: suppression reasons for which a sign-up sends nothing (an erased person may sign up again)
NO_MAIL = frozenset({suppression.Reason.bounced, suppression.Reason.complained})
#: what the person can leave: the statuses an unsubscription moves out of
LEAVABLE = (SubscriptionStatus.pending, SubscriptionStatus.active)


@dataclass(frozen=True)
class SignupResult:
    subscriber_id: int
    confirmation: ConfirmationRequest | None  # None: no email is due (see ``signup``)


@dataclass(frozen=True)
class ConfirmResult:
    subscriber_id: int
    email: str
    confirmed: tuple[int, ...]  # newly active
    already: tuple[int, ...]  # active before (a replayed link)
    refused: tuple[int, ...]  # left after this link was sent, bounced, complained, or gone
    #: issues given ledger rows (the welcome, the latest issue): dispatch them after the commit
    dispatch: tuple[int, ...] = ()


# ---------------------------------------------------------------- sign-up


def signup(
    session: Session,
    *,
    email: str,
    newsletters: Sequence[str | int],
    name: str = "",
    ip: str | None = None,
    user_agent: str | None = None,
    source: str = "form",
    consent_text_version: str,
    resend_after_seconds: int = 600,
    language: str | None = None,
    now: datetime | None = None,
) -> SignupResult:
    """A public sign-up: pending subscriptions and, when one is due, a confirmation to send.

    Nothing the caller sees depends on the address's state, and nothing of an address that is
    active, bounced or complained changes. A confirmation is due when one of the requested
    pending (or unsubscribed: a wish to come back) subscriptions had none sent within
    ``resend_after_seconds``; deciding that is one guarded UPDATE, so two sign-ups at once send
    one email. ``name`` and ``language`` (a shipped locale; None: the newsletter's) are a new
    subscriber's: a known one's are not changed here (a stranger could type the address).
    """
    now = now or utcnow()
    address = normalise_email(email)
    display = check_name(name)
    tongue = check_locale(language or "")
    consent_text(consent_text_version)  # an unknown version is the caller's mistake
    wanted = _newsletters(session, newsletters)
    subscriber_id = _ensure_subscriber(session, address, display, tongue, now)
    subs = ensure_pending(
        session, subscriber_id, wanted, source=source, version=consent_text_version, now=now
    )
    # the same statements whatever the address's state (new, pending, active, suppressed), so
    # neither the answer nor its timing tells a stranger whether the address is known
    mail_ok = suppression.reason_for(session, address) not in NO_MAIL
    open_ = [s for s in subs if s.status in CONFIRMABLE] if mail_ok else []
    for sub in subs:  # every attempt is on record, also one for an address already active
        record_event(
            session,
            subscriber_id=subscriber_id,
            newsletter_id=sub.newsletter_id,
            kind=EventKind.signup,
            ip=ip,
            user_agent=user_agent,
            source=source,
            consent_text_version=consent_text_version,
            at=now,
            detail={} if sub in open_ else {"status": sub.status, "confirmation": "not sent"},
        )
    claimed = claim_confirmation(session, [s.id for s in open_], now, resend_after_seconds)  # type: ignore[misc]
    ids = tuple(sorted(s.newsletter_id for s in open_))
    due = ConfirmationRequest(subscriber_id, ids, source, consent_text_version)
    # in the outbox with the sign-up, so a committed sign-up always gets its email (the same
    # statement, matching nothing, when none is due)
    return SignupResult(
        subscriber_id, outbox.record(session, due if open_ and claimed else None, now=now)
    )


def _newsletters(session: Session, refs: Sequence[str | int]) -> list[int]:
    if not refs:
        raise InvalidInput("choose at least one newsletter")
    ids = []
    for ref in refs:
        try:
            ids.append(get_newsletter(session, ref).id)
        except NotFound as exc:
            raise InvalidInput(f"unknown newsletter {ref!r}") from exc
    return sorted({i for i in ids if i is not None})


def _ensure_subscriber(
    session: Session, address: str, name: str, language: str | None, now: datetime
) -> int:
    """The subscriber's id; one INSERT ... ON CONFLICT DO NOTHING and one SELECT whether the
    address is new or known, so a sign-up takes the same work (and time) either way."""
    row = dict(email=address, email_hash=address_key(address), name=name, language=language)
    # a concurrent twin's row wins and ours is dropped
    insert_ignore(session, SUB, row | {"attributes": {}, "created_at": now})
    found = find_subscriber_id(session, address)
    assert found is not None
    return found


def ensure_pending(
    session: Session,
    subscriber_id: int,
    newsletter_ids: list[int],
    *,
    source: str,
    version: str,
    now: datetime,
) -> list[Subscription]:
    """The subscriptions to ``newsletter_ids``, those missing made pending (one INSERT each)."""
    for newsletter_id in newsletter_ids:
        row = {
            "subscriber_id": subscriber_id,
            "newsletter_id": newsletter_id,
            "status": SubscriptionStatus.pending,
            "consent_source": source,
            "consent_text_version": version,
            "created_at": now,
            "updated_at": now,
            "soft_bounces": 0,
        }
        insert_ignore(session, S, row)
    return subscriptions_of(session, subscriber_id, newsletter_ids)


def subscriptions_of(
    session: Session, subscriber_id: int, newsletter_ids: Collection[int] | None = None
) -> list[Subscription]:
    """A subscriber's subscriptions as the database has them now (to those newsletters)."""
    stmt = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if newsletter_ids is not None:
        stmt = stmt.where(col(Subscription.newsletter_id).in_(list(newsletter_ids)))
    return list(session.exec(stmt.execution_options(populate_existing=True)).all())


def claim_confirmation(
    session: Session, subscription_ids: list[int], now: datetime, resend_after_seconds: int
) -> bool:
    """Whether a confirmation email may go now (none sent within the window): one guarded
    UPDATE that also starts the window again for all ``subscription_ids``."""
    cutoff = now - timedelta(seconds=resend_after_seconds)
    due = session.execute(
        update(S)
        .where(
            S.c.id.in_(subscription_ids),
            or_(S.c.confirmation_sent_at.is_(None), S.c.confirmation_sent_at <= cutoff),
        )
        .values(confirmation_sent_at=now)
    )
    claimed = bool(due.rowcount)  # type: ignore[attr-defined]
    # the email covers all of them, so the window starts again for all of them (run even when
    # nothing is due, matching nothing then: the same work either way)
    session.execute(
        update(S)
        .where(S.c.id.in_(subscription_ids if claimed else []))
        .values(confirmation_sent_at=now)
    )
    return claimed


# ---------------------------------------------------------------- confirm


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def activate(
    session: Session,
    sub: Subscription,
    *,
    kind: EventKind,
    ip: str | None,
    user_agent: str | None,
    source: str,
    version: str,
    now: datetime,
) -> bool:
    """``sub`` (pending or unsubscribed) to active with the consent record and its event;
    False when someone changed it first."""
    consent = {
        "consent_at": now,
        "consent_ip": ip[:64] if ip else None,
        "consent_user_agent": user_agent[:500] if user_agent else None,
        "consent_source": source,
        "consent_text_version": version,
        "unsubscribed_at": None,
        "updated_at": now,
    }
    if not move_subscription(session, sub, SubscriptionStatus.active, **consent):
        return False
    record_event(
        session,
        subscriber_id=sub.subscriber_id,
        newsletter_id=sub.newsletter_id,
        kind=kind,
        ip=ip,
        user_agent=user_agent,
        source=source,
        consent_text_version=version,
        at=now,
        detail={"from": sub.status},
    )
    return True


def _left_before(sub: Subscription, issued_at: datetime) -> bool:
    """An unsubscribed subscription that a link issued at ``issued_at`` may bring back."""
    left = _aware(sub.unsubscribed_at or sub.updated_at)
    return left is not None and left < issued_at


def confirm(
    session: Session,
    *,
    data: ConfirmData,
    ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> ConfirmResult:
    """A verified confirmation link: pending -> active with the consent record, and for each
    newsletter so made active its welcome email (``sending.welcome.queue``: once per subscriber).

    An unsubscribed subscription comes back only for a link issued after the unsubscription (the
    person signed up again and proved the mailbox is theirs); an older link, replayed, leaves it
    alone. Bounced and complained ones never change here. An active one is left as it is.
    """
    now = now or utcnow()
    subscriber = live_subscriber(session, data.subscriber_id)
    subs = {s.newsletter_id: s for s in subscriptions_of(session, data.subscriber_id)}
    # a bounced or complained address stays suppressed; an erasure is lifted by this click
    admitted = not admission_refusals(session, [subscriber.email], way=Way.confirm)
    confirmed, already, refused = [], [], []
    for newsletter_id in data.newsletter_ids:
        sub = subs.get(newsletter_id)
        if sub is not None and sub.status == SubscriptionStatus.active:
            already.append(newsletter_id)
            continue
        comes_back = (
            admitted
            and sub is not None
            and (
                sub.status == SubscriptionStatus.pending
                or (
                    sub.status == SubscriptionStatus.unsubscribed
                    and _left_before(sub, data.issued_at)
                )
            )
        )
        kind = EventKind.confirm if sub and sub.status == "pending" else EventKind.resubscribe
        if comes_back and activate(
            session,
            sub,  # type: ignore[arg-type]
            kind=kind,
            ip=ip,
            user_agent=user_agent,
            source=data.source,
            version=data.consent_text_version,
            now=now,
        ):
            confirmed.append(newsletter_id)
        else:
            refused.append(newsletter_id)
    dispatch = welcome.queue(session, subscriber_id=data.subscriber_id, newsletter_ids=confirmed)
    if confirmed:
        webhooks.emit_subscriber(
            session,
            "subscriber.confirmed",
            subscriber_id=data.subscriber_id,
            newsletter_ids=confirmed,
            at=now,
        )
    session.flush()
    return ConfirmResult(
        data.subscriber_id,
        subscriber.email,
        tuple(confirmed),
        tuple(already),
        tuple(refused),
        dispatch,
    )


# ---------------------------------------------------------------- unsubscribe


def unsubscribe(
    session: Session,
    *,
    subscriber_id: int,
    newsletter_id: int | None,
    source: str,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
    by: str | None = None,
    issue_id: int | None = None,
) -> tuple[int, ...]:
    """Leave one newsletter, or all of them (None); the ids that changed (none on a replay).

    ``by`` names who acted when it is not the subscriber (an editor, a token, the CLI);
    ``issue_id`` the issue whose link or header it came from (its report counts it)."""
    now = now or utcnow()
    gone = SubscriptionStatus.unsubscribed
    stmt = (
        update(S)
        .where(S.c.subscriber_id == subscriber_id, moving(S.c.status, gone, among=LEAVABLE))
        .values(status=gone, unsubscribed_at=now, updated_at=now)
        .returning(S.c.newsletter_id)
    )
    if newsletter_id is not None:
        stmt = stmt.where(S.c.newsletter_id == newsletter_id)
    changed = tuple(sorted(int(i) for i in session.execute(stmt).scalars()))
    for nid in changed:
        record_event(
            session,
            subscriber_id=subscriber_id,
            newsletter_id=nid,
            kind=EventKind.unsubscribe,
            ip=ip,
            user_agent=user_agent,
            source=source,
            at=now,
            detail=_detail(by, issue_id),
        )
    webhooks.emit_subscriber(
        session,
        "subscriber.unsubscribed",
        subscriber_id=subscriber_id,
        newsletter_ids=changed,
        at=now,
    )
    session.flush()
    return changed


def _detail(by: str | None, issue_id: int | None) -> dict[str, object] | None:
    detail: dict[str, object] = {"by": by} if by else {}
    if issue_id is not None:
        detail["issue_id"] = issue_id
    return detail or None
