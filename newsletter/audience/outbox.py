"""The outbox of confirmation emails: a sign-up that commits has its email on record.

A sign-up (and an editor's "subscribe" or "resend") writes one ``ConfirmationOutbox`` row in its
own transaction (``record``). After the commit the web app publishes it at once and marks it
relayed (``relay``); when the queue is down the answer is the same and the row waits: the beat
relays every row not relayed by its ``next_attempt_at`` (``relay_due``), claiming a batch first
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: a guarded ``UPDATE``), so two beats never
relay one row twice. A row may still be relayed twice (published, then the mark was lost): the
task that sends it claims the row first (``claim_send``) and marks it sent (``finish_send``),
so the reader gets one email. The queue is a port (``Publish``): this module knows no Celery.

A row relayed and then lost (the worker holding its message was killed: Redis hands an unacked
message back only after the broker's visibility timeout, an hour; or its task gave up on a
database or relay that stayed away) is not left to that hour: the beat's relay puts a row that
was relayed ``STALE_SECONDS`` ago and is neither sent nor being sent (no live send lease) back
among the rows to relay (``requeue_stale``), at most ``MAX_ATTEMPTS`` times and only while its
link is still valid. A copy that was merely slow (a long queue) is then sent by whichever task
claims the row first; the other finds it sent and sends nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlmodel import Session

from newsletter import db
from newsletter.models import utcnow
from newsletter.tables import OB

log = logging.getLogger(__name__)

#: the web app's own try comes first: the beat leaves a new row alone this long
GRACE_SECONDS = 10
#: a beat's claim: rows it took and did not relay (it died) are due again after this
RELAY_LEASE_SECONDS = 60
BATCH = 100  # rows one claim takes
BATCHES_PER_RUN = 10  # a beat run relays at most this many batches (a backlog drains over runs)
ERROR_MAX = 500
KEEP_DAYS = 30  # a row relayed this long ago is deleted (its task ran long since)
#: a row relayed this long ago and neither sent nor being sent is relayed again (a lost task)
STALE_SECONDS = 300
MAX_ATTEMPTS = 10  # relays of one row (the web app's, the beat's and the re-relays)


@dataclass(frozen=True)
class ConfirmationRequest:
    """A confirmation email to send: who, for which newsletters, and what they agreed to;
    ``outbox_id`` is its row in the outbox (None: a request nobody recorded)."""

    subscriber_id: int
    newsletter_ids: tuple[int, ...]
    source: str
    consent_text_version: str
    outbox_id: int | None = None


#: publishes one confirmation on the queue (``worker.dispatch.celery_send_confirmation``)
Publish = Callable[[ConfirmationRequest], None]


# ---------------------------------------------------------------- recording


def record(
    session: Session, request: ConfirmationRequest | None, *, now: datetime | None = None
) -> ConfirmationRequest | None:
    """Put ``request`` in the outbox, in the caller's transaction; the request with its row id.

    None in, None out, after the same one statement matching nothing (a sign-up does the same
    work whether an email is due or not, so its timing tells no stranger which)."""
    now = now or utcnow()
    due = request is not None
    values = request or ConfirmationRequest(0, (), "", "")
    ids: Any = literal(list(values.newsletter_ids), JSON)
    if session.get_bind().dialect.name == "postgresql":
        ids = cast(ids, JSON)  # a bare parameter in a SELECT list would be text (SQLite: no CAST)
    row = select(
        literal(values.subscriber_id, Integer),
        ids,
        literal(values.source, String),
        literal(values.consent_text_version, String),
        literal(now, OB.c.created_at.type),
        literal(now + timedelta(seconds=GRACE_SECONDS), OB.c.next_attempt_at.type),
        literal(0, Integer),
    ).where(literal(due))
    columns = [
        "subscriber_id",
        "newsletter_ids",
        "source",
        "consent_text_version",
        "created_at",
        "next_attempt_at",
        "attempts",
    ]
    found = session.execute(
        insert(OB).from_select(columns, row).returning(OB.c.id)
    ).scalar_one_or_none()
    if request is None or found is None:
        return None
    return replace(request, outbox_id=int(found))


# ---------------------------------------------------------------- relaying


def relay(database_url: str, request: ConfirmationRequest, publish: Publish) -> bool:
    """The web app's try, after its commit: publish and mark the row relayed. False when the
    publish failed: the error goes on the row, due for the beat's next run (never raised)."""
    try:
        publish(request)
    except Exception as exc:  # a broker that is down: the beat relays the row later
        log.error(
            "confirmation email of subscriber %s not queued (outbox row %s, the beat relays it "
            "once the queue is back): %s",
            request.subscriber_id,
            request.outbox_id,
            exc,
        )
        if request.outbox_id is not None:
            with db.session_scope(database_url) as session:
                _failed(session, [request.outbox_id], exc, retry_at=utcnow())
        return False
    if request.outbox_id is not None:
        with db.session_scope(database_url) as session:
            _relayed(session, [request.outbox_id])
    return True


