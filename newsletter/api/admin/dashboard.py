"""The dashboard: newsletters, recent issues with their status and send progress, a new draft."""

from __future__ import annotations

from fastapi import Request
from sqlmodel import col, select
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep
from newsletter.audience.subscribers import list_newsletters
from newsletter.content import review
from newsletter.models import Issue, IssueStatus
from newsletter.sending import progress
from newsletter.sending.start import recipient_count
from newsletter.statuses import NOT_STARTED

router = protected_router()
RECENT = 25


@router.get("/", include_in_schema=False)
def dashboard(request: Request, session: SessionDep) -> Response:
    newsletters = list_newsletters(session)
    names = {n.id: n for n in newsletters}
    issues = session.exec(select(Issue).order_by(col(Issue.created_at).desc()).limit(RECENT)).all()
    rows = []
    for issue in issues:
        started = issue.status not in (*NOT_STARTED, IssueStatus.scheduled)
        state = progress.progress(session, issue_id=issue.id or 0) if started else None
        rows.append(
            {"issue": issue, "newsletter": names.get(issue.newsletter_id), "progress": state}
        )
    audience = {n.id: recipient_count(session, newsletter_id=n.id or 0) for n in newsletters}
    return views.render(
        request,
        "dashboard.html.j2",
        title="Dashboard",
        newsletters=newsletters,
        audience=audience,
        rows=rows,
        waiting=[(i, names.get(i.newsletter_id)) for i in review.waiting(session)],
    )
