"""The editor UI under ``/admin``: server-rendered pages for the newsroom.

===========================================  ===============================================
``/admin/login``, ``POST /admin/logout``     sign in (editor accounts), sign out
``/admin/``                                  dashboard: newsletters, recent issues, new draft
``/admin/articles...``                       the article library: search, filters, edit, import
``/admin/issues/{id}``                       the composer (drafts and scheduled issues)
``/admin/issues/{id}/editions``              the editions by language, side by side
``/admin/issues/{id}/sending``               live progress, pause, resume, cancel, resend
``/admin/subscribers...``                    list, search, filter, add, CSV import and export
``/admin/subscribers/{id}``                  one subscriber's story; edit, subscribe, erase...
``/admin/segments...``                       segments: list, editor with a live count, bulk tags
``/admin/newsletters...``                    list, new newsletter, settings and DNS records
``/admin/issues/{id}/report``                an issue's figures, per article; the heat view
``/admin/newsletters/{id}/analytics``        trends over the last sends; CSV of each table
``/admin/newsletters/{id}/autopilot``        the digest autopilot: schedule, rules, sources, runs
``/admin/static/...``                        the stylesheet and the few scripts (public)
===========================================  ===============================================

``install(app)`` wires the routers, the static files and the handlers that turn a refused
request (no session, bad CSRF token) or a domain error into a page instead of JSON.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from newsletter.api.admin import (
    account,
    analytics,
    articles,
    audit,
    auth,
    autopilot,
    composer,
    composer_qa,
    dashboard,
    editions,
    imports,
    local_time,
    newsletters,
    review,
    segments,
    sending,
    signin,
    subject_test,
    subscriber_page,
    subscribers,
    views,
)
from newsletter.content.rendering import TEMPLATES_DIR
from newsletter.exceptions import RateLimited, UserError

PREFIX = "/admin"
STATIC_DIR = TEMPLATES_DIR / "web" / "admin" / "static"
ROUTERS = (
    signin.public,
    signin.router,
    account.router,
    audit.router,
    dashboard.router,
    composer.router,
    composer_qa.router,
    editions.router,
    review.router,
    sending.router,
    subject_test.router,
    local_time.router,
    articles.router,
    imports.router,
    subscribers.router,
    subscriber_page.router,  # after it: /subscribers/new and the like before /{id}
    segments.router,
    newsletters.router,
    autopilot.router,
    analytics.router,
)


def install(app: FastAPI) -> None:
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="admin-static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(auth.SignInRequired, auth.sign_in_required)
    app.add_exception_handler(auth.CsrfRejected, auth.csrf_rejected)
    app.add_exception_handler(auth.SecondFactorRequired, auth.second_factor_required)


def is_admin(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def _back(request: Request) -> str:
    """Where the form came from (same site only), else the dashboard."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return f"{PREFIX}/"
    path = referer.path if referer.path.startswith(PREFIX) else f"{PREFIX}/"
    return path + (f"?{referer.query}" if referer.query else "")


def user_error(request: Request, exc: UserError, status: int) -> Response:
    """A domain error on an editor route: JSON for our scripts, a message on a page otherwise.

    The route's transaction has already been rolled back (the error left it), so redirecting
    back with the message loses nothing the editor typed into the database.
    """
    if views.wants_json(request):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
        response = views.json_response({"error": str(exc)}, status=status)
        response.headers.update(headers)
        return response
    if request.method in auth.SAFE_METHODS:
        request.state.editor = getattr(request.state, "editor", None)
        return views.render(
            request, "refused.html.j2", status=status, title="Not possible", message=str(exc)
        )
    if request.url.path.startswith(f"{PREFIX}/login"):
        request.state.editor = None
        return views.render(
            request,
            "refused.html.j2",
            status=status,
            title="Not possible",
            message=str(exc),
            back=f"{PREFIX}/login",
            back_label="Back to sign-in",
        )
    return views.redirect(request, _back(request), error=str(exc))
