"""One batch of a running send: claim rows from the ledger, send each, record each outcome.

Called by the Celery task ``send_batch`` in ``worker/`` and directly by tests. A batch sends its
rows and, while due rows remain, asks for one follow-up batch, so ``parallelism`` chains work an
issue. Each message: render (the issue's template, personal values), sign, hand to the
transport; ``outcomes.classify`` names what happened and ``outcomes.record`` writes it, right
after the server's reply; the webhook event, the circuit breaker and the rate limiter read the
same ``Outcome``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from newsletter import webhooks
from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.exceptions import DatabaseUnavailable, InvalidInput, NewsletterError, TransportError
from newsletter.models import Issue, utcnow
from newsletter.sending import controls, edition_pick, ledger, outcomes, pooled, probe, relays
from newsletter.sending.breaker import CircuitBreaker, breaker_for
from newsletter.sending.outcomes import Kind, Outcome, RetryPolicy
from newsletter.sending.prepare import Prepared, prepared
from newsletter.sending.ratelimit import LimiterUnavailable, RateLimiter, limiter_for
from newsletter.sending.recipients import recipient
from newsletter.sending.recorder import Recorder
from newsletter.transports import Transport
from newsletter.transports.pool import TransportPool

#: how many messages between two looks at the issue's status (pause/cancel take effect here)
STATUS_CHECK_EVERY = 25
log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0  # rows whose lease ran out before this batch reached them (not sent)
    stopped: bool = False  # the issue was paused or cancelled mid-batch
    more: bool = False  # due rows remain: the caller should run another batch
    finished: bool = False  # this batch finished the issue

    def count(self, outcome: Outcome) -> None:
        if outcome.kind is Kind.sent:
            self.sent += 1
        elif outcome.kind is Kind.retry:
            self.retried += 1
        elif outcome.kind is Kind.skipped:
            self.skipped += 1
        else:
            self.failed += 1


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
                with rec:
                    run = _Run(settings, prep, transport, limiter, breaker, result, rec)
                    run.generation = generation
                    run.hooks = rec.call(webhooks.enabled_events)  # cached; empty: no webhooks
                    if pool is not None and pool.size > 1:
                        pooled.send_all(run, claimed, pool)
                    else:
                        run.send_all(claimed)
    _wrap_up(engine, issue_id, result)
    _log_batch(issue_id, result)
    return result


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


class _Run:
    """One batch's sending loop."""

    def __init__(
        self,
        settings: Settings,
        prep: Prepared,
        transport: Transport,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        result: BatchResult,
        rec: Recorder,
    ) -> None:
        self.settings, self.prep, self.transport, self.rec = settings, prep, transport, rec
        self.limiter, self.breaker, self.result = limiter, breaker, result
        self.issue_id: int = prep.issue.id  # type: ignore[assignment]
        self.generation: datetime | None = None
        self.tokens = 0
        self.hooks: frozenset[str] = frozenset()  # webhook events some endpoint wants
        self.chunk = max(1, min(10, getattr(limiter, "burst", 10) // 4))
        self.retry = RetryPolicy(settings.max_attempts, settings.retry_base_seconds)

    def send_all(self, claimed: list[ledger.Claimed]) -> None:
        lease = claimed[0].lease
        held = {r.delivery_id for r in claimed}
        renewed = time.monotonic()
        for index, row in enumerate(claimed):
            rest = [r.delivery_id for r in claimed[index:]]
            if self._must_stop(index, row):
                self.rec.call(ledger.release, delivery_ids=rest, lease=lease)
                self.rec.call(controls.settle_cancelled, issue_id=self.issue_id)
                self.result.stopped = True
                return
            if time.monotonic() - renewed > self.settings.lease_seconds / 3:
                # a slow batch (rate limit, slow server) keeps its rows; rows whose lease ran
                # out anyway belong to another batch now and are not sent from here
                held = self.rec.call(
                    ledger.renew,
                    delivery_ids=rest,
                    lease=lease,
                    lease_seconds=self.settings.lease_seconds,
                )
                renewed = time.monotonic()
            if row.delivery_id not in held:
                self.result.lost += 1
                continue
            self.handle(row)
            if self.result.stopped:  # the circuit breaker tripped
                self.rec.call(ledger.release, delivery_ids=rest[1:], lease=lease)
                return

    def _must_stop(self, index: int, row: ledger.Claimed) -> bool:
        """Paused or cancelled (looked at every few messages), or no rate budget to be had."""
        if index and index % STATUS_CHECK_EVERY == 0 and not self._still_sending():
            return True
        if self.tokens == 0 and row.active:
            try:
                self.limiter.acquire(self.chunk)
                self.tokens = self.chunk
            except LimiterUnavailable as exc:
                log.warning(
                    "issue %s: %s; batch stopped",
                    self.issue_id,
                    exc,
                    extra={"issue_id": self.issue_id},
                )
                return True
        return False

    def _still_sending(self) -> bool:
        """Sending (or a standing issue, or a sent one's late rows): not paused nor cancelled."""
        return self.rec.call(ledger.still_claimable, issue_id=self.issue_id)

    def handle(self, row: ledger.Claimed) -> None:
        """Send one row, record its outcome, and let the rest of the batch react to it."""
        outcome = self.send_one(row)
        if outcome.delivered:
            self.tokens -= 1
        self.settle(row, outcome)

    def settle(self, row: ledger.Claimed, outcome: Outcome) -> None:
        """Record one row's outcome and let the rest of the batch react to it."""
        recorded = self.rec.call(
            outcomes.record, row, outcome, issue_id=self.issue_id, retry=self.retry
        )
        if not recorded and outcome.kind is Kind.sent:
            log.warning(
                "delivery %s: sent after its lease was lost",
                row.delivery_id,
                extra={"issue_id": self.issue_id, "delivery_id": row.delivery_id},
            )
        self.result.count(outcome)
        if outcome.kind in (Kind.failed, Kind.local, Kind.bounced):
            _log_failed(self.issue_id, row.delivery_id, outcome.response)
        event = outcomes.webhook_event(outcome, row, max_attempts=self.retry.max_attempts)
        if event is not None:
            self.hook(event, row, outcome)
        if outcome.throttled:
            self.limiter.throttled()
        if outcome.server_trouble is not None:
            self.observe(
                failed=outcome.server_trouble,
                reply=outcome.response,
                permanent=outcome.kind is Kind.failed,
            )

    def build(self, row: ledger.Claimed) -> Outcome | tuple[str, bytes]:
        """(Message-ID, the signed message) for one row, or the outcome that stops it here."""
        if not row.active:
            return Outcome(Kind.skipped, "no longer subscribed")
        prep = self.prep
        try:
            person = recipient(
                self.settings,
                prep,
                subscriber_id=row.subscriber_id,
                email=row.email,
                name=row.name,
                variant=row.variant,
            )
            template = edition_pick.template_for(self.settings, self.rec, prep, row.subscriber_id)
            if prep.signer is None:
                mid, data = template.render(person)
            else:
                mid, data, relaxed = template.render_relaxed(person)
                data = prep.signer.sign(data, relaxed_body_of_it=relaxed)
        except InvalidInput as exc:  # our formatting problem, never the recipient's bounce
            return Outcome(Kind.local, f"local: {exc}")
        return mid, data

    def send_one(self, row: ledger.Claimed) -> Outcome:
        """Render, sign and hand over one message; what became of it (nothing recorded yet)."""
        built = self.build(row)
        if isinstance(built, Outcome):
            return built
        mid, data = built
        try:
            reply = self.transport.send(self.settings.bounce_address, row.email, data)
        except TransportError as exc:
            return outcomes.classify(exc, mid)
        return Outcome(Kind.sent, reply, mid)

    def hook(self, event: str, row: ledger.Claimed, outcome: Outcome) -> None:
        """Queue a webhook event; a no-op unless an endpoint wants it. Never stops the send."""
        if event not in self.hooks:
            return
        payload = {
            "issue_id": self.issue_id,
            "delivery_id": row.delivery_id,
            "subscriber_id": row.subscriber_id,
            "email": row.email,
            "message_id": outcome.message_id,
            "smtp_response": outcome.response[:1000],
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            self.rec.once(webhooks.emit, event, payload)  # not twice: no duplicate event
        except SQLAlchemyError:
            log.exception("delivery %s: %s webhook not queued", row.delivery_id, event)

    def observe(self, *, failed: bool, reply: str = "", permanent: bool = False) -> None:
        verdict = self.breaker.record(
            self.issue_id, self.generation, failed=failed, reply=reply, permanent=permanent
        )
        if verdict.tripped:
            # the relay down (temporary failures): probed later, and resumed when it answers
            probe_at = probe.first_probe_at(self.settings, utcnow()) if verdict.relay_down else None
            if self.rec.call(
                controls.trip, issue_id=self.issue_id, reason=verdict.reason, probe_at=probe_at
            ):
                log.warning(
                    "issue %s paused: %s",
                    self.issue_id,
                    verdict.reason,
                    extra={"issue_id": self.issue_id},
                )
            self.result.stopped = True


def _log_failed(issue_id: int, delivery_id: int, response: str) -> None:
    log.warning(
        "issue %s: delivery %s failed: %s",
        issue_id,
        delivery_id,
        response,
        extra={"issue_id": issue_id, "delivery_id": delivery_id, "response": response},
    )


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
