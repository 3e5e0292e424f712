"""One running send: batches claimed from the ledger, personalised, handed to the transport.

Called by the Celery tasks in ``worker/`` and directly by tests. A batch task sends its rows and,
while due rows remain, asks for one follow-up batch, so ``parallelism`` chains work an issue.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from newsletter import controls, delivery, suppression, webhooks
from newsletter.breaker import CircuitBreaker
from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.exceptions import (
    InvalidInput,
    NewsletterError,
    PermanentFailure,
    TemporaryFailure,
)
from newsletter.messages import MessageTemplate, Recipient, unsubscribe_mailto
from newsletter.models import Issue, IssueStatus, Newsletter, RenderedIssue
from newsletter.ratelimit import THROTTLE_CODES, LimiterUnavailable, RateLimiter, limiter_for
from newsletter.rendering import CompiledIssue
from newsletter.tokens import Purpose, make_token
from newsletter.transports import Transport

#: how many messages between two looks at the issue's status (pause/cancel take effect here)
STATUS_CHECK_EVERY = 25
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_CODES = frozenset({550, 551, 553})
log = logging.getLogger(__name__)


def is_bad_mailbox(code: int | None, response: str) -> bool:
    """5.1.x (bad address) is a bounce; 5.7.1 (policy) or 5.6.x (content) is not.

    Without an enhanced status code, only the mailbox reply codes 550/551/553 count.
    """
    enhanced = _ENHANCED.search(response)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in _MAILBOX_CODES


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


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class _Prepared:
    compiled_at: datetime
    newsletter: Newsletter
    issue: Issue
    template: MessageTemplate
    signer: Signer | None = None


#: templates of the issues this process sent lately (a worker lives through many issues)
_templates: dict[int, _Prepared] = {}
_TEMPLATES_KEPT = 8


def signer_for(settings: Settings) -> Signer | None:
    """The DKIM signer when a key is configured (a half-done configuration is an error)."""
    if not (settings.dkim_selector or settings.dkim_domain or settings.dkim_key_file):
        return None
    from newsletter.dkim import signer_from_settings

    return signer_from_settings(settings)


def prepared(session: Session, issue_id: int, settings: Settings) -> _Prepared:
    """The issue's message template, built once per process (the frozen issue never changes)."""
    frozen = session.get(RenderedIssue, issue_id)
    if frozen is None:
        raise InvalidInput(f"issue {issue_id} has not been started")
    cached = _templates.get(issue_id)
    if cached is not None and cached.compiled_at == frozen.compiled_at:
        return cached
    issue = session.get(Issue, issue_id)
    newsletter = session.get(Newsletter, issue.newsletter_id) if issue else None
    assert issue is not None and newsletter is not None
    compiled = CompiledIssue(frozen.subject, frozen.preheader, frozen.html, frozen.text)
    template = MessageTemplate(
        compiled=compiled, newsletter=newsletter, issue_id=issue_id, secret=settings.secret_key
    )
    while len(_templates) >= _TEMPLATES_KEPT:
        del _templates[next(iter(_templates))]
    _templates[issue_id] = _Prepared(
        frozen.compiled_at, newsletter, issue, template, signer_for(settings)
    )
    return _templates[issue_id]


def personal_links(settings: Settings, *, subscriber_id: int, newsletter_id: int) -> dict[str, str]:
    base = settings.base_url.rstrip("/")
    unsubscribe = make_token(settings.secret_key, Purpose.unsubscribe, subscriber_id, newsletter_id)
    preferences = make_token(settings.secret_key, Purpose.preferences, subscriber_id, None)
    return {
        "unsubscribe_url": f"{base}/unsubscribe/{unsubscribe}",
        "preferences_url": f"{base}/preferences/{preferences}",
        "unsubscribe_mailto": unsubscribe_mailto(settings.unsubscribe_mailbox, unsubscribe),
    }


def archive_url(settings: Settings, newsletter: Newsletter, issue: Issue) -> str:
    return f"{settings.base_url.rstrip('/')}/archive/{newsletter.slug}/{issue.number}"


