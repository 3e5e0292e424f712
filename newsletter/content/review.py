"""Review before send: an issue goes draft -> in review -> approved, then is scheduled or sent.

- ``request`` puts a draft in review; ``approve`` approves an issue in review; ``send_back``
  returns it to draft with the reviewer's reason. An edit to an approved issue sends it back to
  review (``content.issues``, through ``reopen``).
- When the newsletter requires review (``Newsletter.requires_review``), ``gate`` refuses to
  schedule or send an issue that is not approved, and only someone other than the issue's last
  author may approve it. The last author is read off the audit trail (the newest ``issue.create``
  or ``issue.edit`` entry of the issue), so it names whoever last changed it in the editor UI or
  the admin API.
- Comments belong to an issue, or to one of its items; anyone who may comment sees them all.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter import text
from newsletter.exceptions import Forbidden, InvalidInput, InvalidState, NotFound
from newsletter.models import (
    AuditEntry,
    Issue,
    IssueComment,
    IssueItem,
    IssueSection,
    Newsletter,
    utcnow,
)
from newsletter.statuses import IssueStatus, moving
from newsletter.tables import I

COMMENT_MAX = 4000
#: the audit actions that make someone an issue's author
AUTHORING = ("issue.create", "issue.edit")


def _issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"no issue with id {issue_id}")
    return issue


def _move(
    session: Session,
    issue: Issue,
    to: IssueStatus,
    among: list[IssueStatus],
    *,
    reason: str | None = None,
    approved_by: str | None = None,
) -> Issue:
    assert issue.id is not None
    moved = session.execute(
        update(I)
        .where(I.c.id == issue.id, moving(I.c.status, to, among=among))
        .values(
            status=to,
            status_reason=reason,
            status_changed_at=utcnow(),
            approved_by=approved_by,
            approved_at=utcnow() if approved_by else None,
        )
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(issue)
        raise InvalidState(f"issue {issue.id} is {issue.status}; it cannot go {to.value}")
    session.refresh(issue)
    return issue


def request(session: Session, issue_id: int) -> Issue:
    """A draft goes to review."""
    return _move(session, _issue(session, issue_id), IssueStatus.in_review, [IssueStatus.draft])


def last_author(session: Session, issue_id: int) -> str | None:
    """Who last created or edited the issue in the editor UI or the admin API (None: nobody)."""
    entry = session.exec(
        select(AuditEntry)
        .where(
            AuditEntry.target_type == "issue",
            AuditEntry.target_id == issue_id,
            col(AuditEntry.action).in_(AUTHORING),
        )
        .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .limit(1)
    ).first()
    return entry.actor_label if entry is not None else None


def requires_review(session: Session, issue: Issue) -> bool:
    newsletter = session.get(Newsletter, issue.newsletter_id)
    return bool(newsletter and newsletter.requires_review)


def approve(session: Session, issue_id: int, *, reviewer: str) -> Issue:
    """An issue in review is approved by ``reviewer`` (an address); where the newsletter requires
    review, the reviewer must not be the issue's last author."""
    issue = _issue(session, issue_id)
    if requires_review(session, issue) and last_author(session, issue_id) == reviewer:
        raise Forbidden("you edited this issue last: another editor approves it")
    return _move(
        session, issue, IssueStatus.approved, [IssueStatus.in_review], approved_by=reviewer
    )


def send_back(session: Session, issue_id: int, *, reason: str = "") -> Issue:
    """Back to draft from review (or from approved), with the reviewer's reason."""
    note = text.one_line(reason, field="reason", max_length=500) if reason.strip() else None
    return _move(
        session,
        _issue(session, issue_id),
        IssueStatus.draft,
        [IssueStatus.in_review, IssueStatus.approved],
        reason=f"sent back: {note}" if note else "sent back to draft",
    )


def reopen(session: Session, issue: Issue) -> None:
    """An edit to an approved issue: back to review, the approval gone."""
    if issue.status == IssueStatus.approved:
        _move(
            session,
            issue,
            IssueStatus.in_review,
            [IssueStatus.approved],
            reason="edited after approval: review it again",
        )


def gate(session: Session, issue: Issue) -> None:
    """Refuse to schedule or send an unapproved issue of a newsletter that requires review."""
    ready = (IssueStatus.approved, IssueStatus.scheduled)
    if requires_review(session, issue) and issue.status not in ready:
        raise InvalidState(
            f"issue {issue.id} is {issue.status.replace('_', ' ')}; this newsletter requires "
            "review: an editor approves it before it is scheduled or sent"
        )


def comment(
    session: Session, issue_id: int, *, author: str, body: str, item_id: int | None = None
) -> IssueComment:
    """A comment on the issue (or on one of its items)."""
    _issue(session, issue_id)
    words = text.multiline(body, field="comment", max_length=COMMENT_MAX).strip()
    if not words:
        raise InvalidInput("a comment needs some text")
    if item_id is not None:
        item = session.get(IssueItem, item_id)
        section = session.get(IssueSection, item.section_id) if item is not None else None
        if section is None or section.issue_id != issue_id:
            raise NotFound(f"issue {issue_id} has no item {item_id}")
    note = IssueComment(issue_id=issue_id, item_id=item_id, author=author, body=words)
    session.add(note)
    session.flush()
    return note


def comments(session: Session, issue_id: int) -> list[IssueComment]:
    return list(
        session.exec(
            select(IssueComment)
            .where(IssueComment.issue_id == issue_id)
            .order_by(col(IssueComment.created_at), col(IssueComment.id))
        ).all()
    )


def waiting(session: Session, limit: int = 50) -> list[Issue]:
    """Issues in review, the longest waiting first (the dashboard's list)."""
    return list(
        session.exec(
            select(Issue)
            .where(Issue.status == IssueStatus.in_review)
            .order_by(col(Issue.status_changed_at), col(Issue.id))
            .limit(limit)
        ).all()
    )
