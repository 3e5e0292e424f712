"""Operator controls of an issue's send, over HTTP: ``/api/issues/{id}/...``, admin token only.

Routes do HTTP only: they call ``newsletter.sending.controls`` and ``newsletter.sending.ledger``,
and the domain's errors become responses in the app's error handlers. Every response is the issue's
status (``controls.Status.as_dict()``), with a few more keys where an action has a result.

A route that puts the issue (back) into ``sending`` commits before it dispatches: the worker reads
the issue in its own transaction, and a dispatch that ran before the commit would find nothing to
send (the beat's tick would only pick the issue up seconds later).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from newsletter.api.auth import TokenDep, require_token
from newsletter.api.deps import Dispatcher, DispatcherDep, SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.audience import segments
from newsletter.content import issues
from newsletter.sending import controls, local_time, subject_pick, subject_tests
from newsletter.sending.checks import qa_config
from newsletter.sending.start import start_send

router = APIRouter(
    prefix="/issues",
    tags=["issues"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)
#: an action refused in the issue's current state (or by QA)
STATE = api_errors(409)

StatusDict = dict[str, Any]


class ReasonBody(BaseModel):
    reason: str | None = Field(
        None, min_length=1, max_length=1000, description="shown in the issue's status"
    )


class SubjectTestBody(BaseModel):
    subjects: list[str] = Field(
        min_length=2, max_length=4, description="2 to 4 distinct subjects; variant n is the n-th"
    )
    sample: int = Field(ge=1, le=50, description="percent of the recipients each subject gets")
    wait: str = Field(
        max_length=20, description="how long the samples run before the pick: 4h, 90m, 1d"
    )
    by: Literal["clicks", "opens"] = Field(
        "clicks", description="the winner has the highest rate of unique human clickers/openers"
    )


class PickBody(BaseModel):
    variant: int = Field(ge=1, le=4, description="the winning variant (1 = the first subject)")


LocalTime = Annotated[
    str | None,
    Field(
        max_length=5,
        examples=["08:00"],
        description="each reader gets it at this time (HH:MM) in their own time zone (the "
        "newsletter's when unknown): the first day, from the start of the send, on which that "
        "time has not passed there; null: everyone at once",
    ),
]


class SendBody(BaseModel):
    subject_test: SubjectTestBody | None = Field(
        None, description="test these subjects on samples first (null: no test)"
    )
    segment: int | None = Field(
        None, ge=1, description="send to this segment of the newsletter's active subscribers"
    )
    everyone: bool = Field(False, description="send to all of them (drops a chosen segment)")
    local_time: LocalTime = None


class ScheduleBody(BaseModel):
    at: AwareDatetime = Field(description="when to send, with a time zone (ISO 8601)")
    local_time: LocalTime = None


OptionalReason = Annotated[ReasonBody | None, Body()]


def issue_status(session: Session, issue_id: int) -> StatusDict:
    """What every route here answers: the issue's status (``controls.Status.as_dict()``)."""
    return controls.status(session, issue_id=issue_id).as_dict()


def _commit_and_dispatch(session: Session, dispatch: Dispatcher, issue_id: int) -> None:
    session.commit()
    dispatch(issue_id)


def _reason(body: ReasonBody | None, action: str, token_name: str) -> str:
    if body is not None and body.reason:
        return body.reason
    return f"{action} by an operator (API token {token_name!r})"


@router.get("/{issue_id}/status", summary="Delivery counts, rate, ETA and the last errors")
def get_status(issue_id: Id, session: SessionDep) -> StatusDict:
    return issue_status(session, issue_id)


