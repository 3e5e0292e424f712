"""Subscribers and their subscriptions: add, list, status changes; the public life cycle.

One way in: every path that creates or re-activates a subscription (``subscribe`` for the CLI
and the seed, the admin API and UI in ``subscriber_admin``, the CSV import, ``confirm`` and the
preference centre) asks ``admission_refusals`` first, which refuses an address on the
suppression list. A hard bounce or a complaint stays refused unless an operator explicitly
re-activates the address; someone who had their data erased comes back only through double
opt-in (a confirmed sign-up lifts the erasure). The ledger fill skips suppressed addresses too.

The public life cycle (sign-up, confirm, unsubscribe, preferences) is what the HTTP pages call;
each change of a subscription is one guarded ``UPDATE`` (``WHERE status = <what we saw>``), so a
double click or a replayed link changes nothing twice, and records one ``SubscriberEvent``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Table, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, func, select

from newsletter import webhooks
from newsletter.audience import suppression
from newsletter.audience.consent import consent_text
from newsletter.audience.links import ConfirmData
from newsletter.content.issues import get_newsletter
from newsletter.exceptions import InvalidInput, InvalidLink, InvalidState, NotFound
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    SubscriptionStatus,
    address_key,
    utcnow,
)

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


class Way(StrEnum):
    """How a subscription is being made active; decides what the suppression list allows."""

    operator = "operator"  # CLI, seed, admin API and UI: an editor adds or re-activates
    import_ = "import"  # a CSV file
    confirm = "confirm"  # a confirmation link: the person proved the mailbox is theirs
    preferences = "preferences"  # the preference centre's signed link


_ADVICE = {
    suppression.Reason.erased: "they can come back only by signing up again and confirming",
    suppression.Reason.bounced: "the mailbox bounced; an operator may re-activate it explicitly",
    suppression.Reason.complained: "they reported spam; an operator may re-activate explicitly",
}


def admission_refusals(
    session: Session, addresses: Collection[str], *, way: Way, override: bool = False
) -> dict[str, str]:
    """{address: why not} for the (normalised) addresses that may not be made active ``way``.

    The one check in front of every subscription that is created or re-activated. An erasure is
    lifted by a confirmation (double opt-in) and only by one; a bounce or complaint only by an
    operator's explicit ``override``. Lifting happens here, for the addresses let through.
    """
    by_hash = {address_key(a): a for a in addresses}
    found = suppression.reasons(session, list(by_hash))
    refused: dict[str, str] = {}
    for digest, reason in found.items():
        address = by_hash[digest]
        if reason == suppression.Reason.erased and way is Way.confirm:
            suppression.lift(session, address, only=[suppression.Reason.erased])
        elif reason != suppression.Reason.erased and override and way is Way.operator:
            suppression.lift(session, address, only=[suppression.Reason(reason)])
        else:
            advice = _ADVICE.get(suppression.Reason(reason), "")
            refused[address] = f"{address} is on the suppression list ({reason}): {advice}"
    return refused


def admit(session: Session, address: str, *, way: Way, override: bool = False) -> None:
    """Raise ``Suppressed`` when ``address`` may not be made active ``way`` (see above)."""
    refused = admission_refusals(session, [address], way=way, override=override)
    if refused:
        raise Suppressed(refused[address])


class Suppressed(InvalidState):
    """The address is on the suppression list and this way in may not bring it back."""


def find_subscriber_id(session: Session, address: str) -> int | None:
    """The subscriber with this address, whatever its case (the unique ``email_hash``)."""
    found = session.execute(
        select(_SUB.c.id).where(_SUB.c.email_hash == address_key(address))
    ).scalar()
    return None if found is None else int(found)


def get_or_create_subscriber(session: Session, *, email: str, name: str = "") -> Subscriber:
    address = normalise_email(email)
    found = find_subscriber_id(session, address)
    subscriber = session.get(Subscriber, found) if found is not None else None
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
    """Add an address to newsletters; an unsubscribed/bounced/complained one stays so, and a
    suppressed address (erased, hard-bounced, complained) is refused (``Suppressed``)."""
    if not newsletters:
        raise InvalidInput("name at least one newsletter")
    if status == SubscriptionStatus.active:
        admit(session, normalise_email(email), way=Way.operator)
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


# ---------------------------------------------------------------- the public life cycle

_S: Table = SQLModel.metadata.tables[Subscription.__tablename__]  # type: ignore[index]
_SUB: Table = SQLModel.metadata.tables[Subscriber.__tablename__]  # type: ignore[index]

#: what a confirmation link may turn active: pending, and unsubscribed by a link sent after that
CONFIRMABLE = frozenset({SubscriptionStatus.pending, SubscriptionStatus.unsubscribed})
#: what the public pages never change: a bad mailbox or a spam complaint needs an operator
LOCKED = frozenset({SubscriptionStatus.bounced, SubscriptionStatus.complained})
#: suppression reasons for which a sign-up sends nothing (an erased person may sign up again)
NO_MAIL = frozenset({suppression.Reason.bounced, suppression.Reason.complained})
NAME_MAX = 200


class EventKind(StrEnum):
    signup = "signup"
    confirm = "confirm"
    resubscribe = "resubscribe"
    unsubscribe = "unsubscribe"
    preferences = "preferences"


@dataclass(frozen=True)
class ConfirmationRequest:
    """A confirmation email to send: who, for which newsletters, and what they agreed to."""

    subscriber_id: int
    newsletter_ids: tuple[int, ...]
    source: str
    consent_text_version: str


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


@dataclass(frozen=True)
class Preferences:
    subscriber: Subscriber
    choices: list[tuple[Newsletter, str | None]]  # every newsletter and our status (None: never)


@dataclass(frozen=True)
class PreferencesChange:
    subscribed: tuple[int, ...]
    unsubscribed: tuple[int, ...]
    renamed: bool


def check_name(name: str) -> str:
    """A name typed into a public form: one line of printable text (a CR/LF is refused)."""
    name = name.strip()
    if any(not ch.isprintable() for ch in name):
        raise InvalidInput("name must be one line of text, without line breaks or control codes")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name is longer than {NAME_MAX} characters")
    return " ".join(name.split())


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
    now: datetime | None = None,
) -> SignupResult:
    """A public sign-up: pending subscriptions and, when one is due, a confirmation to send.

    Nothing the caller sees depends on the address's state, and nothing of an address that is
    active, bounced or complained changes. A confirmation is due when one of the requested
    pending (or unsubscribed: a wish to come back) subscriptions had none sent within
    ``resend_after_seconds``; deciding that is one guarded UPDATE, so two sign-ups at once send
    one email. An existing subscriber's name is not changed here (a stranger could type it).
    """
    now = now or utcnow()
    address = normalise_email(email)
    display = check_name(name)
    consent_text(consent_text_version)  # an unknown version is the caller's mistake
    wanted = _newsletters(session, newsletters)
    subscriber_id = _ensure_subscriber(session, address, display, now)
    subs = _ensure_pending(
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
    claimed = _claim_confirmation(session, [s.id for s in open_], now, resend_after_seconds)  # type: ignore[misc]
    if not open_ or not claimed:
        return SignupResult(subscriber_id, None)
    ids = tuple(sorted(s.newsletter_id for s in open_))
    return SignupResult(
        subscriber_id, ConfirmationRequest(subscriber_id, ids, source, consent_text_version)
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


def _insert_ignore(session: Session, table: Table, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent twin's row wins and ours is dropped."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(table).values(values).on_conflict_do_nothing())


def _ensure_subscriber(session: Session, address: str, name: str, now: datetime) -> int:
    """The subscriber's id; one INSERT ... ON CONFLICT DO NOTHING and one SELECT whether the
    address is new or known, so a sign-up takes the same work (and time) either way."""
    values = {
        "email": address,
        "email_hash": address_key(address),
        "name": name,
        "attributes": {},
        "created_at": now,
    }
    _insert_ignore(session, _SUB, values)
    found = find_subscriber_id(session, address)
    assert found is not None
    return found


def _ensure_pending(
    session: Session,
    subscriber_id: int,
    newsletter_ids: list[int],
    *,
    source: str,
    version: str,
    now: datetime,
) -> list[Subscription]:
    for newsletter_id in newsletter_ids:
        values = {
            "subscriber_id": subscriber_id,
            "newsletter_id": newsletter_id,
            "status": SubscriptionStatus.pending,
            "consent_source": source,
            "consent_text_version": version,
            "created_at": now,
            "updated_at": now,
            "soft_bounces": 0,
        }
        _insert_ignore(session, _S, values)
    return _subscriptions(session, subscriber_id, newsletter_ids)


def _subscriptions(
    session: Session, subscriber_id: int, newsletter_ids: Collection[int] | None = None
) -> list[Subscription]:
    stmt = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if newsletter_ids is not None:
        stmt = stmt.where(col(Subscription.newsletter_id).in_(list(newsletter_ids)))
    return list(session.exec(stmt.execution_options(populate_existing=True)).all())


def _claim_confirmation(
    session: Session, subscription_ids: list[int], now: datetime, resend_after_seconds: int
) -> bool:
    cutoff = now - timedelta(seconds=resend_after_seconds)
    due = session.execute(
        update(_S)
        .where(
            _S.c.id.in_(subscription_ids),
            or_(_S.c.confirmation_sent_at.is_(None), _S.c.confirmation_sent_at <= cutoff),
        )
        .values(confirmation_sent_at=now)
    )
    claimed = bool(due.rowcount)  # type: ignore[attr-defined]
    # the email covers all of them, so the window starts again for all of them (run even when
    # nothing is due, matching nothing then: the same work either way)
    session.execute(
        update(_S)
        .where(_S.c.id.in_(subscription_ids if claimed else []))
        .values(confirmation_sent_at=now)
    )
    return claimed


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


ERASED_DOMAIN = "invalid"  # RFC 2606: never resolves, so nothing is ever delivered there


def erased_address(subscriber_id: int) -> str:
    """What ``gdpr.erase_subscriber`` leaves in place of the address (email-validator never
    accepts the reserved ``.invalid`` domain from anybody)."""
    return f"erased-{subscriber_id}@{ERASED_DOMAIN}"


def is_erased(subscriber: Subscriber) -> bool:
    return subscriber.email == erased_address(subscriber.id or 0)


def live_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber a personal link names; InvalidLink when they are gone (erased)."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or is_erased(subscriber):
        raise InvalidLink("this link is no longer valid")
    return subscriber


def _transition(
    session: Session, sub: Subscription, *, to: SubscriptionStatus, values: dict[str, Any]
) -> bool:
    """Move one subscription from the status we read to ``to``; False if someone was first."""
    result = session.execute(
        update(_S).where(_S.c.id == sub.id, _S.c.status == sub.status).values(status=to, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _activate(
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
    consent = {
        "consent_at": now,
        "consent_ip": ip[:64] if ip else None,
        "consent_user_agent": user_agent[:500] if user_agent else None,
        "consent_source": source,
        "consent_text_version": version,
        "unsubscribed_at": None,
        "updated_at": now,
    }
    if not _transition(session, sub, to=SubscriptionStatus.active, values=consent):
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
    """A verified confirmation link: pending -> active with the consent record.

    An unsubscribed subscription comes back only for a link issued after the unsubscription (the
    person signed up again and proved the mailbox is theirs); an older link, replayed, leaves it
    alone. Bounced and complained ones never change here. An active one is left as it is.
    """
    now = now or utcnow()
    subscriber = live_subscriber(session, data.subscriber_id)
    subs = {s.newsletter_id: s for s in _subscriptions(session, data.subscriber_id)}
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
        if comes_back and _activate(
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
        data.subscriber_id, subscriber.email, tuple(confirmed), tuple(already), tuple(refused)
    )


def unsubscribe(
    session: Session,
    *,
    subscriber_id: int,
    newsletter_id: int | None,
    source: str,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> tuple[int, ...]:
    """Leave one newsletter, or all of them (None); the ids that changed (none on a replay)."""
    now = now or utcnow()
    stmt = (
        update(_S)
        .where(
            _S.c.subscriber_id == subscriber_id,
            _S.c.status.in_([SubscriptionStatus.pending, SubscriptionStatus.active]),
        )
        .values(status=SubscriptionStatus.unsubscribed, unsubscribed_at=now, updated_at=now)
        .returning(_S.c.newsletter_id)
    )
    if newsletter_id is not None:
        stmt = stmt.where(_S.c.newsletter_id == newsletter_id)
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


def list_newsletters(session: Session) -> list[Newsletter]:
    """Every newsletter, by name: what the sign-up form and the preference centre offer."""
    return list(session.exec(select(Newsletter).order_by(col(Newsletter.name))).all())


def preferences(session: Session, subscriber_id: int) -> Preferences:
    """What the preference centre shows: every newsletter and this subscriber's status in it."""
    subscriber = live_subscriber(session, subscriber_id)
    status = {s.newsletter_id: s.status for s in _subscriptions(session, subscriber_id)}
    choices = [(nl, status.get(nl.id)) for nl in list_newsletters(session)]  # type: ignore[arg-type]
    return Preferences(subscriber, choices)


