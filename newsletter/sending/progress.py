"""Where a send stands: delivery counts by status, read from the issue's counters (constant
time: ``counters``), not from the ledger; why it is where it is (a pause of the circuit breaker
says when it paused and when it probes the relay next)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session

from newsletter.content import issues
from newsletter.exceptions import InvalidState
from newsletter.models import Issue, IssueStatus
from newsletter.sending import breaker, counters


@dataclass(frozen=True)
class Progress:
    issue_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    next_probe_at: datetime | None = None  # paused by the breaker: when the relay is probed

    @property
    def awaiting_probe(self) -> bool:
        """Paused by the circuit breaker: the send resumes by itself once the relay answers."""
        return self.status == IssueStatus.paused and self.next_probe_at is not None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("sent", "failed", "skipped", "cancelled"))

    @property
    def finished(self) -> bool:
        return self.status in (IssueStatus.sent, IssueStatus.cancelled)


def progress(session: Session, *, issue_id: int) -> Progress:
    issue = issues.get_issue(session, issue_id)
    probe_at = _aware(issue.breaker_probe_at) if issue.status == IssueStatus.paused else None
    reason = issue.status_reason
    if probe_at is not None:
        reason = breaker.paused_text(reason, _aware(issue.status_changed_at), probe_at)
    return Progress(
        issue_id=issue_id,
        status=issue.status,
        counts=counters.counts(session, issue_id),
        reason=reason,
        next_probe_at=probe_at,
    )


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives times back without their zone: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def ensure_sending(session: Session, *, issue_id: int) -> Issue:
    issue = issues.get_issue(session, issue_id)
    if issue.status != IssueStatus.sending:
        raise InvalidState(f"issue {issue_id} is {issue.status}, not sending")
    return issue
