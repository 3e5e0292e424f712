"""One batch of a running send: claim rows from the ledger, send each, record each outcome.

Called by the Celery task ``send_batch`` in ``worker/`` and directly by tests. A batch sends its
rows and, while due rows remain, asks for one follow-up batch, so ``parallelism`` chains work an
issue. Each message: render (the issue's template, personal values), sign, hand to the
transport; ``outcomes.classify`` names what happened and ``outcomes.record`` writes it, right
after the server's reply; the webhook event, the circuit breaker and the rate limiter read the
same ``Outcome``. The per-message loop is ``send_loop.Run``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from newsletter import webhooks
from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.exceptions import DatabaseUnavailable, NewsletterError
from newsletter.models import Issue
from newsletter.sending import controls, counters, ledger, pooled, relays
from newsletter.sending.breaker import CircuitBreaker, breaker_for
from newsletter.sending.hands import Hands
from newsletter.sending.prepare import Prepared, prepared
from newsletter.sending.ratelimit import RateLimiter, limiter_for
from newsletter.sending.recorder import Recorder
from newsletter.sending.results import BatchResult as BatchResult
from newsletter.sending.send_loop import STATUS_CHECK_EVERY as STATUS_CHECK_EVERY
from newsletter.sending.send_loop import Run
from newsletter.transports import Transport
from newsletter.transports.pool import TransportPool

log = logging.getLogger(__name__)


def run_batch(
    settings: Settings,
    *,
    issue_id: int,
    transport: Transport,
    limiter: RateLimiter | None = None,
    breaker: CircuitBreaker | None = None,
    pool: TransportPool | None = None,
) -> BatchResult:
    """Claim one batch, send each message, record each reply as soon as it comes.

    Each result is its own autocommit statement (one round trip; on PostgreSQL without waiting
    for the WAL flush): a killed worker loses at most the messages it was sending (one, or with
    a ``pool`` of several connections one per connection), which come back after their lease
    with the same Message-IDs. With a ``pool`` the messages are built here and sent on its
    connections, up to one in flight per connection; their replies are recorded in order.

    A database restart mid-batch is ridden out (``recorder``: a new connection, the statement
    again); one that lasts longer than a lease, or one before the sending began, raises
    ``DatabaseUnavailable`` (retry the task: the rows held come back after their lease).
    """
    try:
        return _run_batch(settings, issue_id, transport, limiter, breaker, pool)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"the database is unreachable: {exc.orig}") from exc


def _run_batch(
    settings: Settings,
    issue_id: int,
    transport: Transport,
    limiter: RateLimiter | None,
    breaker: CircuitBreaker | None,
    pool: TransportPool | None,
) -> BatchResult:
    engine = get_engine(settings.database_url)
    limiter = limiter or limiter_for(
        settings.shared_redis_url, settings.send_rate, settings.send_burst
    )
    breaker = breaker or breaker_for(settings)
    result = BatchResult()
    with Session(engine, expire_on_commit=False) as session:
        claimed = ledger.claim(
            session,
            issue_id=issue_id,
            limit=settings.batch_size,
            lease_seconds=settings.lease_seconds,
        )
        session.commit()  # the lease must be visible before the first message leaves
        result.claimed = len(claimed)
        rec = Recorder(engine, patience=settings.lease_seconds)  # then the rows are the tick's
        if claimed:
            try:
                prep = _prepare_or_pause(session, issue_id, settings, claimed, result, transport)
                generation = _generation(session, issue_id)
                session.commit()  # the session holds no connection while the batch sends
            except OperationalError:  # nothing sent yet: the rows go back for the task's retry
                ids = [r.delivery_id for r in claimed]
                with rec:
                    rec.call(ledger.release, delivery_ids=ids, lease=claimed[0].lease)
                raise
            if prep is not None:
                hands = Hands(
                    engine,
                    rec,
                    newsletter_id=prep.issue.newsletter_id,
                    connections=pool.size if pool else 1,
                    gate=relays.health_of(transport),
                )
                with rec, hands:
                    _tidy_counters(rec, issue_id)
                    run = Run(settings, prep, transport, limiter, breaker, result, rec)
                    run.generation = generation
                    run.hooks = rec.call(webhooks.enabled_events)  # cached; empty: no webhooks
                    if pool is not None and pool.size > 1:
                        pooled.send_all(run, claimed, pool, hands)
                    else:
                        run.send_all(claimed, hands)
    _wrap_up(engine, issue_id, result)
    _log_batch(issue_id, result)
    return result


#: at most one ``counters.tidy`` a process in this many seconds: a batch of one row (a welcome
#: email, a small wave of a local-time send) would otherwise pay a VACUUM for one message
TIDY_EVERY_SECONDS = 1.0
_tidied_at = -TIDY_EVERY_SECONDS


def _tidy_counters(rec: Recorder, issue_id: int) -> None:
    """The counter rows' dead versions cleared (``counters.tidy``) at the start of a batch, at
    most once every ``TIDY_EVERY_SECONDS``; a failure is logged and the batch sends anyway."""
    global _tidied_at
    now = time.monotonic()
    if now - _tidied_at < TIDY_EVERY_SECONDS:
        return
    _tidied_at = now  # threads of one process (the demo) may both tidy at once: harmless
    try:
        rec.call(counters.tidy)
    except DBAPIError as exc:
        log.warning("issue %s: counters not tidied: %s", issue_id, exc.orig)


def _log_batch(issue_id: int, result: BatchResult) -> None:
    if not result.claimed:  # one line per batch, never per message
        return
    log.info(
        "issue %s: batch done, %s sent, %s failed, %s retried, %s skipped",
        issue_id,
        result.sent,
        result.failed,
        result.retried,
        result.skipped,
        extra={
            "issue_id": issue_id,
            "claimed": result.claimed,
            "sent": result.sent,
            "failed": result.failed,
            "retried": result.retried,
            "skipped": result.skipped,
            "lost": result.lost,
            "stopped": result.stopped,
        },
    )


def _prepare_or_pause(
    session: Session,
    issue_id: int,
    settings: Settings,
    claimed: list[ledger.Claimed],
    result: BatchResult,
    transport: Transport,
) -> Prepared | None:
    """The issue's message template (the transport routed to its newsletter's relay), or None
    after pausing the issue with the reason.

    A message that cannot be built (a subject with a line break stored before that was refused,
    a DKIM key that cannot sign) fails the same way for every recipient: the rows go back to
    pending and the issue pauses, its status saying why, instead of every batch crashing while
    the status still says "sending".
    """
    try:
        prep = prepared(session, issue_id, settings)
        relays.route(transport, prep.newsletter.relay)
        return prep
    except NewsletterError as exc:
        reason = f"cannot build the message: {exc}"[:1000]
        ledger.release(
            session, delivery_ids=[r.delivery_id for r in claimed], lease=claimed[0].lease
        )
        paused = controls.trip(session, issue_id=issue_id, reason=reason)
        session.commit()
        if paused:
            log.error("issue %s paused: %s", issue_id, reason, extra={"issue_id": issue_id})
        result.stopped = True
        return None


def _generation(session: Session, issue_id: int) -> datetime | None:
    issue = session.get(Issue, issue_id, populate_existing=True)
    return issue.status_changed_at if issue else None


def _wrap_up(engine: Engine, issue_id: int, result: BatchResult) -> None:
    with Session(engine) as session:
        result.finished = ledger.finish_if_done(session, issue_id=issue_id)
        # a batch that claimed nothing (the issue is paused, or other chains took the rows)
        # ends its chain; the tick restarts an issue that still has work
        result.more = (
            not result.stopped
            and result.claimed > 0
            and ledger.has_ready(session, issue_id=issue_id)
        )
        session.commit()