@router.post(
    "/{issue_id}/send",
    summary="Check and freeze the issue; a worker fills the ledger, then sends (preparing)",
    responses=STATE,
)
def send(
    issue_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    dispatch: DispatcherDep,
    body: Annotated[SendBody | None, Body()] = None,
) -> StatusDict:
    """A second send of a started issue is a no-op (``started`` is false)."""
    if body is not None and (body.segment is not None or body.everyone):
        segment = None if body.everyone else body.segment
        segments.set_issue_segment(session, issues.get_issue(session, issue_id), segment)
    if body is not None and "subject_test" in body.model_fields_set:
        _set_subject_test(session, issue_id, body.subject_test)
    if body is not None and "local_time" in body.model_fields_set:
        local_time.set_local_time(session, issues.get_issue(session, issue_id), body.local_time)
    start = start_send(settings, session, issue_id=issue_id, dispatch=dispatch)
    state = issue_status(session, issue_id)
    return {
        **state,
        "started": start.started,
        "recipients": start.recipients,
        "skipped": start.skipped,
    }


def _set_subject_test(session: Session, issue_id: int, body: SubjectTestBody | None) -> None:
    test = None
    if body is not None:
        test = subject_tests.spec(body.subjects, sample=body.sample, wait=body.wait, metric=body.by)
    subject_tests.configure(session, issues.get_issue(session, issue_id), test)


@router.post(
    "/{issue_id}/subject-test/pick",
    summary="Pick the subject test's winner now; the rest of the list gets its subject",
    responses=STATE,
)
def pick_subject(
    issue_id: Id,
    body: PickBody,
    session: SessionDep,
    token: TokenDep,
    dispatch: DispatcherDep,
) -> StatusDict:
    subject_pick.decide(
        session, issue_id=issue_id, variant=body.variant, by=f"API token {token.name!r}"
    )
    _commit_and_dispatch(session, dispatch, issue_id)
    return issue_status(session, issue_id)


@router.post("/{issue_id}/pause", summary="sending -> paused, within one batch", responses=STATE)
def pause(
    issue_id: Id, session: SessionDep, token: TokenDep, body: OptionalReason = None
) -> StatusDict:
    controls.pause(session, issue_id=issue_id, reason=_reason(body, "paused", token.name))
    return issue_status(session, issue_id)


@router.post("/{issue_id}/resume", summary="paused -> sending", responses=STATE)
def resume(issue_id: Id, session: SessionDep, dispatch: DispatcherDep) -> StatusDict:
    controls.resume(session, issue_id=issue_id)
    _commit_and_dispatch(session, dispatch, issue_id)
    return issue_status(session, issue_id)


@router.post(
    "/{issue_id}/cancel",
    summary="Stop for good; unsent recipients become cancelled",
    responses=STATE,
)
def cancel(
    issue_id: Id, session: SessionDep, token: TokenDep, body: OptionalReason = None
) -> StatusDict:
    cancelled = controls.cancel(
        session, issue_id=issue_id, reason=_reason(body, "cancelled", token.name)
    )
    return {**issue_status(session, issue_id), "cancelled": cancelled}


@router.post(
    "/{issue_id}/resend-failed",
    summary="Failed recipients (still active) back to pending",
    responses=STATE,
)
def resend_failed(issue_id: Id, session: SessionDep, dispatch: DispatcherDep) -> StatusDict:
    requeued = controls.resend_failed(session, issue_id=issue_id)
    if requeued:
        _commit_and_dispatch(session, dispatch, issue_id)
    return {**issue_status(session, issue_id), "requeued": requeued}


@router.post(
    "/{issue_id}/schedule", summary="draft -> scheduled at a time (QA runs now)", responses=STATE
)
def schedule(
    issue_id: Id, body: ScheduleBody, session: SessionDep, settings: SettingsDep
) -> StatusDict:
    if "local_time" in body.model_fields_set:
        local_time.set_local_time(session, issues.get_issue(session, issue_id), body.local_time)
    controls.schedule(session, issue_id=issue_id, at=body.at, checks=qa_config(settings))
    return issue_status(session, issue_id)


@router.post("/{issue_id}/unschedule", summary="scheduled -> draft", responses=STATE)
def unschedule(issue_id: Id, session: SessionDep) -> StatusDict:
    controls.unschedule(session, issue_id=issue_id)
    return issue_status(session, issue_id)
