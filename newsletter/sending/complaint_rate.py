"""The complaint-rate guardrail: a send whose readers complain too much pauses itself.

Mailbox providers judge a sender by its spam-complaint rate (Gmail and Yahoo ask bulk senders to
stay below 0.1% and never reach 0.3%). Each complaint attributed to an issue (a
``BounceReceipt`` of kind ``complaint``, written by the ARF path and by every provider webhook)
calls ``check``: when the issue is still ``sending``, has sent at least
``complaint_rate_min_sent`` messages, and its distinct complaining readers divided by its
messages sent so far is above ``complaint_rate_threshold``, the issue is paused with the circuit
breaker's guarded move (``controls.trip``) and a reason that shows the rate. Resuming is the
editor's call; a further complaint while the rate is still above the threshold pauses it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, IssueStatus
from newsletter.models_audience import BounceReceipt
from newsletter.sending import controls
from newsletter.tables import D, I, table_of

__all__ = ["ComplaintRate", "check", "complaint_rate"]

R = table_of(BounceReceipt)


@dataclass(frozen=True)
class ComplaintRate:
    complaints: int  # distinct readers who complained about the issue
    sent: int  # messages of the issue sent so far

    @property
    def rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


def complaint_rate(session: Session, issue_id: int) -> ComplaintRate:
    complaints = session.execute(
        select(func.count(distinct(R.c.subscriber_id))).where(
            R.c.issue_id == issue_id, R.c.kind == "complaint"
        )
    ).scalar_one()
    sent = session.execute(
        select(func.count())
        .select_from(D)
        .where(D.c.issue_id == issue_id, D.c.status == DeliveryStatus.sent)
    ).scalar_one()
    return ComplaintRate(int(complaints), int(sent))


def check(session: Session, settings: Settings, issue_id: int) -> str | None:
    """Pause ``issue_id`` when it is sending and its complaint rate is over the threshold;
    returns the reason it was paused with, or None."""
    status = session.execute(select(I.c.status).where(I.c.id == issue_id)).scalar_one_or_none()
    if status != IssueStatus.sending:
        return None
    measured = complaint_rate(session, issue_id)
    if measured.sent < settings.complaint_rate_min_sent:
        return None
    if measured.rate <= settings.complaint_rate_threshold:
        return None
    reason = (
        f"complaint rate {measured.rate:.2%} ({measured.complaints} complaints in "
        f"{measured.sent} messages sent) is above the {settings.complaint_rate_threshold:.2%} "
        "limit: paused by the complaint-rate guardrail"
    )
    return reason if controls.trip(session, issue_id=issue_id, reason=reason) else None
