"""The send card's delivery time: everyone at once, or a time of day in each reader's own zone.
HTTP only: ``sending.local_time`` decides."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Id
from newsletter.content import issues
from newsletter.sending import local_time

router = protected_router()


@router.post("/issues/{issue_id}/local-time", include_in_schema=False)
def save_local_time(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    when: Annotated[str, Form(max_length=8)] = "now",
    at: Annotated[str, Form(max_length=8)] = "08:00",
) -> Response:
    """``when=local``: at ``at`` in each reader's zone; anything else: everyone at once."""
    issue = issues.get_issue(session, issue_id)
    local_time.set_local_time(session, issue, at if when == "local" else None)
    notice = (
        f"Delivery: at {issue.local_time} in each reader's time zone."
        if issue.local_time
        else "Delivery: to everyone at once."
    )
    return views.redirect(request, f"/admin/issues/{issue_id}#send-panel", notice=notice)
