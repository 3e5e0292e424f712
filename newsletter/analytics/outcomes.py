"""What became of an issue's messages besides reading: delivered, bounced, complained,
unsubscribed, each a count of distinct readers in one statement.

- **delivered**: ledger rows sent, from the issue counters (``sending.counters``).
- **bounced**: refused at the send (ledger rows failed), or reported later: a provider's or a
  DSN's bounce receipt naming the issue, or a bounce event of a reader it was the last issue
  sent to before the bounce (the rule ``audience.receipts.sent_issue`` attributes by).
- **complained**: complaint receipts naming the issue, and complaint events attributed as bounces.
- **unsubscribed**: unsubscribe events whose detail names the issue: the footer link and the
  ``List-Unsubscribe`` header carry it in their signed token (``audience.links``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, union
from sqlmodel import Session

from newsletter.models import DeliveryStatus
from newsletter.models_audience import BounceReceipt
from newsletter.sending import counters
from newsletter.tables import EV, D, I, table_of

__all__ = ["Outcomes", "outcomes"]

R = table_of(BounceReceipt)
BOUNCE_RECEIPTS = ("hard", "soft")


@dataclass(frozen=True)
class Outcomes:
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0


def outcomes(session: Session, issue_ids: Collection[int]) -> dict[int, Outcomes]:
    """Each issue's outcomes (an issue without any is all zeros)."""
    ids = list(issue_ids)
    sent = counters.counts_of(session, ids)
    return {
        i: Outcomes(
            delivered=sent.get(i, {}).get(DeliveryStatus.sent, 0),
            bounced=_count(session, _bounced(i)),
            complained=_count(session, _complained(i)),
            unsubscribed=_count(session, _unsubscribed(i)),
        )
        for i in ids
    }


def _count(session: Session, readers: Any) -> int:
    found = readers.subquery()
    return int(session.execute(select(func.count()).select_from(found)).scalar_one())


def _bounced(issue_id: int) -> Any:
    refused = select(D.c.subscriber_id).where(
        D.c.issue_id == issue_id, D.c.status == DeliveryStatus.failed
    )
    reported = _receipts(issue_id, BOUNCE_RECEIPTS)
    return union(refused, reported, _last_sent_events(issue_id, "bounce"))


def _complained(issue_id: int) -> Any:
    return union(_receipts(issue_id, ("complaint",)), _last_sent_events(issue_id, "complaint"))


def _receipts(issue_id: int, kinds: tuple[str, ...]) -> Any:
    return select(R.c.subscriber_id).where(
        R.c.issue_id == issue_id, R.c.kind.in_(kinds), R.c.subscriber_id.is_not(None)
    )


def _last_sent_events(issue_id: int, kind: str) -> Any:
    """Readers with a ``kind`` event after this issue reached them and before any later one
    did, for the issue's newsletter or for the whole address."""
    later = D.alias("later")
    newsletter = select(I.c.newsletter_id).where(I.c.id == issue_id).scalar_subquery()
    started = select(I.c.send_started_at).where(I.c.id == issue_id).scalar_subquery()
    return (
        select(EV.c.subscriber_id)
        .select_from(EV.join(D, D.c.subscriber_id == EV.c.subscriber_id))
        .where(
            D.c.issue_id == issue_id,
            D.c.status == DeliveryStatus.sent,
            EV.c.kind == kind,
            # implied by the next line; lets the (at, kind, newsletter_id) index bound the read
            EV.c.at >= started,
            EV.c.at >= D.c.sent_at,
            or_(EV.c.newsletter_id.is_(None), EV.c.newsletter_id == newsletter),
            ~exists().where(
                and_(
                    later.c.subscriber_id == D.c.subscriber_id,
                    later.c.status == DeliveryStatus.sent,
                    later.c.sent_at > D.c.sent_at,
                    later.c.sent_at <= EV.c.at,
                )
            ),
        )
    )


def _unsubscribed(issue_id: int) -> Any:
    newsletter = select(I.c.newsletter_id).where(I.c.id == issue_id).scalar_subquery()
    started = select(I.c.send_started_at).where(I.c.id == issue_id).scalar_subquery()
    return select(EV.c.subscriber_id).where(
        EV.c.kind == "unsubscribe",
        EV.c.newsletter_id == newsletter,
        # the (at, kind, newsletter_id) index bounds the read to the events since the send
        or_(started.is_(None), EV.c.at >= started),
        EV.c.detail["issue_id"].as_integer() == issue_id,
    )
