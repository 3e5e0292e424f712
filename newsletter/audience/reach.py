"""Who a send reaches: a newsletter's active subscriptions whose address is not suppressed,
narrowed to a segment's rules when the issue has one.

The ledger fill (``sending.start``) inserts from this query and the send confirmation counts it
(``count``), so the number the editor confirms is the number of rows the fill makes: the same
compiled statement, set-based, nothing loaded into memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlmodel import Session

from newsletter.audience import segment_rules
from newsletter.audience.segment_rules import Group
from newsletter.audience.suppression import SUPPRESSION
from newsletter.models import SubscriptionStatus
from newsletter.tables import SUB, S

__all__ = ["count", "recipients"]


def recipients(
    newsletter_id: int, *columns: Any, rules: Group | None = None, now: datetime | None = None
) -> Select[Any]:
    """SELECT ``columns`` over the recipients of a send (one statement; ``rules``: a segment)."""
    suppressed = exists().where(SUPPRESSION.c.email_hash == SUB.c.email_hash)
    stmt = (
        select(*columns)
        .select_from(S.join(SUB, SUB.c.id == S.c.subscriber_id))
        .where(
            S.c.newsletter_id == newsletter_id,
            S.c.status == SubscriptionStatus.active,
            ~suppressed,
        )
    )
    if rules is not None:
        stmt = stmt.where(segment_rules.where(rules, now=now))
    return stmt


def count(
    session: Session, *, newsletter_id: int, rules: Group | None = None, now: datetime | None = None
) -> int:
    """How many ledger rows a send would create now (the fill's own query, counted)."""
    stmt = recipients(newsletter_id, func.count(), rules=rules, now=now)
    return int(session.execute(stmt).scalar_one())
