"""One running send: batches claimed from the ledger, personalised, handed to the transport.

Called by the Celery tasks in ``worker/`` and directly by tests. A batch task sends its rows and,
while due rows remain, asks for one follow-up batch, so ``parallelism`` chains work an issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import delivery
from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.exceptions import InvalidInput, PermanentFailure, TemporaryFailure
from newsletter.messages import MessageTemplate, Recipient, unsubscribe_mailto
from newsletter.models import Issue, IssueStatus, Newsletter, RenderedIssue
from newsletter.rendering import CompiledIssue
from newsletter.tokens import Purpose, make_token
from newsletter.transports import Transport

#: how many messages between two looks at the issue's status (pause/cancel take effect here)
STATUS_CHECK_EVERY = 25
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_CODES = frozenset({550, 551, 553})


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
    stopped: bool = False  # the issue was paused or cancelled mid-batch
    more: bool = False  # due rows remain: the caller should run another batch
    finished: bool = False  # this batch finished the issue


@dataclass(frozen=True)
class _Prepared:
    compiled_at: datetime
    newsletter: Newsletter
    issue: Issue
    template: MessageTemplate


_templates: dict[int, _Prepared] = {}


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
    _templates[issue_id] = _Prepared(frozen.compiled_at, newsletter, issue, template)
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


def run_batch(settings: Settings, *, issue_id: int, transport: Transport) -> BatchResult:
    """Claim one batch, send each message, record each reply as soon as it comes."""
    engine = get_engine(settings.database_url)
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
            prep = prepared(session, issue_id, settings)
            _send_claimed(session, settings, prep, claimed, transport, result)
    _wrap_up(engine, issue_id, result)
    return result


def _send_claimed(
    session: Session,
    settings: Settings,
    prep: _Prepared,
    claimed: list[delivery.Claimed],
    transport: Transport,
    result: BatchResult,
) -> None:
    for index, row in enumerate(claimed):
        if index and index % STATUS_CHECK_EVERY == 0 and not _still_sending(session, prep):
            delivery.release(session, delivery_ids=[r.delivery_id for r in claimed[index:]])
            session.commit()
            result.stopped = True
            return
        _send_one(session, settings, prep, row, transport, result)
        session.commit()


def _still_sending(session: Session, prep: _Prepared) -> bool:
    issue = session.get(Issue, prep.issue.id, populate_existing=True)
    return issue is not None and issue.status == IssueStatus.sending


def _send_one(
    session: Session,
    settings: Settings,
    prep: _Prepared,
    row: delivery.Claimed,
    transport: Transport,
    result: BatchResult,
) -> None:
    if not row.active:
        delivery.record_skipped(session, delivery_id=row.delivery_id, reason="no longer subscribed")
        result.skipped += 1
        return
    try:
        person = recipient(
            settings, prep, subscriber_id=row.subscriber_id, email=row.email, name=row.name
        )
        mid, data = prep.template.render(person)
    except InvalidInput as exc:  # our formatting problem, never the recipient's bounce
        delivery.record_failed(session, delivery_id=row.delivery_id, response=f"local: {exc}")
        result.failed += 1
        return
    try:
        reply = transport.send(settings.bounce_address, row.email, data)
    except TemporaryFailure as exc:
        delivery.record_retry(
            session,
            delivery_id=row.delivery_id,
            attempts=row.attempts,
            response=str(exc),
            max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds,
        )
        result.retried += 1
    except PermanentFailure as exc:
        delivery.record_failed(session, delivery_id=row.delivery_id, response=exc.response)
        if is_bad_mailbox(exc.code, exc.response):
            delivery.mark_bounced(session, subscriber_id=row.subscriber_id, issue_id=prep.issue.id)  # type: ignore[arg-type]
        result.failed += 1
    else:
        delivery.record_sent(session, delivery_id=row.delivery_id, message_id=mid, response=reply)
        result.sent += 1


def _wrap_up(engine: Engine, issue_id: int, result: BatchResult) -> None:
    with Session(engine) as session:
        result.finished = delivery.finish_if_done(session, issue_id=issue_id)
        result.more = not result.stopped and delivery.ready_count(session, issue_id=issue_id) > 0
        session.commit()


@dataclass(frozen=True)
class TickResult:
    requeued: int
    batches: dict[int, int]  # issue id -> batch chains to start


def tick(settings: Settings, *, parallelism: int) -> TickResult:
    """The periodic look: expired leases back to pending; idle sending issues restarted."""
    with Session(get_engine(settings.database_url)) as session:
        requeued = delivery.requeue_expired(session)
        batches: dict[int, int] = {}
        for issue_id in delivery.sending_issue_ids(session):
            if delivery.finish_if_done(session, issue_id=issue_id):
                continue
            ready = delivery.ready_count(session, issue_id=issue_id)
            if ready and not delivery.in_flight(session, issue_id=issue_id):
                batches[issue_id] = chains(ready, settings.batch_size, parallelism)
        session.commit()
    return TickResult(requeued, batches)


def chains(ready: int, batch_size: int, parallelism: int) -> int:
    """How many batch chains to start for ``ready`` rows."""
    return max(1, min(parallelism, -(-ready // batch_size)))
