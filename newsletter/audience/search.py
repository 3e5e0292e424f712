"""Find subscribers in a list of a million: the admin list's and the API's search.

Each way in reads an index, never the whole table:

- a whole address (``reader@example.org``, any case) is looked up on the unique ``email_hash``
  index (``models.address_key``); when no subscriber has it, it is searched as a part, so a
  mistyped or partial address still finds what contains it;
- a part of an address (``example.or``, ``reader1``) matches case-insensitively with ILIKE,
  which PostgreSQL answers from the trigram index of migration 0013 (pg_trgm); SQLite scans;
- a status, or a newsletter, alone walks the subscription indexes in subscriber order;
- the count stops at ``count_cap`` (``COUNT_CAP``, 10,000): past it the page says "10,000+"
  (``capped``), so a filtered page never pays a ``count(*)`` over the whole list;
- pages go by keyset (``after``: the last id shown; ``before``: the first id shown), so page
  20,000 costs what page 1 does; ``offset`` still works for the API's ``page``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from newsletter.exceptions import InvalidInput
from newsletter.models import Newsletter, Subscriber, Subscription, SubscriptionStatus, address_key
from newsletter.newsletters import get_newsletter
from newsletter.tables import SUB, S

__all__ = ["COUNT_CAP", "Page", "is_whole_address", "search", "subscriptions_of"]

#: the count stops here; a page with more matches says "10,000+"
COUNT_CAP = 10_000

Items = list[tuple[Subscriber, list[tuple[Subscription, str]]]]  # (subscriber, (sub, slug))


@dataclass(frozen=True)
class Page:
    items: Items
    total: int  # how many match, exactly unless ``capped``
    capped: bool = False  # True: at least ``total`` match (the count stopped there)
    exact_address: bool = False  # the term was a whole address, found on the unique index
    next_after: int | None = None  # the last id shown, when more follow
    previous_before: int | None = None  # the first id shown, when earlier ones exist


def is_whole_address(term: str) -> bool:
    """``local@domain.tld`` with nothing around it: worth one unique-index look-up."""
    local, at, domain = term.partition("@")
    return (
        bool(at and local and domain)
        and "@" not in domain
        and "." in domain.strip(".")
        and not any(c.isspace() for c in term)
    )


def search(
    session: Session,
    *,
    email: str | None = None,
    status: str | None = None,
    newsletter: str | int | None = None,
    limit: int = 50,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
    count_cap: int | None = None,
) -> Page:
    """Subscribers whose address is (or contains) ``email`` and who have a subscription matching
    ``status`` and ``newsletter`` (both on the same subscription), ordered by id; the count
    stops at ``count_cap`` (``COUNT_CAP`` when None)."""
    if status is not None and status not in SubscriptionStatus.__members__:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(SubscriptionStatus)}")
    cap = COUNT_CAP if count_cap is None else count_cap
    if cap < 1:
        raise InvalidInput("count_cap must be at least 1")
    newsletter_id = get_newsletter(session, newsletter).id if newsletter is not None else None
    term = (email or "").strip()
    if term and is_whole_address(term):
        stmt = _matching(SUB.c.email_hash == address_key(term), status, newsletter_id)
        page = _page(session, stmt, SUB.c.id, limit, offset, after, before, cap)
        if page.total or offset or after or before:
            return Page(**{**page.__dict__, "exact_address": True})
    if term:
        stmt = _matching(_contains(term), status, newsletter_id)
        return _page(session, stmt, SUB.c.id, limit, offset, after, before, cap)
    if status is None and newsletter_id is None:
        return _page(session, select(SUB.c.id), SUB.c.id, limit, offset, after, before, cap)
    # a status or a newsletter alone: the subscription index, already in subscriber order
    wanted = [S.c.status == status] if status is not None else []
    if newsletter_id is not None:
        wanted.append(S.c.newsletter_id == newsletter_id)
    ids = select(S.c.subscriber_id).where(*wanted)
    if newsletter_id is None:  # one subscriber may have that status on several newsletters
        ids = ids.distinct()
    return _page(session, ids, S.c.subscriber_id, limit, offset, after, before, cap)


def _contains(term: str) -> ColumnElement[bool]:
    """Case-insensitive "contains", a LIKE wildcard taken literally (ILIKE on PostgreSQL, which
    the trigram index answers; lower() LIKE lower() on SQLite)."""
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return SUB.c.email.ilike(f"%{escaped}%", escape="/")


def _matching(
    address: ColumnElement[bool], status: str | None, newsletter_id: int | None
) -> Select[Any]:
    stmt = select(SUB.c.id).where(address)
    if status is not None or newsletter_id is not None:
        match = [S.c.subscriber_id == SUB.c.id]
        if status is not None:
            match.append(S.c.status == status)
        if newsletter_id is not None:
            match.append(S.c.newsletter_id == newsletter_id)
        stmt = stmt.where(exists().where(*match))
    return stmt


def _page(
    session: Session,
    stmt: Select[Any],
    key: Any,
    limit: int,
    offset: int,
    after: int | None,
    before: int | None,
    count_cap: int,
) -> Page:
    counted = session.execute(
        select(func.count()).select_from(stmt.limit(count_cap + 1).subquery())
    ).scalar_one()
    capped = counted > count_cap
    if before is not None:  # the page before ``before``: walk down, then show in order
        rows = stmt.where(key < before).order_by(key.desc()).limit(limit + 1)
        ids = list(session.execute(rows).scalars())
        more_before, ids = len(ids) > limit, sorted(ids[:limit])
        more_after = True
    else:
        rows = stmt.order_by(key)
        rows = rows.where(key > after) if after is not None else rows.offset(offset)
        ids = list(session.execute(rows.limit(limit + 1)).scalars())
        more_after, ids = len(ids) > limit, ids[:limit]
        more_before = bool(after is not None or offset)
    people = session.exec(
        sm_select(Subscriber).where(col(Subscriber.id).in_(ids)).order_by(col(Subscriber.id))
    ).all()
    subs = subscriptions_of(session, ids)
    return Page(
        items=[(p, subs.get(p.id or 0, [])) for p in people],
        total=min(int(counted), count_cap),
        capped=capped,
        next_after=ids[-1] if ids and more_after else None,
        previous_before=ids[0] if ids and more_before else None,
    )


def subscriptions_of(session: Session, ids: list[int]) -> dict[int, list[tuple[Subscription, str]]]:
    """(subscription, newsletter slug) of each subscriber, oldest first."""
    rows = session.exec(
        sm_select(Subscription, Newsletter.slug)
        .join(Newsletter, col(Newsletter.id) == Subscription.newsletter_id)
        .where(col(Subscription.subscriber_id).in_(ids))
        .order_by(col(Subscription.id))
    ).all()
    grouped: dict[int, list[tuple[Subscription, str]]] = {}
    for sub, slug in rows:
        grouped.setdefault(sub.subscriber_id, []).append((sub, slug))
    return grouped
