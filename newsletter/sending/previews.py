"""Preview an issue as a reader would see it, with sample personal values."""

from __future__ import annotations

from pathlib import Path

from newsletter import db
from newsletter.config import Settings
from newsletter.content import issues, rendering
from newsletter.models import RenderedIssue
from newsletter.sending import recipients
from newsletter.statuses import IssueKind


def preview(settings: Settings, *, issue_id: int) -> tuple[str, str]:
    """(html, text): the frozen issue if it was sent, else a fresh compile of the draft (a
    standing welcome is always a draft here: what an edit would publish)."""
    with db.session_scope(settings.database_url) as session:
        outline = issues.load_outline(session, issue_id)
        frozen = session.get(RenderedIssue, issue_id)
        compiled = (
            rendering.CompiledIssue(frozen.subject, frozen.preheader, frozen.html, frozen.text)
            if frozen and outline.issue.kind != IssueKind.welcome
            else rendering.compile_issue(outline)
        )
    # subscriber 0 and no name: links that verify but unsubscribe nobody, a "Dear reader," greeting
    values, _ = recipients.recipient_values(
        settings,
        outline.newsletter,
        outline.issue,
        subscriber_id=0,
        email="reader@example.org",
        name="",
    )
    return rendering.personalise(compiled, values)


def write_preview(settings: Settings, *, issue_id: int, path: Path | None = None) -> Path:
    html, _ = preview(settings, issue_id=issue_id)
    target = path or settings.preview_dir / f"issue-{issue_id}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target.resolve()
