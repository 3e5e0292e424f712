"""What every editor page shares: the page renderer, flash messages and redirects.

Pages are Jinja2 templates in ``templates/web/admin/`` (autoescaped), served with a strict
Content-Security-Policy: scripts and styles only from ``/admin/static``, no inline script, frames
only from this site (the email preview), forms only to this site, and no framing of the pages.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import HTMLResponse, RedirectResponse, Response

from newsletter.access.permissions import Actor
from newsletter.access.roles import Action
from newsletter.api.pages import environment
from newsletter.config import Settings

ADMIN_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}
FLASH_COOKIE = "nl_flash"
COOKIE_PATH = "/admin"


def secure_cookies(settings: Settings) -> bool:
    """Cookies carry Secure when the site is served over HTTPS (always, in production)."""
    return settings.base_url.startswith("https://") or settings.environment == "production"


def _flash_signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="newsletter.admin.flash")


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """An editor page; ``me`` (the signed-in editor), ``csrf`` and ``can(action)`` (what their
    role allows) are always in the context.

    ``flash`` (``{"kind": "error", "text": ...}``) shows a message now instead of the one a
    redirect left in the flash cookie.
    """
    settings: Settings = request.app.state.settings
    editor = getattr(request.state, "editor", None)
    actor: Actor | None = getattr(request.state, "actor", None)
    flash = context.pop("flash", None) or _read_flash(request, settings)

    def can(action: str, newsletter_id: int | None = None) -> bool:
        """For the templates: offer only what the signed-in editor's role allows."""
        return actor is not None and actor.can(Action(action), newsletter_id)

    html = (
        environment()
        .get_template(f"admin/{template}")
        .render(
            me=editor,
            can=can,
            csrf=editor.csrf_token if editor else "",
            flash=flash,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status, headers=ADMIN_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def _read_flash(request: Request, settings: Settings) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = _flash_signer(settings).loads(raw)
    except BadSignature:
        return None
    if not isinstance(value, dict):
        return None
    return {"kind": str(value.get("kind", "notice")), "text": str(value.get("text", ""))}


def redirect(
    request: Request, to: str, *, notice: str | None = None, error: str | None = None
) -> Response:
    """303 to ``to`` (always a path of this site), carrying a one-time message when given."""
    response = RedirectResponse(to if to.startswith("/") else "/admin/", status_code=303)
    if notice or error:
        set_flash(request, response, kind="error" if error else "notice", text=error or notice)
    return response


def set_flash(request: Request, response: Response, *, kind: str, text: str | None) -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(
        FLASH_COOKIE,
        _flash_signer(settings).dumps({"kind": kind, "text": (text or "")[:2000]}),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
    )


def wants_json(request: Request) -> bool:
    """A fetch from our own scripts (they send this header), not a plain form post."""
    return request.headers.get("x-requested-with") == "fetch"


def json_response(data: Any, *, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
