"""The send card's subject test (set or drop it before the send) and the sending view's early
pick of the winner. HTTP only: ``sending.subject_tests`` and ``sending.subject_pick`` decide."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import EditorDep, protected_router
from newsletter.api.deps import DispatcherDep, SessionDep
from newsletter.api.inputs import Id
from newsletter.content import issues
from newsletter.exceptions import InvalidInput
from newsletter.sending import subject_pick, subject_tests

router = protected_router()
Subject = Annotated[str, Form(max_length=400)]


@router.post("/issues/{issue_id}/subject-test", include_in_schema=False)
def save_subject_test(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    subject_1: Subject = "",
    subject_2: Subject = "",
    subject_3: Subject = "",
    subject_4: Subject = "",
    sample: Annotated[str, Form(max_length=4)] = "10",
    wait: Annotated[str, Form(max_length=20)] = "4h",
    by: Annotated[str, Form(max_length=8)] = "clicks",
    action: Annotated[str, Form(max_length=8)] = "save",
) -> Response:
    """Set the issue's subject test from the card's fields (``action=remove`` drops it)."""
    issue = issues.get_issue(session, issue_id)
    url = f"/admin/issues/{issue_id}#send-panel"
    if action == "remove":
        subject_tests.configure(session, issue, None)
        return views.redirect(request, url, notice="No subject test: one subject for everyone.")
    if not (sample.isascii() and sample.isdigit()):
        raise InvalidInput("the sample is a whole percent, e.g. 10")
    typed = [s for s in (subject_1, subject_2, subject_3, subject_4) if s.strip()]
    test = subject_tests.spec(typed, sample=int(sample), wait=wait, metric=by)
    row = subject_tests.configure(session, issue, test)
    assert row is not None
    return views.redirect(request, url, notice=subject_tests.headline(row).capitalize() + ".")


@router.post("/issues/{issue_id}/subject-test/pick", include_in_schema=False)
def pick_subject(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    me: EditorDep,
    dispatch: DispatcherDep,
    variant: Annotated[int, Form(ge=1, le=4)],
) -> Response:
    """The editor's early pick: the rest of the list gets this subject now."""
    test = subject_pick.decide(session, issue_id=issue_id, variant=variant, by=me.label)
    session.commit()
    dispatch(issue_id)
    notice = test.reason if test is not None else None
    return views.redirect(request, f"/admin/issues/{issue_id}/sending", notice=notice)