@dataclass(frozen=True)
class RelayRun:
    relayed: int
    failed: int


def relay_due(
    database_url: str,
    publish: Publish,
    *,
    batch: int = BATCH,
    valid_seconds: int = 7 * 86_400,
    now: datetime | None = None,
) -> RelayRun:
    """The beat's relay: claim the due rows a batch at a time, publish them, mark them relayed;
    stop at the first failed publish (the queue is down: the rest waits for the next run).
    Rows relayed and lost since (``requeue_stale``, links valid ``valid_seconds``) go again."""
    relayed = 0
    with db.session_scope(database_url) as session:
        prune(session, now=now)
        requeue_stale(session, valid_seconds=valid_seconds, now=now)
    for _ in range(BATCHES_PER_RUN):
        with db.session_scope(database_url) as session:
            claimed = claim_due(session, limit=batch, now=now)
        done: list[int] = []
        for index, request in enumerate(claimed):
            try:
                publish(request)
            except Exception as exc:
                log.warning("outbox row %s not relayed: %s", request.outbox_id, exc)
                rest = [r.outbox_id for r in claimed[index + 1 :] if r.outbox_id is not None]
                with db.session_scope(database_url) as session:
                    _relayed(session, done)
                    _failed(session, [request.outbox_id or 0], exc)
                    _release(session, rest)
                return RelayRun(relayed + len(done), 1)
            done.append(request.outbox_id or 0)
        with db.session_scope(database_url) as session:
            _relayed(session, done)
        relayed += len(done)
        if len(claimed) < batch:
            break
    return RelayRun(relayed, 0)


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete the rows relayed more than ``KEEP_DAYS`` ago; how many."""
    cutoff = (now or utcnow()) - timedelta(days=KEEP_DAYS)
    gone = session.execute(delete(OB).where(OB.c.relayed_at < cutoff))
    return int(gone.rowcount)  # type: ignore[attr-defined]


def requeue_stale(
    session: Session,
    *,
    stale_seconds: int = STALE_SECONDS,
    valid_seconds: int = 7 * 86_400,
    now: datetime | None = None,
) -> int:
    """Put back among the rows to relay every row relayed more than ``stale_seconds`` ago
    (and less than ``valid_seconds``: its link still works) that is not sent and that no live
    task holds, tried fewer than ``MAX_ATTEMPTS`` times; how many (one indexed UPDATE)."""
    now = now or utcnow()
    lost = session.execute(
        update(OB)
        .where(
            OB.c.sent_at.is_(None),
            OB.c.relayed_at < now - timedelta(seconds=stale_seconds),
            OB.c.relayed_at > now - timedelta(seconds=valid_seconds),
            or_(OB.c.send_lease_until.is_(None), OB.c.send_lease_until <= now),
            OB.c.attempts < MAX_ATTEMPTS,
        )
        .values(relayed_at=None, next_attempt_at=now, last_error="relayed again: no task sent it")
    )
    count = int(lost.rowcount)  # type: ignore[attr-defined]
    if count:
        log.warning("%s confirmation email(s) relayed and never sent: relayed again", count)
    return count


def claim_due(
    session: Session,
    *,
    limit: int = BATCH,
    lease_seconds: int = RELAY_LEASE_SECONDS,
    now: datetime | None = None,
) -> list[ConfirmationRequest]:
    """Lease up to ``limit`` rows not relayed whose time came (oldest first); commit, then
    publish them. A concurrent claimer takes other rows: PostgreSQL skips the rows another
    transaction locked; SQLite runs one writer at a time and the UPDATE checks the rows again."""
    now = now or utcnow()
    due = (
        select(OB.c.id)
        .where(OB.c.relayed_at.is_(None), OB.c.next_attempt_at <= now)
        .order_by(OB.c.next_attempt_at, OB.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # concurrent beats take disjoint rows
    # MATERIALIZED: run the LIMIT once (as an IN (subquery) PostgreSQL may re-run it per row)
    picked = due.cte("picked").prefix_with("MATERIALIZED")
    rows = session.execute(
        update(OB)
        .where(OB.c.id == picked.c.id, OB.c.relayed_at.is_(None), OB.c.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=lease_seconds), attempts=OB.c.attempts + 1)
        .returning(
            OB.c.id, OB.c.subscriber_id, OB.c.newsletter_ids, OB.c.source, OB.c.consent_text_version
        )
    ).all()
    return [
        ConfirmationRequest(
            int(r.subscriber_id),
            tuple(int(i) for i in r.newsletter_ids),
            str(r.source),
            str(r.consent_text_version),
            int(r.id),
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _relayed(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(
            update(OB)
            .where(OB.c.id.in_(ids), OB.c.relayed_at.is_(None))
            .values(relayed_at=utcnow(), last_error=None)
        )


def _failed(
    session: Session, ids: list[int], exc: BaseException, *, retry_at: datetime | None = None
) -> None:
    values: dict[str, Any] = {
        "attempts": OB.c.attempts + (1 if retry_at is not None else 0),
        "last_error": f"{type(exc).__name__}: {exc}"[:ERROR_MAX],
    }
    if retry_at is not None:  # the web app's failed try: due for the beat's next run
        values["next_attempt_at"] = retry_at
    session.execute(update(OB).where(OB.c.id.in_(ids), OB.c.relayed_at.is_(None)).values(values))


def _release(session: Session, ids: list[int]) -> None:
    """Rows a beat claimed and did not get to: due again at once (attempts not counted)."""
    if ids:
        session.execute(
            update(OB)
            .where(OB.c.id.in_(ids), OB.c.relayed_at.is_(None))
            .values(next_attempt_at=utcnow(), attempts=OB.c.attempts - 1)
        )


# ---------------------------------------------------------------- sending once


class Claim(StrEnum):
    go = "go"  # this task holds the row: send, then ``finish_send``
    sent = "sent"  # sent already (a second relay of one row): send nothing
    busy = "busy"  # another task is sending it now: try again after its lease
    gone = "gone"  # no such row (never committed, or pruned): send nothing


@dataclass(frozen=True)
class SendClaim:
    state: Claim
    token: str | None = None


def claim_send(
    session: Session, outbox_id: int, *, lease_seconds: int, now: datetime | None = None
) -> SendClaim:
    """Take the row for sending: one guarded UPDATE, so of two tasks with one row one sends."""
    now = now or utcnow()
    token = uuid.uuid4().hex
    taken = session.execute(
        update(OB)
        .where(
            OB.c.id == outbox_id,
            OB.c.sent_at.is_(None),
            or_(OB.c.send_lease_until.is_(None), OB.c.send_lease_until <= now),
        )
        .values(send_lease_until=now + timedelta(seconds=lease_seconds), send_token=token)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return SendClaim(Claim.go, token)
    sent = session.execute(select(OB.c.sent_at).where(OB.c.id == outbox_id)).first()
    if sent is None:
        return SendClaim(Claim.gone)
    return SendClaim(Claim.sent if sent.sent_at is not None else Claim.busy)


def finish_send(
    session: Session, outbox_id: int, token: str, *, now: datetime | None = None
) -> bool:
    """The email was handed over (or refused for good, or nothing was left to confirm): the
    row is done, whoever relays it again. False when the claim was lost meanwhile."""
    done = session.execute(
        update(OB)
        .where(OB.c.id == outbox_id, OB.c.send_token == token, OB.c.sent_at.is_(None))
        .values(sent_at=now or utcnow(), send_lease_until=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release_send(session: Session, outbox_id: int, token: str) -> None:
    """A temporary failure: the row may be taken again at once (by this task's retry)."""
    session.execute(
        update(OB)
        .where(OB.c.id == outbox_id, OB.c.send_token == token, OB.c.sent_at.is_(None))
        .values(send_lease_until=None, send_token=None)
    )


def waiting(session: Session) -> int:
    """Rows not relayed yet (for the log and the tests)."""
    return int(
        session.execute(
            select(func.count()).select_from(OB).where(OB.c.relayed_at.is_(None))
        ).scalar_one()
    )
