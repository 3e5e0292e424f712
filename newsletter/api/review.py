"""Review over HTTP: ``/api/issues/{id}/review|approve|send-back|comments``, by token role.

The reviewer and a comment's author are the token (``token NAME``), as the audit trail names
it; where the newsletter requires review, a token that last edited the issue cannot approve it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from newsletter.access.permissions import Actor
from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.issues import issue_status
from newsletter.api.permissions import authorize_token
from newsletter.content import review
from newsletter.content.issues import get_issue

router = APIRouter(
    prefix="/issues",
    tags=["review"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 409, 422),
)


class SendBackBody(BaseModel):
    reason: str = Field("", max_length=500, description="shown in the issue's status")


class CommentBody(BaseModel):
    body: str = Field(min_length=1, max_length=4000)
    item_id: int | None = Field(None, ge=1, le=2_147_483_647, description="one of its items")


class Comment(BaseModel):
    id: int
    item_id: int | None
    author: str
    body: str
    created_at: datetime


def _who(request: Request) -> str:
    actor: Actor = request.state.actor
    return actor.label


@router.post("/{issue_id}/review", summary="draft -> in review")
def request_review(issue_id: Id, session: SessionDep) -> dict[str, Any]:
    review.request(session, issue_id)
    return issue_status(session, issue_id)


@router.post("/{issue_id}/approve", summary="in review -> approved (not by its last author)")
def approve(issue_id: Id, session: SessionDep, request: Request) -> dict[str, Any]:
    review.approve(session, issue_id, reviewer=_who(request))
    return issue_status(session, issue_id)


@router.post("/{issue_id}/send-back", summary="in review or approved -> draft, with a reason")
def send_back(issue_id: Id, session: SessionDep, body: SendBackBody) -> dict[str, Any]:
    review.send_back(session, issue_id, reason=body.reason)
    return issue_status(session, issue_id)


@router.get("/{issue_id}/comments", summary="The issue's comments, oldest first")
def list_comments(issue_id: Id, session: SessionDep) -> list[Comment]:
    get_issue(session, issue_id)  # 404 for an issue that does not exist
    notes = review.comments(session, issue_id)
    return [Comment.model_validate(c, from_attributes=True) for c in notes]


@router.post("/{issue_id}/comments", status_code=201, summary="Comment on the issue or an item")
def add_comment(issue_id: Id, session: SessionDep, request: Request, body: CommentBody) -> Comment:
    note = review.comment(
        session, issue_id, author=_who(request), body=body.body, item_id=body.item_id
    )
    return Comment.model_validate(note, from_attributes=True)
