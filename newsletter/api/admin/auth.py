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
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from starlette.responses import Response

from newsletter import db
from newsletter.access import editors, two_factor
from newsletter.access.editors import SignedIn
from newsletter.api.admin import views
from newsletter.api.deps import SettingsDep
from newsletter.api.inputs import StrictRoute
from newsletter.audience import abuse
from newsletter.config import Settings

SESSION_COOKIE = "nl_admin"
LOGIN_COOKIE = "nl_login"
#: a password accepted, the second factor still due: the user id, signed, for a few minutes
SECOND_FACTOR_COOKIE = "nl_2fa"
SECOND_FACTOR_SECONDS = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: failed sign-ins per window, per client IP and per (address, client IP); successes are free
LOGIN_PER_IP, LOGIN_PER_ADDRESS, LOGIN_WINDOW = 30, 10, 900


class SignInRequired(Exception):
    """No live editor session behind this request."""


class CsrfRejected(Exception):
    """A state-changing request without this session's CSRF token."""


class SecondFactorRequired(Exception):
    """The site requires two-factor sign-in and this editor has not turned it on yet."""


#: what an editor without the required second factor may still open: setting it up, leaving
ENROLMENT_PATHS = ("/admin/account", "/admin/logout")


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
    """A signed-in editor, and for POST and the like, this session's CSRF token; where the site
    requires two-factor sign-in, an editor without it reaches only the set-up."""
    settings: Settings = request.app.state.settings
    enrolled = editor.two_factor or not settings.two_factor_required
    if not enrolled and not request.url.path.startswith(ENROLMENT_PATHS):
        raise SecondFactorRequired
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


async def second_factor_required(request: Request, _exc: Exception) -> Response:
    text = "This site requires two-factor sign-in: set it up before you go on."
    if views.wants_json(request):
        return views.json_response({"error": text}, status=403)
    return views.redirect(request, "/admin/account", error=text)


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
        second_factor = user is not None and two_factor.enabled(user)
        token = editors.start_session(session, user) if user and not second_factor else None
        user_id = user.id if user is not None else None
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


def _signed_in(request: Request, settings: Settings, token: str, next_url: str) -> Response:
    response = views.redirect(request, _safe_next(next_url))
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
    token = secrets.token_urlsafe(24)
    request.state.editor = None
    response = views.render(
        request,
        "login_code.html.j2",
        status=status,
        title="Two-factor sign-in",
        login_token=token,
        next_url=next_url,
        error=error,
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


@public.post("/login/code", include_in_schema=False)
def login_code(
    request: Request,
    settings: SettingsDep,
    code: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/admin/",
) -> Response:
    """The second step: a code from the app (or a recovery code) for the password just given."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRejected
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
