"""The ledger's state: leases that ran out, rows due now, and finishing an issue."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, func, or_, select, update
from sqlmodel import Session

from newsletter.models import DeliveryStatus, IssueStatus, moving, utcnow
from newsletter.sending import local_time
from newsletter.sending.ledger_results import SENDING
from newsletter.tables import D, I

log = logging.getLogger(__name__)


def requeue_expired(session: Session, *, now: datetime | None = None) -> int:
    """Rows whose lease ran out (their worker died) go back to pending."""
    result = session.execute(
        update(D)
        .where(
            moving(D.c.status, DeliveryStatus.pending, among=SENDING),
            D.c.lease_until < (now or utcnow()),
        )
        .values(status=DeliveryStatus.pending, lease_until=None, lease_token=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def ready_count(session: Session, *, issue_id: int, now: datetime | None = None) -> int:
    """Pending rows that are due now."""
    local = local_time.due_filter(session, issue_id, now)
    now = now or utcnow()
    return int(
        session.execute(
            select(func.count())
            .select_from(D)
            .where(
                D.c.issue_id == issue_id,
                D.c.status == DeliveryStatus.pending,
                or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= now),
                *local,
            )
        ).scalar_one()
    )


def has_ready(session: Session, *, issue_id: int, now: datetime | None = None) -> bool:
    """Whether any pending row is due now (the first in the claims' order: stops there, unlike
    a count; as an EXISTS, PostgreSQL scanned a local-time ledger between two waves whole)."""
    local = local_time.due_filter(session, issue_id, now)
    now = now or utcnow()
    first = (
        select(D.c.id)
        .where(
            D.c.issue_id == issue_id,
            D.c.status == DeliveryStatus.pending,
            or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= now),
            *local,
        )
        .order_by(*local_time.due_order(local))
        .limit(1)
    )
    return session.execute(first).first() is not None


def finish_if_done(session: Session, *, issue_id: int) -> bool:
    """sending -> sent once no row is pending or in flight; True when this call finished it."""
    open_rows = exists().where(
        D.c.issue_id == issue_id,
        D.c.status.in_([DeliveryStatus.pending, DeliveryStatus.sending]),
    )
    result = session.execute(
        update(I)
        .where(
            I.c.id == issue_id,
            moving(I.c.status, IssueStatus.sent, among=[IssueStatus.sending]),
            ~open_rows,
        )
        .values(status=IssueStatus.sent, sent_at=utcnow())
    )
    finished = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    if finished:
        log.info("issue %s: sent", issue_id, extra={"issue_id": issue_id})
    return finished


def sending_issue_ids(session: Session) -> list[int]:
    return list(
        session.execute(select(I.c.id).where(I.c.status == IssueStatus.sending)).scalars().all()
    )


def in_flight(session: Session, *, issue_id: int) -> bool:
    sending = exists().where(D.c.issue_id == issue_id, D.c.status == DeliveryStatus.sending)
    return bool(session.execute(select(sending)).scalar())
