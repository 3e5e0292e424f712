"""Signing editors in and out, and the guard every other editor route sits behind.

The session cookie (``nl_admin``) holds a random token signed with the app's secret key
(itsdangerous), is HttpOnly, SameSite=Strict, limited to ``/admin`` and Secure on HTTPS; the
database keeps the token's SHA-256 (``newsletter.access.editors``). ``guard`` refuses a request
without a
live session (a page: 303 to the sign-in form; anything else: 401) and, for every method that
changes something, one without the session's CSRF token in the ``csrf_token`` form field or the
``X-CSRF-Token`` header (403). The sign-in form itself is protected by a double-submit token in a
short-lived cookie of its own, and sign-in attempts are limited per client IP and per address.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import Response

from newsletter import db
from newsletter.access import editors
from newsletter.access.editors import SignedIn
from newsletter.api.admin import views
from newsletter.api.deps import SettingsDep
from newsletter.api.inputs import StrictRoute
from newsletter.audience import abuse
from newsletter.config import Settings

SESSION_COOKIE = "nl_admin"
LOGIN_COOKIE = "nl_login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: failed sign-ins per window, per client IP and per (address, client IP); successes are free
LOGIN_PER_IP, LOGIN_PER_ADDRESS, LOGIN_WINDOW = 30, 10, 900


class SignInRequired(Exception):
    """No live editor session behind this request."""


class CsrfRejected(Exception):
    """A state-changing request without this session's CSRF token."""


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="newsletter.admin.session")


def _session_token(request: Request, settings: Settings) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        token = _signer(settings).loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def current_editor(request: Request, settings: SettingsDep) -> SignedIn | None:
    token = _session_token(request, settings)
    if token is None:
        return None
    with db.session_scope(settings.database_url) as session:
        return editors.resolve(session, token)


def require_editor(request: Request, settings: SettingsDep) -> SignedIn:
    editor = current_editor(request, settings)
    if editor is None:
        raise SignInRequired
    request.state.editor = editor
    return editor


EditorDep = Annotated[SignedIn, Depends(require_editor)]


async def guard(request: Request, editor: EditorDep) -> SignedIn:
    """A signed-in editor, and for POST and the like, this session's CSRF token."""
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
                value = (await request.form()).get("csrf_token")
                sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent.encode(), editor.csrf_token.encode()):
            raise CsrfRejected
    return editor


def protected_router(**kwargs: object) -> APIRouter:
    """A router under /admin whose every route needs a session (and CSRF on changes), and reads
    its bodies strictly (``inputs.StrictRoute``: no NUL, no lone surrogate)."""
    kwargs.setdefault("route_class", StrictRoute)
    return APIRouter(prefix="/admin", dependencies=[Depends(guard)], **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- refusals


async def sign_in_required(request: Request, _exc: Exception) -> Response:
    if views.wants_json(request):
        return views.json_response({"error": "sign in first"}, status=401)
    if request.method in SAFE_METHODS:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return views.redirect(request, f"/admin/login?next={quote(target, safe='')}")
    request.state.editor = None
    return views.render(
        request,
        "refused.html.j2",
        status=401,
        title="Sign in required",
        message="Your session has ended. Sign in again, then repeat what you were doing.",
    )


async def csrf_rejected(request: Request, _exc: Exception) -> Response:
    text = "This form is out of date or did not come from this site. Reload the page and try again."
    if views.wants_json(request):
        return views.json_response({"error": text}, status=403)
    return views.render(request, "refused.html.j2", status=403, title="Refused", message=text)


# ---------------------------------------------------------------- sign in, sign out

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
    token = secrets.token_urlsafe(24)
    request.state.editor = None
    response = views.render(
        request,
        "login.html.j2",
        status=status,
        title="Sign in",
        login_token=token,
        next_url=next_url,
        error=error,
        email=email,
    )
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
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRejected
    limiter = _limiter(request, settings)
    ip = request.client.host if request.client else None
    limiter.check(ip=ip, address=email)
    with db.session_scope(settings.database_url) as session:
        user = editors.authenticate(session, email=email, password=password)
        token = editors.start_session(session, user) if user is not None else None
    if token is None:
        limiter.failed(ip=ip, address=email)
        return _login_page(
            request,
            settings,
            next_url=_safe_next(next),
            status=401,
            email=email,
            error="That email address and password do not match an editor account.",
        )
    response = views.redirect(request, _safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        _signer(settings).dumps(token),
        max_age=int(editors.SESSION_LIFETIME.total_seconds()),
        path=views.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=views.secure_cookies(settings),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, settings: SettingsDep) -> Response:
    token = _session_token(request, settings)
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
