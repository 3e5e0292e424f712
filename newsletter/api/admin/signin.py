"""Signing editors in (a password, then a code when they turned two-factor sign-in on) and out.

The sign-in form is protected by a double-submit token in a short-lived cookie of its own;
attempts (passwords and codes alike) are limited per client IP and per address, only failures
counting. A password accepted for an account with a second factor starts no session: a signed
cookie holds the user id for ``SECOND_FACTOR_SECONDS`` while the code is asked for. Each sign-in
is an audit entry.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.responses import Response

from newsletter import db
from newsletter.access import audit, editors, permissions, two_factor
from newsletter.api.admin import views
from newsletter.api.admin.auth import (
    LOGIN_COOKIE,
    LOGIN_PER_ADDRESS,
    LOGIN_PER_IP,
    LOGIN_WINDOW,
    SECOND_FACTOR_COOKIE,
    SECOND_FACTOR_SECONDS,
    SESSION_COOKIE,
    CsrfRejected,
    current_editor,
    protected_router,
    session_signer,
    session_token,
)
from newsletter.api.deps import SettingsDep
from newsletter.api.inputs import StrictRoute
from newsletter.audience import abuse
from newsletter.config import Settings

public = APIRouter(prefix="/admin", route_class=StrictRoute)
router = protected_router()


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin/"


def _login_page(
    request: Request,
    settings: Settings,
    *,
    next_url: str,
    error: str | None,
    status: int = 200,
    email: str = "",
) -> Response:
    return _form_page(
        request,
        settings,
        "login.html.j2",
        status=status,
        title="Sign in",
        next_url=next_url,
        error=error,
        email=email,
    )


def _form_page(
    request: Request, settings: Settings, template: str, *, status: int, **context: object
) -> Response:
    """A sign-in step's page, with a fresh double-submit token in its form and its cookie."""
    token = secrets.token_urlsafe(24)
    request.state.editor = None
    response = views.render(request, template, status=status, login_token=token, **context)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/admin/login",
        httponly=True,
        samesite="strict",
        secure=views.secure_cookies(settings),
    )
    return response


def _check_form_token(request: Request, sent: str) -> None:
    """The double-submit check of the sign-in forms (no session yet, so no session token)."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected


@public.get("/login", include_in_schema=False)
def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    if current_editor(request, settings) is not None:
        return views.redirect(request, _safe_next(next))
    return _login_page(request, settings, next_url=_safe_next(next), error=None)


def _limiter(request: Request, settings: Settings) -> abuse.FailureLimiter:
    limiter: abuse.FailureLimiter | None = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        window = abuse.window_for(settings, prefix="newsletter:login:")
        limiter = abuse.FailureLimiter(window, LOGIN_PER_IP, LOGIN_PER_ADDRESS, LOGIN_WINDOW)
        request.app.state.login_limiter = limiter
    return limiter


@public.post("/login", include_in_schema=False)
def login(
    request: Request,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/admin/",
) -> Response:
    _check_form_token(request, csrf_token)
    limiter = _limiter(request, settings)
    ip = request.client.host if request.client else None
    limiter.check(ip=ip, address=email)
    with db.session_scope(settings.database_url) as session:
        user = editors.authenticate(session, email=email, password=password)
        second_factor = user is not None and two_factor.enabled(user)
        token = editors.start_session(session, user) if user and not second_factor else None
        user_id = user.id if user is not None else None
        if token is not None and user_id is not None:
            _audit_sign_in(session, user_id, ip, "sign-in")
    if user_id is None:
        limiter.failed(ip=ip, address=email)
        return _login_page(
            request,
            settings,
            next_url=_safe_next(next),
            status=401,
            email=email,
            error="That email address and password do not match an editor account.",
        )
    if token is None:  # the password was right; the code comes next
        response = _code_page(request, settings, next_url=_safe_next(next), error=None)
        response.set_cookie(
            SECOND_FACTOR_COOKIE,
            _pending_signer(settings).dumps(user_id),
            max_age=SECOND_FACTOR_SECONDS,
            path="/admin/login",
            httponly=True,
            samesite="strict",
            secure=views.secure_cookies(settings),
        )
        return response
    return _signed_in(request, settings, token, next)


def _audit_sign_in(session: Session, user_id: int, ip: str | None, detail: str) -> None:
    actor = permissions.editor_actor(session, user_id, ip=ip)
    audit.record(session, actor, "sign-in", target_type="user", target_id=user_id, detail=detail)


def _signed_in(request: Request, settings: Settings, token: str, next_url: str) -> Response:
    response = views.redirect(request, _safe_next(next_url))
    response.set_cookie(
        SESSION_COOKIE,
        session_signer(settings).dumps(token),
        max_age=int(editors.SESSION_LIFETIME.total_seconds()),
        path=views.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=views.secure_cookies(settings),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login")
    response.delete_cookie(SECOND_FACTOR_COOKIE, path="/admin/login")
    return response


# ---------------------------------------------------------------- the second factor


def _pending_signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="newsletter.admin.second-factor")


def _pending_user(request: Request, settings: Settings) -> int | None:
    raw = request.cookies.get(SECOND_FACTOR_COOKIE)
    if not raw:
        return None
    try:
        value = _pending_signer(settings).loads(raw, max_age=SECOND_FACTOR_SECONDS)
    except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
        return None
    return value if isinstance(value, int) else None


def _code_page(
    request: Request, settings: Settings, *, next_url: str, error: str | None, status: int = 200
) -> Response:
    return _form_page(
        request,
        settings,
        "login_code.html.j2",
        status=status,
        title="Two-factor sign-in",
        next_url=next_url,
        error=error,
    )


@public.post("/login/code", include_in_schema=False)
def login_code(
    request: Request,
    settings: SettingsDep,
    code: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/admin/",
) -> Response:
    """The second step: a code from the app (or a recovery code) for the password just given."""
    _check_form_token(request, csrf_token)
    user_id = _pending_user(request, settings)
    if user_id is None:
        return _login_page(
            request,
            settings,
            next_url=_safe_next(next),
            status=401,
            error="The sign-in took too long. Enter your email address and password again.",
        )
    limiter = _limiter(request, settings)
    ip = request.client.host if request.client else None
    with db.session_scope(settings.database_url) as session:
        user = editors.get_user_by_id(session, user_id)
        address = user.email if user is not None else str(user_id)
        limiter.check(ip=ip, address=address)  # the same limits as the password's
        accepted = user is not None and two_factor.verify(
            session, user, code, secret_key=settings.secret_key
        )
        token = editors.start_session(session, user) if user is not None and accepted else None
        if token is not None:
            _audit_sign_in(session, user_id, ip, "sign-in (with a second factor)")
    if token is None:
        limiter.failed(ip=ip, address=address)
        return _code_page(
            request,
            settings,
            next_url=_safe_next(next),
            status=401,
            error="That code does not work. Type the 6 digits your app shows now, "
            "or one of your recovery codes.",
        )
    return _signed_in(request, settings, token, next)


@router.post("/logout", include_in_schema=False)
def logout(request: Request, settings: SettingsDep) -> Response:
    token = session_token(request, settings)
    if token is not None:
        with db.session_scope(settings.database_url) as session:
            editors.end_session(session, token)
    response = views.redirect(request, "/admin/login", notice="You are signed out.")
    response.delete_cookie(
        SESSION_COOKIE,
        path=views.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=views.secure_cookies(settings),
    )
    return response
