"""The HTTP app: ``create_app(settings)`` wires the routers and maps domain errors to responses.

One router per area lives in its own module of ``newsletter.api`` and is listed in ``ROUTERS``;
each decides its own authentication (the admin routers require a bearer token, public routes such
as sign-up need not). Every error is an answer with a reason (``errors.py``): JSON
``{"error": "..."}`` under ``/api`` (plus ``findings`` for QA, ``detail`` for a 422), the editor
UI's pages under ``/admin``, a small HTML page elsewhere. Before any route runs, a public route's
body is capped and a NUL in the URL refused (``limits.py``); bodies are read strictly
(``inputs.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool

import newsletter
from newsletter import db
from newsletter.api import (
    admin,
    analytics,
    archive,
    autopilot,
    bounces,
    dev,
    editions,
    embed,
    errors,
    home,
    imports,
    issues,
    links,
    newsletters,
    ops,
    provider_webhooks,
    review,
    segments,
    signup,
    subscriber_desk,
    subscribers,
    tracking,
    webhooks,
)
from newsletter.api.deps import (
    ConfirmationSender,
    Dispatcher,
    ImportStarter,
    no_confirmation_queue,
    no_import_queue,
    no_queue,
)
from newsletter.api.limits import PublicBodyLimit, RefuseNulInUrl
from newsletter.api.locale import PageLocale
from newsletter.audience.signup_guard import bot_counter
from newsletter.config import Settings, get_settings
from newsletter.exceptions import (
    Forbidden,
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

API_PREFIX = errors.API_PREFIX
ROUTERS: tuple[APIRouter, ...] = (
    newsletters.router,
    issues.router,
    editions.router,
    review.router,
    imports.router,  # before subscribers: /subscribers/imports is no subscriber id
    subscribers.router,
    subscriber_desk.router,
    segments.router,
    autopilot.router,
    bounces.router,
    webhooks.router,
    analytics.router,
    signup.api,
)
#: routers served at the site's root: the public HTML pages (sign-up, embed), the archive
#: (/archive), the operations endpoints (/healthz, /readyz, /metrics), and / with the favicon
#: (the tracking router, /r/ and /o/, and the personal links' pages go before all of them)
PAGES: tuple[APIRouter, ...] = (
    signup.pages,
    embed.router,
    archive.router,
    ops.router,
    home.router,
    provider_webhooks.router,
)

#: domain errors and their status codes; the most specific class wins (Starlette walks the MRO)
STATUS_OF: dict[type[UserError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    InvalidState: 409,
    QABlocked: 409,
    InvalidLink: 400,
    InvalidToken: 401,
    RevokedToken: 403,
    Forbidden: 403,
    RateLimited: 429,
    UserError: 400,
}


def no_telemetry() -> dict[str, Any]:
    """FastAPI's native OpenTelemetry off, where the installed FastAPI has it: it looks up the
    global providers on every request (measured: two thirds of a redirect's cost in the app),
    and the service configures no OpenTelemetry (its metrics are Prometheus', ``/metrics``)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, the tracking events still buffered are recorded (a clean stop loses none).
    (The server process freezes what it loaded out of the collector's sight at its start:
    ``newsletter.cli.run.production_app``.)"""
    yield
    if app.state.recorder is not None:
        await run_in_threadpool(app.state.recorder.stop)


def create_app(
    settings: Settings | None = None,
    *,
    dispatch: Dispatcher | None = None,
    send_confirmation: ConfirmationSender | None = None,
    start_import: ImportStarter | None = None,
) -> FastAPI:
    """The app for ``settings`` (default: the environment's), with its ports to the workers.

    ``dispatch`` queues the batches of an issue that is (again) sending; ``send_confirmation``
    queues a sign-up's confirmation email; ``start_import`` queues a CSV import job.
    ``newsletter serve`` passes the Celery ones (``worker.dispatch``); without them the app logs
    that nothing was queued.
    """
    app = FastAPI(
        title="newsletter",
        summary="Admin API: issue sends (schedule, send, pause, resume, cancel, resend, status)",
        version=getattr(newsletter, "__version__", "0"),
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=lifespan,
        **no_telemetry(),
    )
    app.state.settings = settings = settings or get_settings()
    db.get_engine(settings.database_url, settings.pool())  # this process's pool, from settings
    app.state.dispatch = dispatch or no_queue
    app.state.send_confirmation = send_confirmation or no_confirmation_queue
    app.state.bot_counter = bot_counter(settings)  # sign-ups refused as bots' (/metrics)
    app.state.start_import = start_import or no_import_queue
    app.state.recorder = tracking.recorder(settings)  # clicks and opens, recorded in batches
    errors.install(app, STATUS_OF)
    # first: the router tries routes in order, and the redirect is the hot path; then the
    # personal links (confirm, unsubscribe, preferences), whose one-click POSTs come in storms:
    # after the 90-odd API routes, matching cost a one-click POST about 0.6 ms of its 10 ms of CPU
    app.include_router(tracking.router)
    app.include_router(links.router)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in PAGES:
        app.include_router(router)
    if settings.environment == "development":
        app.include_router(dev.router)  # /dev/outbox: the local sink's messages
    admin.install(app)
    app.add_middleware(tracking.Shortcut)  # a good click answered before the routing
    app.add_middleware(
        PublicBodyLimit,
        limit=settings.public_body_limit,
        wider=((provider_webhooks.PREFIX + "/", settings.provider_webhook_body_limit),),
    )
    app.add_middleware(PageLocale)
    app.add_middleware(RefuseNulInUrl)
    return app
