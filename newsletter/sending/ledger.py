"""The delivery ledger: claim batches under a lease, record results, finish.

One ``Delivery`` row per (issue, subscriber) is the source of truth; Celery only carries ids. A
row moves pending -> sending (claimed, leased) -> sent | failed | pending again (retry later).
A lease that runs out (a killed worker) puts the row back to pending; the Message-ID stays the
one derived from (issue, subscriber), so a re-sent copy is recognisably the same message.

Here: claiming and renewing leases, and releasing rows unsent; the results are recorded in
``ledger_results``, the state (due rows, expired leases, finishing) read in ``ledger_state``;
both are re-exported, so callers name one ``ledger``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from newsletter.models import DeliveryStatus, IssueStatus, SubscriptionStatus, moving, utcnow
from newsletter.sending import driver_sql, local_time
from newsletter.sending.ledger_results import SENDING
from newsletter.sending.ledger_results import Executor as Executor
from newsletter.sending.ledger_results import mark_bounced as mark_bounced
from newsletter.sending.ledger_results import record_failed as record_failed
from newsletter.sending.ledger_results import record_retry as record_retry
from newsletter.sending.ledger_results import record_sent as record_sent
from newsletter.sending.ledger_results import record_sent_statement as record_sent_statement
from newsletter.sending.ledger_results import record_skipped as record_skipped
from newsletter.sending.ledger_state import finish_if_done as finish_if_done
from newsletter.sending.ledger_state import has_ready as has_ready
from newsletter.sending.ledger_state import in_flight as in_flight
from newsletter.sending.ledger_state import ready_count as ready_count
from newsletter.sending.ledger_state import requeue_expired as requeue_expired
from newsletter.sending.ledger_state import sending_issue_ids as sending_issue_ids
from newsletter.statuses import NOT_STARTED, IssueKind
from newsletter.tables import SUB, D, I, S

_DUE = (DeliveryStatus.pending,)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    attempts: int
    active: bool  # still subscribed now; a row whose subscriber left since the start is skipped
    lease: str = ""  # the claim's token: only its holder may record the row's result
    variant: int | None = None  # its subject test variant (None: the issue's subject)
    language: str | None = None  # the reader's language (their edition; None: the newsletter's)


# ---------------------------------------------------------------- claiming and recording


def claimable() -> ColumnElement[bool]:
    """Issues whose pending rows may be claimed: sending; a standing welcome not cancelled; sent
    (its only pending rows are late ones: the latest issue sent with a welcome)."""
    standing = and_(I.c.kind == IssueKind.welcome, I.c.status.in_(list(NOT_STARTED)))
    return or_(I.c.status.in_([IssueStatus.sending, IssueStatus.sent]), standing)


def still_claimable(session: Executor, *, issue_id: int) -> bool:
    """Whether the issue's rows may still go out (a batch looks between messages)."""
    if driver_sql.usable(session):  # the sender's autocommit connection on PostgreSQL
        return bool(driver_sql.value(session, _STILL_CLAIMABLE_PG, (issue_id,)))
    return bool(session.execute(_STILL_CLAIMABLE, {"issue": issue_id}).scalar())


# built once: a batch asks every few messages
_STILL_CLAIMABLE = select(exists().where(I.c.id == bindparam("issue"), claimable()))
# the same for psycopg itself (``driver_sql``), as ``claimable`` words it
_STILL_CLAIMABLE_PG = driver_sql.statement(
    "SELECT EXISTS (SELECT 1 FROM issue WHERE id = %s AND (status IN ({live}) "
    "OR kind = {welcome} AND status IN ({not_started})))",
    live=[IssueStatus.sending, IssueStatus.sent],
    welcome=[IssueKind.welcome],
    not_started=list(NOT_STARTED),
)


