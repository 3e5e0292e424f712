"""The welcome email: a newsletter's standing issue, sent once to each subscriber who confirms.

The welcome is an issue of kind ``welcome``: written, previewed and QA'd in the composer like any
issue, never sent to the list (``start.refuse_standing``). Publishing it freezes it
(``start.freeze``: QA must pass; a newsletter that requires review publishes approved ones only);
new subscribers get the frozen copy, so an edit reaches them once it is published again.

``queue`` is what ``audience.lifecycle.confirm`` calls for the newsletters a confirmation made
active: one ledger row (``Delivery``) for the welcome and, when the newsletter says so, one for
its latest sent issue, each an ``INSERT ... ON CONFLICT DO NOTHING`` on the ledger's unique
(issue, subscriber), so a repeated or concurrent confirm (or a comeback after an unsubscribe)
adds nothing. The rows are sent by the same batches as any send (``ledger.claimable``), while
the welcome stays standing and a sent issue stays sent; ``queue`` returns the issues that got
rows, which the caller hands to its dispatch port after the commit (the tick finds them too).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from newsletter import text
from newsletter.content import issues, review
from newsletter.content.qa import QAConfig
from newsletter.db import insert_ignore
from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import (
    DeliveryStatus,
    Issue,
    IssueStatus,
    NewsletterWelcome,
    RenderedIssue,
    utcnow,
)
from newsletter.newsletters import get_newsletter
from newsletter.sending import counters as issue_counters
from newsletter.sending import local_time
from newsletter.sending.start import freeze
from newsletter.statuses import NOT_STARTED, IssueKind
from newsletter.tables import D, I

__all__ = [
    "Welcome",
    "about",
    "configure",
    "counts",
    "create",
    "latest_sent_issue_id",
    "publish",
    "queue",
    "standing_issues",
    "welcome_of",
]


@dataclass(frozen=True)
class Welcome:
    """A newsletter's welcome settings, its standing issue and how many welcomes went out."""

    newsletter_id: int
    issue: Issue | None
    enabled: bool
    with_latest: bool
    published_at: datetime | None  # when the copy new subscribers get was frozen
    counts: dict[str, int] = field(default_factory=dict)  # the welcome's ledger rows by status

    @property
    def sent(self) -> int:
        return self.counts.get(DeliveryStatus.sent, 0)

    @property
    def waiting(self) -> int:
        return self.counts.get(DeliveryStatus.pending, 0) + self.counts.get(
            DeliveryStatus.sending, 0
        )


def _row(session: Session, newsletter_id: int) -> NewsletterWelcome:
    found = session.get(NewsletterWelcome, newsletter_id)
    return found or NewsletterWelcome(newsletter_id=newsletter_id)


def counts(session: Session, issue_id: int) -> dict[str, int]:
    return issue_counters.counts(session, issue_id)


def welcome_of(session: Session, newsletter: str | int) -> Welcome:
    nl = get_newsletter(session, newsletter)
    row = _row(session, nl.id)  # type: ignore[arg-type]
    issue = session.get(Issue, row.issue_id) if row.issue_id is not None else None
    frozen = session.get(RenderedIssue, issue.id) if issue is not None else None
    return Welcome(
        newsletter_id=nl.id,  # type: ignore[arg-type]
        issue=issue,
        enabled=row.enabled,
        with_latest=row.with_latest,
        published_at=frozen.compiled_at if frozen is not None else None,
        counts=counts(session, issue.id) if issue is not None else {},  # type: ignore[arg-type]
    )


def about(session: Session, issue: Issue) -> Welcome:
    """One standing issue as the composer shows it: whether it is the one on, when it was
    published, how many went out."""
    row = _row(session, issue.newsletter_id)
    frozen = session.get(RenderedIssue, issue.id)
    chosen = row.issue_id == issue.id
    return Welcome(
        newsletter_id=issue.newsletter_id,
        issue=issue,
        enabled=chosen and row.enabled,
        with_latest=chosen and row.with_latest,
        published_at=frozen.compiled_at if frozen is not None else None,
        counts=counts(session, issue.id),  # type: ignore[arg-type]
    )


def standing_issues(session: Session, newsletter_id: int) -> list[Issue]:
    """The newsletter's welcome issues that may still be chosen (not cancelled), newest first."""
    stmt = select(Issue).where(
        col(Issue.newsletter_id) == newsletter_id,
        col(Issue.kind) == IssueKind.welcome,
        col(Issue.status).in_(list(NOT_STARTED)),
    )
    return list(session.scalars(stmt.order_by(col(Issue.id).desc())).all())


