"""Start a send: the one verb (``start_send``) the CLI, the admin API, the editor UI, the demo
and the scheduler call, and what it does: freeze the issue, fill the ledger.

``start_send`` answers at once, whatever the list's size. In the request it refuses what would
only fail later, in a worker (a DKIM key that cannot sign, loaded and test-signed here; an issue
QA blocks; an issue the review gate holds), freezes the rendered email every worker
personalises, and moves the issue to ``preparing`` in one guarded update (a second start is a
no-op); then it commits and hands the issue to ``dispatch``, the caller's port to the workers.
The worker's dispatch (``scheduler.tick``) fills the ledger (``fill_prepared``): preparing ->
sending in one guarded update and one ledger row per recipient in one ``INSERT ... SELECT``
(never loading the list into memory), in one transaction, so a retried or duplicated dispatch
fills nothing twice. A 1M-row fill took about 13.5 s, too long for an HTTP request behind a
proxy. After a large fill PostgreSQL's statistics of the ledger are refreshed (``ANALYZE``).

``fill_ledger`` is the same fill straight from a not-started or scheduled issue (the tick's
scheduled sends, which run in a worker already).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, text, update
from sqlmodel import Session

from newsletter.analytics import links as tracking
from newsletter.audience import reach, segments
from newsletter.audience.segment_rules import Group
from newsletter.config import Settings
from newsletter.content import issues, qa, review
from newsletter.content.qa import QAConfig
from newsletter.db import insert_ignore
from newsletter.exceptions import InvalidState, QABlocked
from newsletter.mail.dkim import signer_from_settings
from newsletter.models import (
    DeliveryStatus,
    Issue,
    IssueStatus,
    Newsletter,
    RenderedIssue,
    moving,
    utcnow,
)
from newsletter.sending import counters, edition_freeze, local_time, subject_pick
from newsletter.sending.checks import qa_config
from newsletter.statuses import NOT_STARTED, IssueKind
from newsletter.tables import D, I, S

log = logging.getLogger(__name__)

#: the port to the workers: queue the batch chains of an issue that is sending
Dispatch = Callable[[int], None]


@dataclass(frozen=True)
class SendStart:
    issue_id: int
    started: bool  # False when the issue was already sending or sent: a second start is a no-op
    recipients: int
    skipped: int


def check_signing(settings: Settings) -> None:
    """Load and test-sign the DKIM key when one is configured; InvalidInput says what is wrong."""
    signer_from_settings(settings)


def start_send(
    settings: Settings, session: Session, *, issue_id: int, dispatch: Dispatch | None
) -> SendStart:
    """Check, freeze, move to preparing, commit, dispatch; a started issue is only re-kicked.

    ``recipients`` and ``skipped`` are counted now; the worker's fill may differ by whoever
    joined or left in between."""
    check_signing(settings)
    started = prepare(session, issue_id=issue_id, checks=qa_config(settings))
    session.commit()
    issue = issues.get_issue(session, issue_id)
    session.refresh(issue)  # prepare moved it with a Core UPDATE
    if dispatch is not None and issue.status in (IssueStatus.preparing, IssueStatus.sending):
        dispatch(issue_id)
    return started


def freeze(session: Session, issue_id: int, *, checks: QAConfig) -> RenderedIssue:
    """Render the issue once, refuse it if QA blocks, and keep the result for every worker."""
    outline = issues.load_outline(session, issue_id)
    plain, compiled, links = tracking.compile_tracked(
        outline, base_url=checks.base_url, issue_id=issue_id
    )
    report = qa.qa_report(outline, compiled=plain, checks=checks)
    if not report.ok:
        raise QABlocked([f.message for f in report.blocking])
    links = edition_freeze.freeze_editions(
        session, outline, issue_id=issue_id, checks=checks, links=links
    )
    if links:
        tracking.store_links(session, issue_id, links)
    frozen = session.get(RenderedIssue, issue_id) or RenderedIssue(
        issue_id=issue_id, subject="", html="", text=""
    )
    frozen.subject, frozen.preheader = compiled.subject, compiled.preheader
    frozen.html, frozen.text, frozen.compiled_at = compiled.html, compiled.text, utcnow()
    session.add(frozen)
    return frozen


def refuse_standing(issue: Issue) -> None:
    """A standing issue (the welcome email) goes to each new subscriber, never to the list."""
    if issue.kind != IssueKind.issue:
        raise InvalidState(
            f"issue {issue.id} is the {issue.kind} email: it goes to each subscriber who "
            "confirms, never to the whole list"
        )


#: what a send may start from: an issue not started yet, or a scheduled one whose time came
STARTABLE = (*NOT_STARTED, IssueStatus.scheduled)


def prepare(session: Session, *, issue_id: int, checks: QAConfig) -> SendStart:
    """not started/scheduled -> preparing, after the checks and the freeze (the request's half
    of a send); a worker's ``fill_prepared`` does the rest."""
    issue = issues.get_issue(session, issue_id)
    refuse_standing(issue)
    if issue.status not in STARTABLE:
        return SendStart(issue_id, False, _count(session, issue_id), 0)
    local_time.refuse_with_subject_test(session, issue, issue.local_time)
    review.gate(session, issue)  # a newsletter that requires review sends approved issues only
    freeze(session, issue_id, checks=checks)
    claimed = session.execute(
        update(I)
        .where(
            I.c.id == issue_id,
            moving(I.c.status, IssueStatus.preparing, among=list(STARTABLE)),
        )
        .values(status=IssueStatus.preparing, status_changed_at=utcnow(), status_reason=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()  # someone else started it between our read and our update
        return SendStart(issue_id, False, _count(session, issue_id), 0)
    recipients = reach.count(
        session, newsletter_id=issue.newsletter_id, rules=segments.issue_rules(session, issue)
    )
    skipped = _subscriptions(session, issue.newsletter_id) - recipients
    session.flush()
    log.info(
        "issue %s: send accepted, about %s recipients; a worker fills the ledger",
        issue_id,
        recipients,
        extra={"issue_id": issue_id, "recipients": recipients},
    )
    return SendStart(issue_id, True, recipients, skipped)


def fill_prepared(session: Session, *, issue_id: int) -> SendStart | None:
    """preparing -> sending and the ledger filled, in the caller's transaction; None when the
    issue is not preparing (filled already by another dispatch, or cancelled meanwhile)."""
    issue = issues.get_issue(session, issue_id)
    session.refresh(issue)  # its status as committed, not as this session first read it
    if issue.status != IssueStatus.preparing:
        return None
    return _fill(session, issue, among=(IssueStatus.preparing,))


def preparing_issue_ids(session: Session) -> list[int]:
    return list(
        session.execute(select(I.c.id).where(I.c.status == IssueStatus.preparing).order_by(I.c.id))
        .scalars()
        .all()
    )


def fill_ledger(session: Session, *, issue_id: int, checks: QAConfig) -> SendStart:
    """not started/scheduled -> sending in one guarded update; a ledger row per active
    subscriber (of the issue's segment, when it has one: ``audience.reach``)."""
    issue = issues.get_issue(session, issue_id)
    refuse_standing(issue)
    if issue.status not in STARTABLE:
        return SendStart(issue_id, False, _count(session, issue_id), 0)
    local_time.refuse_with_subject_test(session, issue, issue.local_time)
    review.gate(session, issue)  # a newsletter that requires review sends approved issues only
    freeze(session, issue_id, checks=checks)
    return _fill(session, issue, among=STARTABLE) or SendStart(
        issue_id, False, _count(session, issue_id), 0
    )


def _fill(session: Session, issue: Issue, *, among: tuple[IssueStatus, ...]) -> SendStart | None:
    """The guarded move to sending and the ledger's INSERT ... SELECT, one transaction."""
    issue_id = issue.id
    assert issue_id is not None
    claimed = session.execute(
        update(I)
        .where(I.c.id == issue_id, moving(I.c.status, IssueStatus.sending, among=list(among)))
        .values(status=IssueStatus.sending, send_started_at=utcnow(), status_reason=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()  # someone else started it between our read and our update
        return None
    # the UPDATE went past the ORM: the session's copy of the issue must not keep "draft"
    session.expire(issue, ["status", "send_started_at", "status_reason"])
    inserted = _insert_ledger(session, issue, rules=segments.issue_rules(session, issue))
    skipped = _subscriptions(session, issue.newsletter_id) - inserted
    subject_pick.assign(session, issue_id=issue_id)  # a subject test's samples, the rest held
    session.flush()
    log.info(
        "issue %s: send started, %s recipients (%s not active)",
        issue_id,
        inserted,
        skipped,
        extra={"issue_id": issue_id, "recipients": inserted, "skipped": int(skipped)},
    )
    return SendStart(issue_id, True, inserted, int(skipped))


#: a fill of this many rows or more refreshes PostgreSQL's statistics of the ledger
ANALYZE_AFTER = 10_000


def refresh_statistics(session: Session, *, filled: int) -> bool:
    """``ANALYZE delivery`` after a large fill (PostgreSQL; commit the fill first): plans made
    on the statistics of before cost /metrics 657 ms. True when it ran."""
    if filled < ANALYZE_AFTER or session.get_bind().dialect.name != "postgresql":
        return False
    session.execute(text("ANALYZE delivery"))
    session.commit()
    return True


def _subscriptions(session: Session, newsletter_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(S).where(S.c.newsletter_id == newsletter_id)
        ).scalar_one()
    )


def recipient_count(session: Session, *, newsletter_id: int, segment_id: int | None = None) -> int:
    """How many ledger rows a send would create now (the fill's own query, counted): the
    newsletter's active, unsuppressed subscribers, within the segment when one is named."""
    rules = segments.rules_of(segments.get(session, segment_id)) if segment_id else None
    return reach.count(session, newsletter_id=newsletter_id, rules=rules)


def _insert_ledger(session: Session, issue: Issue, *, rules: Group | None) -> int:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING: set-based, nothing loaded into memory; a
    local-time send's rows carry their due time (``local_time``)."""
    issue_id, newsletter_id = issue.id, issue.newsletter_id
    values = [literal(issue_id), S.c.subscriber_id, literal(DeliveryStatus.pending), literal(0)]
    columns = ["issue_id", "subscriber_id", "status", "attempts"]
    if issue.local_time:
        values.append(_due(session, issue, rules))
        columns.append("due_at")
    source = reach.recipients(newsletter_id, *values, rules=rules)
    insert_ignore(session, D, source, columns=columns)
    # rowcount of INSERT ... SELECT is -1 on some drivers; the issue's rows are all new here
    assert issue_id is not None
    return _count(session, issue_id)


def _due(session: Session, issue: Issue, rules: Group | None) -> Any:
    """Each row's due time: one SELECT DISTINCT of the recipients' zones, then a CASE."""
    newsletter = session.get(Newsletter, issue.newsletter_id)
    zone = newsletter.time_zone if newsletter is not None else "UTC"
    zones = reach.recipients(issue.newsletter_id, local_time.zone_column(zone), rules=rules)
    found = [z for z in session.execute(zones.distinct()).scalars().all() if z]
    return local_time.due_column(
        found,
        newsletter_zone=zone,
        local_time=issue.local_time or "",
        start=local_time.clock(),
    )


def _count(session: Session, issue_id: int) -> int:
    return sum(counters.counts(session, issue_id).values())