def claim(
    session: Session, *, issue_id: int, limit: int, lease_seconds: int, now: datetime | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due pending rows of a sending issue; commit before sending them.

    Due: not waiting for a retry (``next_attempt_at``), nor for its local time (``due_at``).
    The rows carry a fresh lease token: if the lease runs out and another batch claims a row,
    the first batch can no longer record (nor release) it.
    """
    local = local_time.due_filter(session, issue_id, now)  # a local-time send: due rows only
    now = now or utcnow()
    token = uuid.uuid4().hex
    due = (
        select(D.c.id)
        .where(
            D.c.issue_id == issue_id,
            D.c.status == DeliveryStatus.pending,
            or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= now),
            *local,
            exists().where(I.c.id == issue_id, claimable()),
        )
        .order_by(*local_time.due_order(local))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # concurrent claimers take disjoint rows
    # MATERIALIZED: run the LIMIT once; as an IN (subquery) PostgreSQL may re-run it per row
    # and claim more than `limit` rows
    picked = due.cte("picked").prefix_with("MATERIALIZED")
    rows = session.execute(
        update(D)
        .where(D.c.id == picked.c.id, moving(D.c.status, DeliveryStatus.sending, among=_DUE))
        .values(
            status=DeliveryStatus.sending,
            lease_until=now + timedelta(seconds=lease_seconds),
            lease_token=token,
            attempts=D.c.attempts + 1,
        )
        .returning(D.c.id, D.c.subscriber_id, D.c.attempts, D.c.variant)
    ).all()
    return _with_recipients(session, issue_id, rows, token)


def renew(
    session: Executor, *, delivery_ids: list[int], lease: str, lease_seconds: int
) -> set[int]:
    """Extend the lease of rows this claim still holds; returns their ids (the others are lost)."""
    if not delivery_ids:
        return set()
    rows = session.execute(
        update(D)
        .where(
            D.c.id.in_(delivery_ids),
            D.c.status == DeliveryStatus.sending,
            D.c.lease_token == lease,
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .returning(D.c.id)
    ).all()
    return {r.id for r in rows}


def _with_recipients(
    session: Session, issue_id: int, rows: Sequence[Any], token: str
) -> list[Claimed]:
    if not rows:
        return []
    ids = [r.subscriber_id for r in rows]
    if session.get_bind().dialect.name == "postgresql":  # one statement, prepared by psycopg
        people = session.execute(_PEOPLE_PG, {"issue": issue_id, "ids": ids}).all()
    else:
        newsletter_id = select(I.c.newsletter_id).where(I.c.id == issue_id).scalar_subquery()
        people = session.execute(_people(newsletter_id).where(SUB.c.id.in_(ids))).all()
    by_id = {p.id: p for p in people}
    claimed = []
    for r in sorted(rows, key=lambda r: r.id):
        person = by_id.get(r.subscriber_id)
        claimed.append(
            Claimed(
                delivery_id=r.id,
                subscriber_id=r.subscriber_id,
                email=person.email if person else "",
                name=person.name if person else "",
                attempts=r.attempts,
                active=person is not None and person.status == SubscriptionStatus.active,
                lease=token,
                variant=r.variant,
                language=(person.language or None) if person else None,
            )
        )
    return claimed


def _people(newsletter_id: Any) -> Select[Any]:
    """Subscribers with their subscription to ``newsletter_id`` (a value or a subquery)."""
    return (
        select(SUB.c.id, SUB.c.email, SUB.c.name, SUB.c.language, S.c.status)
        .select_from(SUB)
        .join(S, and_(S.c.subscriber_id == SUB.c.id, S.c.newsletter_id == newsletter_id))
    )


# PostgreSQL: a batch's ids as one array, so the statement's text is the same for every batch
# (an IN list of 200 values was parsed and planned again by the server each time, 3.7 ms)
_PEOPLE_PG = _people(
    select(I.c.newsletter_id).where(I.c.id == bindparam("issue")).scalar_subquery()
).where(SUB.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer))))


def release(session: Executor, *, delivery_ids: list[int], lease: str | None = None) -> int:
    """Give claimed rows back unsent (the issue was paused or cancelled mid-batch)."""
    if not delivery_ids:
        return 0
    where: list[ColumnElement[bool]] = [D.c.id.in_(delivery_ids)]
    if lease is not None:
        where.append(D.c.lease_token == lease)
    result = session.execute(
        update(D)
        .where(*where, moving(D.c.status, DeliveryStatus.pending, among=SENDING))
        .values(
            status=DeliveryStatus.pending,
            lease_until=None,
            lease_token=None,
            attempts=D.c.attempts - 1,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
