"""The ledger's results: what became of a claimed row, recorded by the claim that holds it.

A row in flight (``sending``, or ``cancelled`` while in flight) becomes sent, skipped, failed, or
pending again for a retry; with a lease token only the claim holding the row may record it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from newsletter.models import DeliveryStatus, SubscriptionStatus, moving, utcnow
from newsletter.retries import backoff
from newsletter.sending import driver_sql
from newsletter.statuses import sources
from newsletter.tables import D, I, S

#: results are recorded on a Session or, by the sender, on an autocommit Connection
Executor = Session | Connection


#: rows a claim may still record a result on: in flight, or cancelled while in flight (a
#: cancel settles rows being sent at once, keeping their lease, so the true outcome of a
#: message that did leave is still recorded)
IN_HAND = (DeliveryStatus.sending, DeliveryStatus.cancelled)
SENDING = (DeliveryStatus.sending,)


def _from_hand(to: Any) -> Any:
    """Rows in hand that may take ``to`` (a CASE of retry-or-stay-cancelled: both may)."""
    if isinstance(to, DeliveryStatus):
        return moving(D.c.status, to, among=IN_HAND)
    return D.c.status.in_(IN_HAND)  # the CASE: sending -> pending, cancelled -> cancelled


def _finish_row(session: Executor, delivery_id: int, lease: str | None, **values: Any) -> bool:
    """Record a result on a row in flight; with ``lease``, only if that claim still holds it."""
    to = values["status"]
    where = [D.c.id == delivery_id]
    if lease is not None:
        where += [_from_hand(to), D.c.lease_token == lease]
    elif isinstance(to, DeliveryStatus):
        where.append(moving(D.c.status, to, among=SENDING))
    else:  # the retry's CASE: a row in flight goes back to pending
        where.append(moving(D.c.status, DeliveryStatus.pending, among=SENDING))
    result = session.execute(
        update(D)
        .where(*where)
        .values(lease_until=None, lease_token=None, updated_at=utcnow(), **values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_sent(
    session: Executor,
    *,
    delivery_id: int,
    message_id: str,
    response: str,
    lease: str | None = None,
) -> bool:
    if lease is not None:  # the sender's hot path: one statement built once, parameters only
        if driver_sql.usable(session):  # PostgreSQL: psycopg's prepared statement
            sql, values = record_sent_statement(
                delivery_id=delivery_id, message_id=message_id, response=response, lease=lease
            )
            return driver_sql.rowcount(session, sql, values) == 1
        now, response = utcnow(), response[:1000]
        result = session.execute(
            _RECORD_SENT,
            {"rid": delivery_id, "lease": lease, "mid": message_id, "resp": response, "now": now},
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
    return _finish_row(
        session,
        delivery_id,
        lease,
        status=DeliveryStatus.sent,
        message_id=message_id,
        smtp_response=response[:1000],
        sent_at=utcnow(),
    )


def record_sent_statement(
    *, delivery_id: int, message_id: str, response: str, lease: str
) -> tuple[str, tuple[Any, ...]]:
    """PostgreSQL (psycopg): ``record_sent``'s statement and its values, for a claim's row; the
    sender writes it ahead of its reply (``Recorder.ahead``). It changes 1 row, or 0 when the
    claim no longer holds it."""
    now = utcnow()
    return _RECORD_SENT_PG, (message_id, response[:1000], now, now, delivery_id, lease)


# building an update() per message cost more CPU than the SMTP exchange (166 us vs 42 us)
_RECORD_SENT = (
    update(D)
    .where(
        D.c.id == bindparam("rid"),
        moving(D.c.status, DeliveryStatus.sent, among=IN_HAND),
        D.c.lease_token == bindparam("lease"),
    )
    .values(
        status=DeliveryStatus.sent,
        message_id=bindparam("mid"),
        smtp_response=bindparam("resp"),
        sent_at=bindparam("now", type_=D.c.sent_at.type),
        updated_at=bindparam("now", type_=D.c.sent_at.type),
        lease_until=None,
        lease_token=None,
    )
)


# the same statement for psycopg (``driver_sql``): positional parameters, and the statuses it
# may move from written into it (from the moves table, as ``moving`` does), not an array
# parameter: psycopg converts each parameter on every call
_RECORD_SENT_PG = driver_sql.statement(
    "UPDATE delivery SET status = {to}, message_id = %s, smtp_response = %s, sent_at = %s, "
    "updated_at = %s, lease_until = NULL, lease_token = NULL "
    "WHERE id = %s AND status IN ({among}) AND lease_token = %s",
    to=[DeliveryStatus.sent],
    among=sources(DeliveryStatus.sent, among=IN_HAND),
)


def record_skipped(
    session: Executor, *, delivery_id: int, reason: str, lease: str | None = None
) -> bool:
    return _finish_row(
        session, delivery_id, lease, status=DeliveryStatus.skipped, smtp_response=reason
    )


def record_failed(
    session: Executor, *, delivery_id: int, response: str, lease: str | None = None
) -> bool:
    return _finish_row(
        session, delivery_id, lease, status=DeliveryStatus.failed, smtp_response=response[:1000]
    )


def record_retry(
    session: Executor,
    *,
    delivery_id: int,
    attempts: int,
    response: str,
    max_attempts: int,
    base_seconds: float,
    lease: str | None = None,
    counted: bool = True,
) -> bool:
    """A temporary failure: back to pending for later, or failed once attempts run out.
    Not ``counted`` (no server was reached: the relays were out), the try is given back: a
    relay's outage never uses up a message's tries (the circuit breaker pauses the send)."""
    if counted and attempts >= max_attempts:
        return record_failed(
            session, delivery_id=delivery_id, response=f"gave up: {response}", lease=lease
        )
    # a row cancelled while in flight stays cancelled rather than waiting for a retry
    again = case(
        (D.c.status == DeliveryStatus.cancelled, DeliveryStatus.cancelled.value),
        else_=DeliveryStatus.pending.value,
    )
    return _finish_row(
        session,
        delivery_id,
        lease,
        status=again,
        smtp_response=response[:1000],
        next_attempt_at=utcnow() + backoff(attempts, base=base_seconds),
        **({} if counted else {"attempts": D.c.attempts - 1}),
    )


def mark_bounced(session: Executor, *, subscriber_id: int, issue_id: int) -> None:
    """A 5.1.x reply: the mailbox does not exist, so the address is not mailed again."""
    newsletter_id = select(I.c.newsletter_id).where(I.c.id == issue_id).scalar_subquery()
    session.execute(
        update(S)
        .where(
            S.c.subscriber_id == subscriber_id,
            S.c.newsletter_id == newsletter_id,
            moving(S.c.status, SubscriptionStatus.bounced),
        )
        .values(status=SubscriptionStatus.bounced, updated_at=utcnow())
    )
