"""``newsletter issues`` (review): ask for review, approve, send back, comment, list comments.

The CLI acts as the operator at the machine (``cli <user>`` in the audit trail): that is the
reviewer's and the author's name here, so the four-eyes rule holds against the editors who
drafted the issue in the UI or through the API.
"""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter.access.permissions import cli_actor
from newsletter.cli.common import audited, console, session
from newsletter.cli.issues import app
from newsletter.content import review


@app.command("review")
def issues_review(issue_id: int) -> None:
    """Put a draft in review."""
    with session() as s:
        review.request(s, issue_id)
        audited(s, "issue.review-request", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: in review")


@app.command("approve")
def issues_approve(issue_id: int) -> None:
    """Approve an issue in review (where review is required, not by its last author)."""
    with session() as s:
        issue = review.approve(s, issue_id, reviewer=cli_actor().label)
        audited(s, "issue.approve", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: approved by {issue.approved_by}", markup=False)


@app.command("send-back")
def issues_send_back(
    issue_id: int, reason: Annotated[str, typer.Option(help="shown in the issue's status")] = ""
) -> None:
    """Send an issue in review (or approved) back to draft."""
    with session() as s:
        review.send_back(s, issue_id, reason=reason)
        audited(s, "issue.send-back", target_type="issue", target_id=issue_id, detail=reason)
    console.print(f"issue {issue_id}: back to draft")


@app.command("comment")
def issues_comment(
    issue_id: int,
    text: str,
    item: Annotated[int | None, typer.Option(help="an item of the issue")] = None,
) -> None:
    """Comment on an issue (or on one of its items)."""
    with session() as s:
        review.comment(s, issue_id, author=cli_actor().label, body=text, item_id=item)
        audited(s, "issue.comment", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: comment added")


@app.command("comments")
def issues_comments(issue_id: int) -> None:
    """An issue's comments, oldest first."""
    with session() as s:
        notes = review.comments(s, issue_id)
    for c in notes:
        on = f" on item {c.item_id}" if c.item_id else ""
        console.print(f"{c.created_at:%Y-%m-%d %H:%M} {c.author}{on}: {c.body}", markup=False)
    if not notes:
        console.print("no comments")