def create(session: Session, *, newsletter: str | int, title: str = "") -> Issue:
    """A new standing welcome issue (numbered -1, -2...: the archive's numbers stay the sent
    issues'), with a subject and an intro to start from and no sections."""
    nl = get_newsletter(session, newsletter)
    lowest = session.execute(
        select(func.min(I.c.number)).where(I.c.newsletter_id == nl.id)
    ).scalar_one()
    title = text.one_line(title or f"Welcome to {nl.name}", field="title", max_length=200)
    issue = Issue(
        newsletter_id=nl.id,  # type: ignore[arg-type]
        number=min(lowest or 0, 0) - 1,
        title=title,
        subject=title,
        intro_md=f"Thank you for subscribing to {nl.name}. Here is what to expect from us.",
        kind=IssueKind.welcome,
    )
    session.add(issue)
    session.flush()
    return issue


def _standing(session: Session, issue_id: int, newsletter_id: int | None = None) -> Issue:
    issue = issues.get_issue(session, issue_id)
    if issue.kind != IssueKind.welcome:
        raise InvalidInput(f"issue {issue_id} is not a welcome email (create one for it)")
    if newsletter_id is not None and issue.newsletter_id != newsletter_id:
        raise InvalidInput(f"issue {issue_id} belongs to another newsletter")
    if issue.status not in NOT_STARTED:
        raise InvalidState(f"welcome issue {issue_id} is {issue.status}")
    return issue


def publish(session: Session, *, issue_id: int, checks: QAConfig) -> datetime:
    """Freeze the welcome as new subscribers will get it (QA must pass; review if required)."""
    issue = _standing(session, issue_id)
    review.gate(session, issue)
    return freeze(session, issue_id, checks=checks).compiled_at


def configure(
    session: Session,
    *,
    newsletter: str | int,
    checks: QAConfig,
    issue_id: int | None = None,
    enabled: bool | None = None,
    with_latest: bool | None = None,
) -> Welcome:
    """Change what was given: the welcome issue, on/off, the latest issue with it. Turning it on
    needs a welcome issue, and publishes it when it never was."""
    nl = get_newsletter(session, newsletter)
    row = _row(session, nl.id)  # type: ignore[arg-type]
    if issue_id is not None:
        row.issue_id = _standing(session, issue_id, nl.id).id
    if enabled is not None:
        row.enabled = enabled
    if with_latest is not None:
        row.with_latest = with_latest
    if row.enabled:
        if row.issue_id is None:
            raise InvalidInput("choose or create the welcome email before turning it on")
        issue = _standing(session, row.issue_id, nl.id)
        if session.get(RenderedIssue, row.issue_id) is None:
            publish(session, issue_id=issue.id, checks=checks)  # type: ignore[arg-type]
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return welcome_of(session, nl.id)  # type: ignore[arg-type]


def latest_sent_issue_id(session: Session, newsletter_id: int) -> int | None:
    found = session.execute(
        select(I.c.id)
        .where(
            I.c.newsletter_id == newsletter_id,
            I.c.kind == IssueKind.issue,
            I.c.status == IssueStatus.sent,
        )
        .order_by(I.c.sent_at.desc(), I.c.id.desc())
        .limit(1)
    ).scalar()
    return int(found) if found is not None else None


def _welcome_issue_id(session: Session, row: NewsletterWelcome) -> int | None:
    """The welcome issue when it can go out now: standing, not cancelled, published."""
    if row.issue_id is None:
        return None
    ready = session.execute(
        select(I.c.id)
        .join(RenderedIssue, col(RenderedIssue.issue_id) == I.c.id)
        .where(
            I.c.id == row.issue_id,
            I.c.kind == IssueKind.welcome,
            I.c.status.in_(list(NOT_STARTED)),
        )
    ).scalar()
    return int(ready) if ready is not None else None


def queue(
    session: Session, *, subscriber_id: int, newsletter_ids: Collection[int]
) -> tuple[int, ...]:
    """Ledger rows for a subscriber a confirmation just made active: the welcome of each of
    ``newsletter_ids`` that has one on, and its latest sent issue when it says so. Returns the
    issues given rows (to dispatch after the commit); a row they had is left as it is."""
    wanted: list[int] = []
    for newsletter_id in sorted(set(newsletter_ids)):
        row = session.get(NewsletterWelcome, newsletter_id)
        if row is None or not row.enabled:
            continue
        welcome = _welcome_issue_id(session, row)
        if welcome is not None:
            wanted.append(welcome)
        latest = latest_sent_issue_id(session, newsletter_id) if row.with_latest else None
        if latest is not None:
            wanted.append(latest)
    for issue_id in wanted:
        insert_ignore(
            session,
            D,
            {
                "issue_id": issue_id,
                "subscriber_id": subscriber_id,
                "status": DeliveryStatus.pending,
                "attempts": 0,
                "due_at": local_time.clock(),  # a late reader of a local-time send: at once
            },
        )
    return tuple(wanted)
