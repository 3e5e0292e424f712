"""Where a send stands: delivery counts by status, read from the issue's counters (constant
time: ``counters``), not from the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from newsletter.content import issues
from newsletter.exceptions import InvalidState
from newsletter.models import Issue, IssueStatus
from newsletter.sending import counters


@dataclass(frozen=True)
class Progress:
    issue_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None

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
    return Progress(
        issue_id=issue_id,
        status=issue.status,
        counts=counters.counts(session, issue_id),
        reason=issue.status_reason,
    )


def ensure_sending(session: Session, *, issue_id: int) -> Issue:
    issue = issues.get_issue(session, issue_id)
    if issue.status != IssueStatus.sending:
        raise InvalidState(f"issue {issue_id} is {issue.status}, not sending")
    return issue
