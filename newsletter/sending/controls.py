"""What an operator does to a send: schedule, pause, resume, cancel, resend to failed; status.

Each control is one guarded ``UPDATE`` on the issue (its ``WHERE`` names the states it may leave),
so two operators, or an operator and the circuit breaker, never race each other into a wrong
state. Workers look at the issue's status between messages and stop within one batch.
The CLI, the admin API and the worker's tick all call these functions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, exists, select, update
from sqlmodel import Session

from newsletter.content import issues, qa, rendering, review
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput, InvalidState, QABlocked
from newsletter.models import (
    DeliveryStatus,
    Issue,
    IssueStatus,
    SubscriptionStatus,
    moving,
    utcnow,
)
from newsletter.sending import ledger
from newsletter.sending.send_status import RATE_WINDOW as RATE_WINDOW
from newsletter.sending.send_status import LastError as LastError
from newsletter.sending.send_status import Status as Status
from newsletter.sending.send_status import status as status
from newsletter.sending.start import fill_ledger, refuse_standing
from newsletter.statuses import NOT_STARTED
from newsletter.tables import D, I, S

#: how far in the past a scheduled time may be (clocks differ; the form has minutes only)
SCHEDULE_GRACE = timedelta(seconds=60)


def _move(
    session: Session,
    issue_id: int,
    *,
    allowed: tuple[IssueStatus, ...],
    to: IssueStatus,
    action: str,
    guard: ColumnElement[bool] | None = None,
    **values: object,
) -> Issue:
    """One guarded transition; a clear error naming the current state when it is not allowed.
    Every move ends a breaker pause's probing (``breaker_probe_at``)."""
    issue = issues.get_issue(session, issue_id)
    extra = [] if guard is None else [guard]
    result = session.execute(
        update(I)
        .where(I.c.id == issue_id, moving(I.c.status, to, among=allowed), *extra)
        .values(status=to, status_changed_at=utcnow(), **{"breaker_probe_at": None, **values})
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(issue)
        names = ", ".join(s.value for s in allowed)
        raise InvalidState(
            f"cannot {action} issue {issue_id}: it is {issue.status} (only {names} can be)"
        )
    session.flush()
    session.refresh(issue)
    return issue


# ---------------------------------------------------------------- scheduling


def schedule(session: Session, *, issue_id: int, at: datetime, checks: QAConfig) -> Issue:
    """draft -> scheduled at ``at`` (aware, not in the past); QA runs now so a blocked issue is
    refused now."""
    if at.tzinfo is None:
        raise InvalidInput("the scheduled time needs a time zone (e.g. 2026-12-01T08:00+01:00)")
    now = utcnow()
    if at < now - SCHEDULE_GRACE:
        raise InvalidInput(
            f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC is in the past (it is now "
            f"{now:%Y-%m-%d %H:%M} UTC); schedule a later time, or send now"
        )
    refuse_standing(issues.get_issue(session, issue_id))
    outline = issues.load_outline(session, issue_id)
    compiled = rendering.compile_issue(outline)
    report = qa.qa_report(outline, compiled=compiled, checks=checks)
    if not report.ok:
        raise QABlocked([f.message for f in report.blocking])
    review.gate(session, issues.get_issue(session, issue_id))
    return _move(
        session,
        issue_id,
        allowed=(*NOT_STARTED, IssueStatus.scheduled),
        to=IssueStatus.scheduled,
        action="schedule",
        scheduled_at=at,
        status_reason=None,
    )


def unschedule(session: Session, *, issue_id: int) -> Issue:
    return _move(
        session,
        issue_id,
        allowed=(IssueStatus.scheduled,),
        to=IssueStatus.draft,
        action="unschedule",
        scheduled_at=None,
    )


def due_issue_ids(session: Session, *, now: datetime | None = None) -> list[int]:
    return list(
        session.execute(
            select(I.c.id)
            .where(I.c.status == IssueStatus.scheduled, I.c.scheduled_at <= (now or utcnow()))
            .order_by(I.c.scheduled_at)
        )
        .scalars()
        .all()
    )


def start_due(session: Session, *, checks: QAConfig, now: datetime | None = None) -> list[int]:
    """Start every scheduled issue whose time has come; returns the ids started.

    An issue that fails QA at its time (an article edited since) goes back to draft with the
    findings as its reason instead of blocking the others.
    """
    started = []
    for issue_id in due_issue_ids(session, now=now):
        try:
            with session.begin_nested():
                if fill_ledger(session, issue_id=issue_id, checks=checks).started:
                    started.append(issue_id)
        except QABlocked as exc:
            session.execute(
                update(I)
                .where(
                    I.c.id == issue_id,
                    moving(I.c.status, IssueStatus.draft, among=[IssueStatus.scheduled]),
                )
                .values(
                    status=IssueStatus.draft,
                    status_changed_at=utcnow(),
                    status_reason=f"scheduled send blocked by QA: {exc}"[:1000],
                )
            )
    session.flush()
    return started


# ---------------------------------------------------------------- pause, resume, cancel


def pause(session: Session, *, issue_id: int, reason: str = "paused by an operator") -> Issue:
    """sending -> paused. Rows already claimed finish or are released within one batch.

    An issue the circuit breaker paused, waiting for a probe of the relay, stays paused and
    becomes the operator's: no probe resumes it any more.
    """
    held = session.execute(
        update(I)
        .where(I.c.id == issue_id, I.c.status == IssueStatus.paused, awaiting_probe())
        .values(breaker_probe_at=None, status_reason=reason[:1000])
    )
    if held.rowcount == 1:  # type: ignore[attr-defined]
        issue = issues.get_issue(session, issue_id)
        session.refresh(issue)
        return issue
    return _move(
        session,
        issue_id,
        allowed=(IssueStatus.sending,),
        to=IssueStatus.paused,
        action="pause",
        status_reason=reason[:1000],
    )


def trip(
    session: ledger.Executor, *, issue_id: int, reason: str, probe_at: datetime | None = None
) -> bool:
    """The circuit breaker's (and the other guards') pause: a no-op (False) when the issue is no
    longer sending. With ``probe_at`` the tick probes the relay then and resumes the send when
    it answers (``probe``); without, an operator resumes it."""
    result = session.execute(
        update(I)
        .where(
            I.c.id == issue_id, moving(I.c.status, IssueStatus.paused, among=[IssueStatus.sending])
        )
        .values(
            status=IssueStatus.paused,
            status_changed_at=utcnow(),
            status_reason=reason[:1000],
            breaker_probe_at=probe_at,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def awaiting_probe() -> ColumnElement[bool]:
    """Paused by the circuit breaker, and a probe of the relay will resume it."""
    return I.c.breaker_probe_at.is_not(None)


def resume(
    session: Session, *, issue_id: int, reason: str | None = None, automatic: bool = False
) -> Issue:
    """paused -> sending; the caller then dispatches batches (worker.tasks.dispatch).
    ``automatic``: a probe's resume, only of an issue still waiting for one (not one an
    operator resumed, held or cancelled meanwhile)."""
    return _move(
        session,
        issue_id,
        allowed=(IssueStatus.paused,),
        to=IssueStatus.sending,
        action="resume",
        guard=awaiting_probe() if automatic else None,
        status_reason=reason,
    )


def cancel(session: Session, *, issue_id: int, reason: str = "cancelled by an operator") -> int:
    """Stop for good: unsent rows become ``cancelled``; returns how many. Sent rows stay sent."""
    _move(
        session,
        issue_id,
        allowed=(
            *NOT_STARTED,
            IssueStatus.scheduled,
            IssueStatus.preparing,
            IssueStatus.sending,
            IssueStatus.paused,
        ),
        to=IssueStatus.cancelled,
        action="cancel",
        status_reason=reason[:1000],
    )
    return settle_cancelled(session, issue_id=issue_id)


def settle_cancelled(session: ledger.Executor, *, issue_id: int) -> int:
    """Unsent rows of a cancelled issue become ``cancelled`` at once: pending ones, and ones in
    ``sending`` (a batch that died holding them, or one still running: it keeps its lease on
    them, so a message it does hand over is still recorded as sent)."""
    result = session.execute(
        update(D)
        .where(
            D.c.issue_id == issue_id,
            moving(
                D.c.status,
                DeliveryStatus.cancelled,
                among=[DeliveryStatus.pending, DeliveryStatus.sending],
            ),
            exists().where(I.c.id == issue_id, I.c.status == IssueStatus.cancelled),
        )
        .values(status=DeliveryStatus.cancelled, updated_at=utcnow(), lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def resend_failed(session: Session, *, issue_id: int) -> int:
    """Failed rows back to pending, for subscribers still active; the issue sends again.

    Rows of subscribers who bounced, complained or left since are not retried. Returns the
    number of rows re-queued; with none, the issue's status is left as it is.
    """
    issue = issues.get_issue(session, issue_id)
    if issue.status not in (IssueStatus.sent, IssueStatus.sending, IssueStatus.paused):
        raise InvalidState(
            f"cannot resend issue {issue_id}: it is {issue.status} (only sent, sending "
            "or paused issues have failed rows to resend)"
        )
    still_active = exists().where(
        S.c.subscriber_id == D.c.subscriber_id,
        S.c.newsletter_id == issue.newsletter_id,
        S.c.status == SubscriptionStatus.active,
    )
    result = session.execute(
        update(D)
        .where(
            D.c.issue_id == issue_id,
            moving(D.c.status, DeliveryStatus.pending, among=[DeliveryStatus.failed]),
            still_active,
        )
        .values(
            status=DeliveryStatus.pending,
            attempts=0,
            next_attempt_at=None,
            lease_until=None,
            updated_at=utcnow(),
        )
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count and issue.status == IssueStatus.sent:
        _move(
            session,
            issue_id,
            allowed=(IssueStatus.sent,),
            to=IssueStatus.sending,
            action="resend",
            sent_at=None,
            status_reason=f"resending {count} failed",
        )
    session.flush()
    return count
