"""List health: per newsletter, sign-ups, confirmations, unsubscribes and bounces per week (or
day), and the backlog of subscriptions waiting for their confirmation.

Counted in SQL from the subscriber event record, one ``GROUP BY`` over the last ``periods``
buckets only (the ``at`` index of migration 0013 bounds it, so the dashboard costs the same at a
million readers as at a hundred). Weeks start on Monday, days at midnight, both in UTC, on
SQLite and on PostgreSQL alike. A bounce recorded for an address rather than one newsletter
counts for each newsletter the address is subscribed to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, literal_column, select, union_all
from sqlmodel import Session

from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus, utcnow
from newsletter.tables import EV, S

__all__ = ["KINDS", "Health", "Unit", "bucket_starts", "list_health"]

#: the event kinds charted, in the legend's order, with their labels
KINDS: dict[str, str] = {
    "signup": "Sign-ups",
    "confirm": "Confirmations",
    "unsubscribe": "Unsubscribes",
    "bounce": "Bounces",
}
Unit = Literal["week", "day"]
MAX_PERIODS = 366


@dataclass
class Health:
    """One newsletter's figures: ``counts[kind][i]`` happened in the bucket starting
    ``starts[i]``; ``pending`` subscriptions wait for confirmation, ``expired`` of them longer
    than a confirmation link works; ``active`` subscriptions now."""

    newsletter_id: int
    unit: Unit
    starts: list[date]
    counts: dict[str, list[int]] = field(default_factory=dict)
    pending: int = 0
    expired: int = 0
    active: int = 0  # active subscriptions now (a send also leaves out suppressed addresses)

    def total(self, kind: str) -> int:
        return sum(self.counts[kind])

    @property
    def peak(self) -> int:
        return max((max(values, default=0) for values in self.counts.values()), default=0)


def bucket_starts(unit: Unit, periods: int, now: datetime) -> list[date]:
    """The first day of each of the last ``periods`` buckets, oldest first, the current one
    last (a week starts on Monday)."""
    today = now.astimezone(UTC).date()
    step = timedelta(days=7 if unit == "week" else 1)
    last = today - timedelta(days=today.weekday()) if unit == "week" else today
    return [last - step * back for back in range(periods - 1, -1, -1)]


def list_health(
    session: Session,
    newsletter_ids: list[int],
    *,
    unit: Unit = "week",
    periods: int = 12,
    confirmation_max_age: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> dict[int, Health]:
    """The figures of each newsletter in ``newsletter_ids`` over the last ``periods`` buckets."""
    if unit not in ("week", "day"):
        raise InvalidInput(f"unit is week or day, not {unit!r}")
    if not 1 <= periods <= MAX_PERIODS:
        raise InvalidInput(f"periods is 1 to {MAX_PERIODS}, not {periods}")
    now = now or utcnow()
    starts = bucket_starts(unit, periods, now)
    index = {start: i for i, start in enumerate(starts)}
    health = {
        nid: Health(nid, unit, starts, {kind: [0] * periods for kind in KINDS})
        for nid in newsletter_ids
    }
    if not health:
        return health
    since = datetime.combine(starts[0], time(), tzinfo=UTC)
    for nid, start, kind, count in session.execute(_events(session, unit, since, list(health))):
        slot = index.get(_as_date(start))
        if slot is not None and nid in health:
            health[nid].counts[kind][slot] += int(count)
    for nid, pending, expired in session.execute(
        _backlog(list(health), now - confirmation_max_age)
    ):
        health[nid].pending, health[nid].expired = int(pending), int(expired or 0)
    for nid, active in session.execute(_active(list(health))):
        health[nid].active = int(active)
    return health


def _events(session: Session, unit: Unit, since: datetime, newsletter_ids: list[int]) -> Any:
    """Per newsletter, bucket and kind: an index-only read of (at, kind, newsletter_id) for the
    events of one newsletter, joined to the subscriptions only for the few address-wide ones (a
    hard bounce has no newsletter: it counts for each subscription of the address)."""
    start = _bucket(session, unit)
    charted = [EV.c.at >= since, EV.c.kind.in_(list(KINDS))]
    own = (
        select(EV.c.newsletter_id, start, EV.c.kind, func.count())
        .where(*charted, EV.c.newsletter_id.in_(newsletter_ids))
        .group_by(EV.c.newsletter_id, start, EV.c.kind)
    )
    address_wide = (
        select(S.c.newsletter_id, start, EV.c.kind, func.count())
        .select_from(EV.join(S, S.c.subscriber_id == EV.c.subscriber_id))
        .where(*charted, EV.c.newsletter_id.is_(None), S.c.newsletter_id.in_(newsletter_ids))
        .group_by(S.c.newsletter_id, start, EV.c.kind)
    )
    return union_all(own, address_wide)


def _bucket(session: Session, unit: Unit) -> Any:
    """The first day of an event's bucket, in UTC, as each database writes it."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), EV.c.at)
        return func.date(func.date_trunc(literal_column(f"'{unit}'"), utc))
    if unit == "week":  # to the next Sunday (or today, a Sunday), then back to its Monday
        return func.date(EV.c.at, literal_column("'weekday 0'"), literal_column("'-6 days'"))
    return func.date(EV.c.at)


def _backlog(newsletter_ids: list[int], expired_before: datetime) -> Any:
    sent = func.coalesce(S.c.confirmation_sent_at, S.c.created_at)
    return (
        select(S.c.newsletter_id, func.count(), func.sum(case((sent < expired_before, 1), else_=0)))
        .where(S.c.status == SubscriptionStatus.pending, S.c.newsletter_id.in_(newsletter_ids))
        .group_by(S.c.newsletter_id)
    )


def _active(newsletter_ids: list[int]) -> Any:
    """An index-only count over (newsletter_id, status, subscriber_id)."""
    return (
        select(S.c.newsletter_id, func.count())
        .where(S.c.status == SubscriptionStatus.active, S.c.newsletter_id.in_(newsletter_ids))
        .group_by(S.c.newsletter_id)
    )


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