def recipient_values(
    settings: Settings,
    newsletter: Newsletter,
    issue: Issue,
    *,
    subscriber_id: int,
    email: str,
    name: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """(template values, personal links) for one reader; the preview uses it too."""
    links = personal_links(
        settings,
        subscriber_id=subscriber_id,
        newsletter_id=newsletter.id,  # type: ignore[arg-type]
    )
    first = name.split()[0] if name.strip() else ""
    values = {
        "name": name,
        "greeting": f"Dear {first}," if first else "Dear reader,",
        "email": email,
        "unsubscribe_url": links["unsubscribe_url"],
        "preferences_url": links["preferences_url"],
        "view_url": archive_url(settings, newsletter, issue),
    }
    return values, links


def recipient(
    settings: Settings, prep: _Prepared, *, subscriber_id: int, email: str, name: str
) -> Recipient:
    values, links = recipient_values(
        settings, prep.newsletter, prep.issue, subscriber_id=subscriber_id, email=email, name=name
    )
    return Recipient(
        subscriber_id=subscriber_id,
        email=email,
        name=name,
        values=values,
        unsubscribe_url=links["unsubscribe_url"],
        unsubscribe_mailto=links["unsubscribe_mailto"],
    )


def run_batch(
    settings: Settings,
    *,
    issue_id: int,
    transport: Transport,
    limiter: RateLimiter | None = None,
    breaker: CircuitBreaker | None = None,
) -> BatchResult:
    """Claim one batch, send each message, record each reply as soon as it comes.

    Each result is its own autocommit statement (one round trip; on PostgreSQL without waiting
    for the WAL flush): a killed worker loses at most the one message it was sending, which
    comes back after its lease with the same Message-ID.
    """
    engine = get_engine(settings.database_url)
    limiter = limiter or limiter_for(
        settings.shared_redis_url, settings.send_rate, settings.send_burst
    )
    breaker = breaker or breaker_for(settings)
    result = BatchResult()
    with Session(engine, expire_on_commit=False) as session:
        claimed = delivery.claim(
            session,
            issue_id=issue_id,
            limit=settings.batch_size,
            lease_seconds=settings.lease_seconds,
        )
        session.commit()  # the lease must be visible before the first message leaves
        result.claimed = len(claimed)
        if claimed:
            prep = _prepare_or_pause(session, issue_id, settings, claimed, result)
            if prep is not None:
                run = _Run(settings, prep, transport, limiter, breaker, result)
                run.generation = _generation(session, issue_id)
                with _recorder(engine) as conn:
                    run.hooks = webhooks.enabled_events(conn)  # cached; empty: no webhook work
                    run.send_all(session, conn, claimed)
    _wrap_up(engine, issue_id, result)
    if result.claimed:  # one line per batch, never per message
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
    return result


def _prepare_or_pause(
    session: Session,
    issue_id: int,
    settings: Settings,
    claimed: list[delivery.Claimed],
    result: BatchResult,
) -> _Prepared | None:
    """The issue's message template, or None after pausing the issue with the reason.

    A message that cannot be built (a subject with a line break stored before that was refused,
    a DKIM key that cannot sign) fails the same way for every recipient: the rows go back to
    pending and the issue pauses, its status saying why, instead of every batch crashing while
    the status still says "sending".
    """
    try:
        return prepared(session, issue_id, settings)
    except NewsletterError as exc:
        reason = f"cannot build the message: {exc}"[:1000]
        delivery.release(
            session, delivery_ids=[r.delivery_id for r in claimed], lease=claimed[0].lease
        )
        paused = controls.trip(session, issue_id=issue_id, reason=reason)
        session.commit()
        if paused:
            log.error("issue %s paused: %s", issue_id, reason, extra={"issue_id": issue_id})
        result.stopped = True
        return None


@contextmanager
def _recorder(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            # a worker crash cannot lose a committed row; a database crash could lose the last
            # few hundred milliseconds of results, which then go out again (same Message-ID)
            conn.execute(text("SET synchronous_commit TO off"))
        try:
            yield conn
        finally:
            if postgres:
                conn.execute(text("RESET synchronous_commit"))


def _generation(session: Session, issue_id: int) -> datetime | None:
    issue = session.get(Issue, issue_id, populate_existing=True)
    return issue.status_changed_at if issue else None


class _Run:
    """One batch's sending loop."""

    def __init__(
        self,
        settings: Settings,
        prep: _Prepared,
        transport: Transport,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        result: BatchResult,
    ) -> None:
        self.settings, self.prep, self.transport = settings, prep, transport
        self.limiter, self.breaker, self.result = limiter, breaker, result
        self.issue_id: int = prep.issue.id  # type: ignore[assignment]
        self.generation: datetime | None = None
        self.tokens = 0
        self.hooks: frozenset[str] = frozenset()  # webhook events some endpoint wants
        self.chunk = max(1, min(10, getattr(limiter, "burst", 10) // 4))

    def send_all(self, session: Session, conn: Connection, claimed: list[delivery.Claimed]) -> None:
        lease = claimed[0].lease
        held = {r.delivery_id for r in claimed}
        renewed = time.monotonic()
        for index, row in enumerate(claimed):
            rest = [r.delivery_id for r in claimed[index:]]
            stop = (
                bool(index)
                and index % STATUS_CHECK_EVERY == 0
                and not _still_sending(session, self.prep)
            )
            if not stop and self.tokens == 0 and row.active:
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
                    stop = True
            if stop:
                delivery.release(conn, delivery_ids=rest, lease=lease)
                controls.settle_cancelled(conn, issue_id=self.issue_id)
                self.result.stopped = True
                return
            if time.monotonic() - renewed > self.settings.lease_seconds / 3:
                # a slow batch (rate limit, slow server) keeps its rows; rows whose lease ran
                # out anyway belong to another batch now and are not sent from here
                held = delivery.renew(
                    conn, delivery_ids=rest, lease=lease, lease_seconds=self.settings.lease_seconds
                )
                renewed = time.monotonic()
            if row.delivery_id not in held:
                self.result.lost += 1
                continue
            if self.send_one(conn, row):
                self.tokens -= 1
            if self.result.stopped:  # the circuit breaker tripped
                delivery.release(conn, delivery_ids=rest[1:], lease=lease)
                return

    def send_one(self, conn: Connection, row: delivery.Claimed) -> bool:
        """Send and record one row; True when a message went to the server."""
        settings, prep, result = self.settings, self.prep, self.result
        if not row.active:
            delivery.record_skipped(
                conn, delivery_id=row.delivery_id, reason="no longer subscribed"
            )
            result.skipped += 1
            return False
        try:
            person = recipient(
                settings, prep, subscriber_id=row.subscriber_id, email=row.email, name=row.name
            )
            mid, data = prep.template.render(person)
            if prep.signer is not None:
                data = prep.signer.sign(data)
        except InvalidInput as exc:  # our formatting problem, never the recipient's bounce
            delivery.record_failed(
                conn, delivery_id=row.delivery_id, response=f"local: {exc}", lease=row.lease
            )
            result.failed += 1
            _log_failed(self.issue_id, row.delivery_id, f"local: {exc}")
            self.hook(conn, "delivery.failed", row, None, f"local: {exc}")
            return False
        try:
            reply = self.transport.send(settings.bounce_address, row.email, data)
        except TemporaryFailure as exc:
            delivery.record_retry(
                conn,
                delivery_id=row.delivery_id,
                attempts=row.attempts,
                response=str(exc),
                max_attempts=settings.max_attempts,
                base_seconds=settings.retry_base_seconds,
                lease=row.lease,
            )
            result.retried += 1
            if row.attempts >= settings.max_attempts:  # record_retry gave up: failed
                self.hook(conn, "delivery.failed", row, mid, str(exc))
            if exc.code in THROTTLE_CODES:
                self.limiter.throttled()
            self.observe(conn, failed=True, reply=str(exc))
        except PermanentFailure as exc:
            delivery.record_failed(
                conn, delivery_id=row.delivery_id, response=exc.response, lease=row.lease
            )
            result.failed += 1
            _log_failed(self.issue_id, row.delivery_id, exc.response)
            if exc.code is None:  # refused on our side (no server reply): not the relay's fault
                self.hook(conn, "delivery.failed", row, mid, exc.response)
            elif is_bad_mailbox(exc.code, exc.response):
                delivery.mark_bounced(conn, subscriber_id=row.subscriber_id, issue_id=self.issue_id)
                suppression.suppress(conn, row.email, suppression.Reason.bounced)
                self.hook(conn, "delivery.bounced", row, mid, exc.response)
                self.observe(conn, failed=False)
            else:
                self.hook(conn, "delivery.failed", row, mid, exc.response)
                self.observe(conn, failed=True, reply=exc.response)
        else:
            if not delivery.record_sent(
                conn, delivery_id=row.delivery_id, message_id=mid, response=reply, lease=row.lease
            ):
                log.warning(
                    "delivery %s: sent after its lease was lost",
                    row.delivery_id,
                    extra={"issue_id": self.issue_id, "delivery_id": row.delivery_id},
                )
            result.sent += 1
            self.hook(conn, "delivery.sent", row, mid, reply)
            self.observe(conn, failed=False)
        return True

    def hook(
        self, conn: Connection, event: str, row: delivery.Claimed, mid: str | None, reply: str
    ) -> None:
        """Queue a webhook event; a no-op unless an endpoint wants it. Never stops the send."""
        if event not in self.hooks:
            return
        payload = {
            "issue_id": self.issue_id,
            "delivery_id": row.delivery_id,
            "subscriber_id": row.subscriber_id,
            "email": row.email,
            "message_id": mid,
            "smtp_response": reply[:1000],
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            webhooks.emit(conn, event, payload)
        except SQLAlchemyError:
            log.exception("delivery %s: %s webhook not queued", row.delivery_id, event)

    def observe(self, conn: Connection, *, failed: bool, reply: str = "") -> None:
        verdict = self.breaker.record(self.issue_id, self.generation, failed=failed, reply=reply)
        if verdict.tripped:
            if controls.trip(conn, issue_id=self.issue_id, reason=verdict.reason):
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


def _still_sending(session: Session, prep: _Prepared) -> bool:
    issue = session.get(Issue, prep.issue.id, populate_existing=True)
    return issue is not None and issue.status == IssueStatus.sending


def _wrap_up(engine: Engine, issue_id: int, result: BatchResult) -> None:
    with Session(engine) as session:
        result.finished = delivery.finish_if_done(session, issue_id=issue_id)
        # a batch that claimed nothing (the issue is paused, or other chains took the rows)
        # ends its chain; the tick restarts an issue that still has work
        result.more = (
            not result.stopped
            and result.claimed > 0
            and delivery.has_ready(session, issue_id=issue_id)
        )
        session.commit()


_breakers: dict[tuple[int, int, float], CircuitBreaker] = {}


def breaker_for(settings: Settings) -> CircuitBreaker:
    """The process's circuit breaker for these settings."""
    key = (settings.breaker_window, settings.breaker_min_results, settings.breaker_threshold)
    if key not in _breakers:
        _breakers[key] = CircuitBreaker(window=key[0], min_results=key[1], threshold=key[2])
    return _breakers[key]


@dataclass(frozen=True)
class TickResult:
    requeued: int
    batches: dict[int, int]  # issue id -> batch chains to start
    started: list[int] = field(default_factory=list)  # scheduled issues whose time came


def tick(settings: Settings, *, parallelism: int) -> TickResult:
    """The periodic look: due scheduled issues started; expired leases back to pending; idle
    sending issues restarted."""
    with Session(get_engine(settings.database_url)) as session:
        started = _start_due(session, settings)
        session.commit()
        requeued = delivery.requeue_expired(session)
        batches: dict[int, int] = {}
        for issue_id in delivery.sending_issue_ids(session):
            if delivery.finish_if_done(session, issue_id=issue_id):
                continue
            ready = delivery.ready_count(session, issue_id=issue_id)
            if ready and not delivery.in_flight(session, issue_id=issue_id):
                batches[issue_id] = chains(ready, settings.batch_size, parallelism)
        session.commit()
    return TickResult(requeued, batches, started)


def _start_due(session: Session, settings: Settings) -> list[int]:
    """Scheduled issues whose time came, unless the DKIM key cannot sign (they wait for a fix)."""
    try:
        signer_for(settings)
    except NewsletterError as exc:
        if controls.due_issue_ids(session):
            log.error("scheduled issues not started: %s", exc)
        return []
    return controls.start_due(session, size_limit=settings.html_size_limit)


def chains(ready: int, batch_size: int, parallelism: int) -> int:
    """How many batch chains to start for ``ready`` rows."""
    return max(1, min(parallelism, -(-ready // batch_size)))
