"""The sending view: live progress of an issue's send, and the operator's controls.

``sending.js`` polls ``status.json`` (``controls.status``: counts, rate over the last seconds,
ETA, last errors) once a second while the issue is preparing (a worker fills its ledger) or
sending; the page itself works without it.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import EditorDep, protected_router
from newsletter.api.deps import DispatcherDep, SessionDep, SettingsDep
from newsletter.api.inputs import Id
from newsletter.content import issues
from newsletter.sending import controls, local_time, local_waves, relay_checks
from newsletter.sending.start import recipient_count
from newsletter.statuses import NOT_STARTED, IssueStatus

router = protected_router()


def _sending_url(issue_id: Id) -> str:
    return f"/admin/issues/{issue_id}/sending"


@router.get("/issues/{issue_id}/sending", include_in_schema=False)
def sending(request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep) -> Response:
    outline = issues.load_outline(session, issue_id)
    if outline.issue.status in NOT_STARTED:
        return views.redirect(request, f"/admin/issues/{issue_id}")
    state = controls.status(session, issue_id=issue_id)
    preparing = outline.issue.status == IssueStatus.preparing
    return views.render(
        request,
        "sending.html.j2",
        title=f"{outline.newsletter.name} #{outline.issue.number}: {outline.issue.title}",
        outline=outline,
        issue=outline.issue,
        state=state.as_dict(),
        # while a worker fills the ledger: how many it will hold (counted once, on this load)
        recipients=recipient_count(
            session,
            newsletter_id=outline.issue.newsletter_id,
            segment_id=outline.issue.segment_id,
        )
        if preparing
        else None,
        relays_out=[r for r in relay_checks.statuses(settings) if not r.up],
        now_iso=local_time.clock().isoformat(),  # a wave due before this is due now
        wave_times=local_waves.wave_times(
            session,
            issue_id=issue_id,
            newsletter_zone=outline.newsletter.time_zone,
            due_times=[w.due_at for w in state.waves],
        )
        if state.waves
        else [],
    )


@router.get("/issues/{issue_id}/status.json", include_in_schema=False)
def status_json(issue_id: Id, session: SessionDep) -> Response:
    return views.json_response(controls.status(session, issue_id=issue_id).as_dict())


@router.post("/issues/{issue_id}/pause", include_in_schema=False)
def pause(request: Request, issue_id: Id, session: SessionDep, me: EditorDep) -> Response:
    controls.pause(session, issue_id=issue_id, reason=f"paused by {me.label}")
    return views.redirect(request, _sending_url(issue_id), notice="Paused.")


@router.post("/issues/{issue_id}/resume", include_in_schema=False)
def resume(
    request: Request, issue_id: Id, session: SessionDep, dispatch: DispatcherDep
) -> Response:
    controls.resume(session, issue_id=issue_id)
    session.commit()
    dispatch(issue_id)
    return views.redirect(request, _sending_url(issue_id), notice="Resumed.")


@router.post("/issues/{issue_id}/cancel", include_in_schema=False)
def cancel(request: Request, issue_id: Id, session: SessionDep, me: EditorDep) -> Response:
    count = controls.cancel(session, issue_id=issue_id, reason=f"cancelled by {me.label}")
    return views.redirect(
        request, _sending_url(issue_id), notice=f"Cancelled; {count:,} recipients will not get it."
    )


@router.post("/issues/{issue_id}/resend-failed", include_in_schema=False)
def resend_failed(
    request: Request, issue_id: Id, session: SessionDep, dispatch: DispatcherDep
) -> Response:
    count = controls.resend_failed(session, issue_id=issue_id)
    if count:
        session.commit()
        dispatch(issue_id)
    return views.redirect(
        request, _sending_url(issue_id), notice=f"{count:,} failed recipients queued again."
    )
