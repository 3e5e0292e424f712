"""Where a send stands, as the sending view, the API's status and ``issues status`` show it:
the counts, the rate over the last ``RATE_WINDOW``, the ETA, the last errors, the subject test.

A running subject test holds the rest of the list back until the winner is picked (the rows
wait, pending, for the pick: ``subject_pick``): they are ``held``, not counted in the ETA, which
is the time to finish what is being sent now. A local-time send's rows wait for their wave
(``local_time``): the ETA waits for the last wave's due time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlmodel import Session

from newsletter.content import issues
from newsletter.models import DeliveryStatus, IssueStatus, utcnow
from newsletter.sending import local_time, pickup, progress, subject_tests
from newsletter.tables import SUB, D

__all__ = ["RATE_WINDOW", "LastError", "Status", "held_back", "status"]

RATE_WINDOW = timedelta(seconds=10)  # the window over which ``status`` measures the rate


@dataclass(frozen=True)
class LastError:
    email: str
    response: str
    at: datetime | None
    status: str


@dataclass(frozen=True)
class Status:
    progress: progress.Progress
    rate: float  # messages sent per second over the last RATE_WINDOW
    eta_seconds: float | None  # None when nothing is moving
    last_errors: list[LastError]
    scheduled_at: datetime | None
    worker_notice: str | None = None  # no worker (or no beat) picks the issue up: pickup.py
    subject_test: dict[str, object] | None = None  # its subject test (subject_tests.summary)
    held: int = 0  # rows a running subject test holds back for the winner (not in the ETA)
    waves: list[local_time.Wave] = field(default_factory=list)  # a local-time send's waves
    local_time: str | None = None  # "08:00": each reader at that time in their zone

    @property
    def remaining(self) -> int:
        return sum(self.progress.counts.get(s, 0) for s in (DeliveryStatus.pending, "sending"))

    def as_dict(self) -> dict[str, object]:
        p = self.progress
        return {
            "issue_id": p.issue_id,
            "status": p.status,
            "reason": p.reason,
            "counts": {s.value: p.counts.get(s.value, 0) for s in DeliveryStatus},
            "total": p.total,
            "done": p.done,
            "rate": round(self.rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
            "next_probe_at": p.next_probe_at.isoformat() if p.next_probe_at else None,
            "worker_notice": self.worker_notice,
            "subject_test": self.subject_test,
            "held": self.held,
            "local_time": self.local_time,
            "waves": [w.as_dict() for w in self.waves],
            "last_errors": [
                {
                    "email": e.email,
                    "response": e.response,
                    "at": e.at.isoformat() if e.at else None,
                    "status": e.status,
                }
                for e in self.last_errors
            ],
        }


def status(session: Session, *, issue_id: int, errors: int = 5) -> Status:
    now = utcnow()
    state = progress.progress(session, issue_id=issue_id)
    recent = session.execute(
        select(func.count())
        .select_from(D)
        .where(D.c.issue_id == issue_id, D.c.sent_at >= now - RATE_WINDOW)
    ).scalar_one()
    rate = int(recent) / RATE_WINDOW.total_seconds()
    held = held_back(session, issue_id, state.total)
    remaining = state.counts.get("pending", 0) + state.counts.get("sending", 0) - held
    issue = issues.get_issue(session, issue_id)
    found = local_time.waves(session, issue_id=issue_id) if issue.local_time else []
    eta = (
        local_time.eta_seconds(found, now=local_time.clock(), rate=rate, remaining=remaining)
        if state.status == IssueStatus.sending and remaining > 0
        else None
    )
    rows = session.execute(
        select(SUB.c.email, D.c.smtp_response, D.c.updated_at, D.c.status)
        .select_from(D)
        .join(SUB, and_(SUB.c.id == D.c.subscriber_id))
        .where(
            D.c.issue_id == issue_id,
            D.c.smtp_response.is_not(None),
            D.c.status.in_([DeliveryStatus.failed, DeliveryStatus.pending]),
            D.c.attempts > 0,
        )
        .order_by(D.c.updated_at.desc(), D.c.id.desc())
        .limit(errors)
    ).all()
    return Status(
        progress=state,
        rate=rate,
        eta_seconds=eta,
        last_errors=[
            LastError(r.email, r.smtp_response or "", r.updated_at, r.status) for r in rows
        ],
        scheduled_at=issue.scheduled_at,
        subject_test=subject_tests.summary(session, issue_id),
        held=held,
        worker_notice=None
        if rate > 0
        else pickup.worker_notice(session, issue_id=issue_id, now=now),
        waves=found,
        local_time=issue.local_time,
    )


def held_back(session: Session, issue_id: int, total: int) -> int:
    """The ledger rows a running subject test holds for the winner: all but the samples drawn
    at the fill (kept in the test's figures), so no count of the ledger is needed."""
    test = subject_tests.get(session, issue_id)
    if test is None or test.decide_at is None or test.winner is not None:
        return 0
    drawn = sum(int(f.get("recipients") or 0) for f in test.figures)
    return max(total - drawn, 0)