def update_preferences(
    session: Session,
    *,
    subscriber_id: int,
    newsletter_ids: Collection[int],
    name: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    consent_text_version: str,
    now: datetime | None = None,
) -> PreferencesChange:
    """Save the preference centre: the newsletters wanted (others are left), and the name.

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
    renamed = _rename(session, current.subscriber, name, ip=ip, user_agent=user_agent, now=now)
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
    return PreferencesChange(tuple(subscribed), tuple(left), renamed)


def _rename(
    session: Session,
    subscriber: Subscriber,
    name: str | None,
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> bool:
    if name is None or check_name(name) == subscriber.name:
        return False
    subscriber.name = check_name(name)
    session.add(subscriber)
    record_event(
        session,
        subscriber_id=subscriber.id,  # type: ignore[arg-type]
        kind=EventKind.preferences,
        ip=ip,
        user_agent=user_agent,
        source="preferences",
        at=now,
        detail={"changed": ["name"]},
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
        for s in _subscriptions(session, subscriber_id, newsletter_ids)
        if s.status == SubscriptionStatus.active
    }
    if set(newsletter_ids) - active:  # joining something: the suppression list has a say
        admit(session, live_subscriber(session, subscriber_id).email, way=Way.preferences)
    subs = _ensure_pending(
        session, subscriber_id, newsletter_ids, source="preferences", version=version, now=now
    )
    joined = []
    for sub in subs:
        if sub.status not in CONFIRMABLE:
            continue
        kind = EventKind.confirm if sub.status == "pending" else EventKind.resubscribe
        if _activate(
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
