"""The HTTP app: ``create_app(settings)`` wires the routers and maps domain errors to JSON.

One router per area lives in its own module of ``newsletter.api`` and is listed in ``ROUTERS``;
each decides its own authentication (the admin routers require a bearer token, public routes such
as sign-up need not). Every error body is ``{"error": "..."}`` (plus ``findings`` for QA).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import newsletter
from newsletter.api import admin, archive, bounces, issues, ops, public, subscribers, webhooks
from newsletter.api.deps import Dispatcher, celery_dispatch
from newsletter.config import Settings, get_settings
from newsletter.exceptions import (
    InvalidInput,
    InvalidLink,
    InvalidState,
    InvalidToken,
    NotFound,
    QABlocked,
    RateLimited,
    RevokedToken,
    UserError,
)

API_PREFIX = "/api"
ROUTERS: tuple[APIRouter, ...] = (
    issues.router,
    subscribers.router,
    bounces.router,
    webhooks.router,
    public.api,
)
#: routers served at the site's root: the public HTML pages (sign-up, confirm, unsubscribe, ...),
#: the archive (/archive) and the operations endpoints (/healthz, /readyz, /metrics)
PAGES: tuple[APIRouter, ...] = (public.pages, archive.router, ops.router)

#: domain errors and their status codes; the most specific class wins (Starlette walks the MRO)
STATUS_OF: dict[type[UserError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    InvalidState: 409,
    QABlocked: 409,
    InvalidLink: 400,
    InvalidToken: 401,
    RevokedToken: 403,
    RateLimited: 429,
    UserError: 400,
}

Handler = Callable[[Request, Exception], Awaitable[Response]]


def create_app(settings: Settings | None = None, *, dispatch: Dispatcher | None = None) -> FastAPI:
    """The app for ``settings`` (default: the environment's).

    ``dispatch`` queues the batches of an issue that is (again) sending; the default is
    ``worker.tasks.dispatch.delay`` on the broker ``worker.celery_app`` is configured for.
    """
    app = FastAPI(
        title="newsletter",
        summary="Admin API: issue sends (schedule, send, pause, resume, cancel, resend, status)",
        version=getattr(newsletter, "__version__", "0"),
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings or get_settings()
    app.state.dispatch = dispatch or celery_dispatch
    for exc_class, code in STATUS_OF.items():
        app.add_exception_handler(exc_class, _user_error(code))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in PAGES:
        app.include_router(router)
    admin.install(app)
    return app


def _user_error(code: int) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserError)
        if admin.is_admin(request):  # the editor UI answers with pages, not JSON
            return admin.user_error(request, exc, code)
        body: dict[str, object] = {"error": str(exc)}
        headers = None
        if isinstance(exc, QABlocked):
            body["findings"] = exc.findings
        if isinstance(exc, InvalidToken):
            headers = {"WWW-Authenticate": "Bearer"}
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(body, status_code=code, headers=headers)

    return handle


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the same shape as ours."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    """A malformed request: one readable line in ``error``, pydantic's list in ``detail``."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    if admin.is_admin(request):  # a form of the editor UI: the message goes back to the page
        return admin.user_error(request, InvalidInput("; ".join(parts)), 422)
    return JSONResponse(
        {"error": "invalid request: " + "; ".join(parts), "detail": jsonable_encoder(errors)},
        status_code=422,
    )
