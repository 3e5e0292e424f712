"""Subscribers: the one way in, an address's identity and lookup, admin add and list.

One way in: every path that creates or re-activates a subscription (``subscribe`` for the CLI
and the seed, the admin API and UI in ``manage``, the CSV import, ``lifecycle.confirm`` and the
preference centre) asks ``admission_refusals`` first, which refuses an address on the
suppression list. A hard bounce or a complaint stays refused unless an operator explicitly
re-activates the address; someone who had their data erased comes back only through double
opt-in (a confirmed sign-up lifts the erasure). The ledger fill skips suppressed addresses too.

Every status change of an existing subscription is one guarded ``UPDATE`` whose ``WHERE`` names
the status it was read in, checked against ``models.SUBSCRIPTION_MOVES`` (``move_subscription``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from newsletter.addresses import normalise_email as normalise_email  # re-exported
from newsletter.audience import suppression
from newsletter.exceptions import InvalidInput, InvalidLink, InvalidState
from newsletter.models import (
    Newsletter,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    address_key,
    moving,
    utcnow,
)
from newsletter.newsletters import get_newsletter
from newsletter.tables import SUB, S

#: statuses a new sign-up or an import must never overwrite
STICKY = frozenset(
    {SubscriptionStatus.unsubscribed, SubscriptionStatus.bounced, SubscriptionStatus.complained}
)
ERASED_DOMAIN = "invalid"  # RFC 2606: never resolves, so nothing is ever delivered there
NAME_MAX = 200


def clean_name(name: str) -> str:
    """One line of text: CR/LF and other control characters could inject headers."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:NAME_MAX]


def check_name(name: str) -> str:
    """A name typed into a public form: one line of printable text (a CR/LF is refused)."""
    name = name.strip()
    if any(not ch.isprintable() for ch in name):
        raise InvalidInput("name must be one line of text, without line breaks or control codes")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name is longer than {NAME_MAX} characters")
    return " ".join(name.split())


# ---------------------------------------------------------------- the one way in


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
    suppression.Reason.unsubscribed: "they unsubscribed; only their own confirmed sign-up counts",
}
#: lifted by the person's own confirmation, and by nothing else
_OWN_WORD = (suppression.Reason.erased, suppression.Reason.unsubscribed)


def admission_refusals(
    session: Session,
    addresses: Collection[str] | Mapping[str, str],
    *,
    way: Way,
    override: bool = False,
) -> dict[str, str]:
    """{address: why not} for the (normalised) addresses that may not be made active ``way``;
    ``addresses`` may be {address_key: address} already (an import has the keys at hand).

    The one check in front of every subscription that is created or re-activated. An erasure (or
    an unsubscribe imported from another service) is lifted by a confirmation (double opt-in) and
    only by one; a bounce or complaint only by an
    operator's explicit ``override``. Lifting happens here, for the addresses let through.
    """
    if isinstance(addresses, Mapping):
        by_hash = dict(addresses)
    else:
        by_hash = {address_key(a): a for a in addresses}
    found = suppression.reasons(session, list(by_hash))
    refused: dict[str, str] = {}
    for digest, reason in found.items():
        address = by_hash[digest]
        if reason in _OWN_WORD and way is Way.confirm:
            suppression.lift(session, address, only=_OWN_WORD)
        elif reason not in _OWN_WORD and override and way is Way.operator:
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


def move_subscription(
    session: Session, sub: Subscription, to: SubscriptionStatus, **values: Any
) -> bool:
    """Move one subscription from the status it was read in to ``to`` (a move the table allows,
    else ``StatusMoveError``) and set ``values``; False when someone else moved it first.

    A Core statement: ``sub`` keeps the values it was read with (expire it to see the new ones).
    """
    was = SubscriptionStatus(sub.status)
    result = session.execute(
        update(S)
        .where(S.c.id == sub.id, moving(S.c.status, to, among=[was]))
        .values(status=to, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- identity and lookup


def find_subscriber_id(session: Session, address: str) -> int | None:
    """The subscriber with this address, whatever its case (the unique ``email_hash``)."""
    found = session.execute(
        select(SUB.c.id).where(SUB.c.email_hash == address_key(address))
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


def list_newsletters(session: Session) -> list[Newsletter]:
    """Every newsletter, by name: what the sign-up form and the preference centre offer."""
    return list(session.exec(select(Newsletter).order_by(col(Newsletter.name))).all())


# ---------------------------------------------------------------- admin add and list


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
            session.add(
                Subscription(
                    subscriber_id=subscriber.id,  # type: ignore[arg-type]
                    newsletter_id=newsletter.id,  # type: ignore[arg-type]
                    status=status,
                    consent_source=source,
                    consent_at=utcnow() if status == SubscriptionStatus.active else None,
                    unsubscribed_at=utcnow() if status == SubscriptionStatus.unsubscribed else None,
                )
            )
        elif sub.status not in STICKY and status == SubscriptionStatus.active:
            _make_active(session, sub)
    session.flush()
    return subscriber


def _make_active(session: Session, sub: Subscription) -> None:
    """A pending subscription becomes active; an active one is only touched (as it always was)."""
    if sub.status == SubscriptionStatus.active:
        sub.updated_at = utcnow()
        session.add(sub)
        return
    move_subscription(session, sub, SubscriptionStatus.active, updated_at=utcnow())
    session.expire(sub)  # read back what the UPDATE left, not what we had


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
