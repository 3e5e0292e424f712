"""Review in the composer: ask for review, approve, send back with a reason, comment."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import EditorDep, protected_router
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Id
from newsletter.content import review

router = protected_router()


def _back(request: Request, issue_id: int, notice: str) -> Response:
    return views.redirect(request, f"/admin/issues/{issue_id}#review", notice=notice)


@router.post("/issues/{issue_id}/review", include_in_schema=False)
def request_review(request: Request, issue_id: Id, session: SessionDep) -> Response:
    review.request(session, issue_id)
    return _back(request, issue_id, "Sent for review.")


@router.post("/issues/{issue_id}/approve", include_in_schema=False)
def approve(request: Request, issue_id: Id, session: SessionDep, editor: EditorDep) -> Response:
    review.approve(session, issue_id, reviewer=editor.email)
    return _back(request, issue_id, "Approved: it can be scheduled or sent.")


@router.post("/issues/{issue_id}/send-back", include_in_schema=False)
def send_back(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    review.send_back(session, issue_id, reason=reason)
    return _back(request, issue_id, "Sent back to draft.")


@router.post("/issues/{issue_id}/comments", include_in_schema=False)
def add_comment(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    editor: EditorDep,
    body: Annotated[str, Form(max_length=4000)],
    item_id: Annotated[int | None, Form(ge=1, le=2_147_483_647)] = None,
) -> Response:
    review.comment(session, issue_id, author=editor.email, body=body, item_id=item_id)
    return _back(request, issue_id, "Comment added.")
