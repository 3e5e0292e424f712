"""The editor's own account: turning two-factor sign-in on (QR code, recovery codes) and off."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import Form, Request
from starlette.responses import Response

from newsletter.access import editors, two_factor
from newsletter.access.editors import SignedIn
from newsletter.api.admin import views
from newsletter.api.admin.auth import EditorDep, protected_router
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.models import EditorUser

router = protected_router()


def _me(session: SessionDep, editor: SignedIn) -> EditorUser:
    user = editors.get_user_by_id(session, editor.user_id)
    assert user is not None  # the guard let a live session of an enabled account through
    return user


@router.get("/account", include_in_schema=False)
def account(
    request: Request, session: SessionDep, settings: SettingsDep, editor: EditorDep
) -> Response:
    user = _me(session, editor)
    enrolment = two_factor.pending(user, secret_key=settings.secret_key)
    return views.render(
        request,
        "account.html.j2",
        title="Your account",
        user=user,
        enabled=two_factor.enabled(user),
        required=settings.two_factor_required(user.role),
        codes_left=two_factor.recovery_codes_left(session, user),
        enrolment=enrolment,
        qr=segno.make(enrolment.uri, error="m").svg_data_uri(scale=5) if enrolment else None,
    )


@router.post("/account/2fa/begin", include_in_schema=False)
def begin(
    request: Request, session: SessionDep, settings: SettingsDep, editor: EditorDep
) -> Response:
    two_factor.begin(session, _me(session, editor), secret_key=settings.secret_key)
    return views.redirect(request, "/admin/account")


@router.post("/account/2fa/confirm", include_in_schema=False)
def confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    editor: EditorDep,
    code: Annotated[str, Form(max_length=40)],
) -> Response:
    codes = two_factor.confirm(session, _me(session, editor), code, secret_key=settings.secret_key)
    return views.render(
        request, "account_codes.html.j2", title="Your recovery codes", recovery_codes=codes
    )


@router.post("/account/2fa/disable", include_in_schema=False)
def disable(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    editor: EditorDep,
    password: Annotated[str, Form(max_length=1024)],
    code: Annotated[str, Form(max_length=40)],
) -> Response:
    two_factor.turn_off_own(
        session,
        _me(session, editor),
        password=password,
        code=code,
        secret_key=settings.secret_key,
    )
    return views.redirect(request, "/admin/account", notice="Two-factor sign-in is off.")
