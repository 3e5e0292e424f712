"""The editor session and the guard every editor route sits behind (signing in: ``signin``).

The session cookie (``nl_admin``) holds a random token signed with the app's secret key
(itsdangerous), is HttpOnly, SameSite=Strict, limited to ``/admin`` and Secure on HTTPS; the
database keeps the token's SHA-256 (``newsletter.access.editors``). ``guard`` refuses a request
without a live session (a page: 303 to the sign-in form; anything else: 401) and, for every
method that changes something, one without the session's CSRF token in the ``csrf_token`` form
field or the ``X-CSRF-Token`` header (403); ``authorize_editor`` then asks whether the editor's
role allows the route (``api.permissions``; 403 otherwise) and writes its audit entry.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import Response

from newsletter import db
from newsletter.access import editors, permissions
from newsletter.access.editors import SignedIn
from newsletter.access.permissions import Actor
from newsletter.api.admin import views
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import StrictRoute
from newsletter.api.permissions import authorized, client_ip
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


def session_signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="newsletter.admin.session")


def session_token(request: Request, settings: Settings) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        token = session_signer(settings).loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def current_editor(request: Request, settings: SettingsDep) -> SignedIn | None:
    token = session_token(request, settings)
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
    enrolled = editor.two_factor or not settings.two_factor_required(editor.role)
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


def authorize_editor(
    request: Request, editor: Annotated[SignedIn, Depends(guard)], session: SessionDep
) -> Iterator[Actor]:
    """The editor's role allows this route (403 otherwise); its audit entry once it returned."""
    actor = permissions.signed_in_actor(
        session, editor.user_id, editor.email, editor.role, ip=client_ip(request)
    )
    yield from authorized(request, session, actor)


def protected_router(**kwargs: object) -> APIRouter:
    """A router under /admin whose every route needs a session (and CSRF on changes), a role
    that allows it (``api.permissions``), and reads its bodies strictly (``inputs.StrictRoute``:
    no NUL, no lone surrogate)."""
    kwargs.setdefault("route_class", StrictRoute)
    guarded = [Depends(guard), Depends(authorize_editor, scope="function")]
    return APIRouter(prefix="/admin", dependencies=guarded, **kwargs)  # type: ignore[arg-type]


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
