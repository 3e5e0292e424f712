"""Click and open tracking's public endpoints (``newsletter.analytics``): HTTP only.

===========================================  ==================================================
``GET|HEAD /r/{issue_id}/{n}/{token}``       302 to link ``n`` of the issue, only when the
                                             signed token is that issue's (never an open
                                             redirect); anything else a plain 404 page
``GET|HEAD /o/{issue_id}/{token}.gif``       the open pixel: a 1x1 transparent GIF
===========================================  ==================================================

Both answer at once, on the event loop (no database session, no thread hop once the issue's
links are cached): the event is handed to the process's ``analytics.recorder``, which records
it with others a moment later (``Settings.track_flush_seconds``; 0: a background task records
each after its response), so a slow database never delays a reader's click. The responses
are ``no-store`` (each click and open reaches us) and ``Referrer-Policy: no-referrer``: the
site a reader lands on never sees the tracking URL and its token. The IP address and the user
agent are used to decide human or machine and then dropped; they are never stored.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter import db
from newsletter.analytics import recording, tokens
from newsletter.analytics.recorder import Recorder
from newsletter.analytics.recording import Hit, IssueLinks, Target
from newsletter.analytics.verdicts import Limits
from newsletter.api.errors import page_errors
from newsletter.config import Settings
from newsletter.exceptions import NotFound
from newsletter.models import utcnow
from newsletter.models_analytics import EngagementKind

log = logging.getLogger(__name__)
router = APIRouter(tags=["tracking"], responses=page_errors(404))

#: a 1x1 transparent GIF (43 bytes)
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
_MAX_ID = 2_147_483_647


def limits(settings: Settings) -> Limits:
    return Limits(
        machine_seconds=settings.track_machine_seconds,
        burst_seconds=settings.track_burst_seconds,
        burst_links=settings.track_burst_links,
        burst_share=settings.track_burst_share,
    )


def _number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > _MAX_ID:
        raise NotFound("no such link")
    return int(text)


def recorder(settings: Settings) -> Recorder | None:
    """The app's event buffer; None when ``track_flush_seconds`` is 0 (each event at once)."""
    if settings.track_flush_seconds <= 0:
        return None
    return Recorder(
        settings.database_url,
        limits=limits(settings),
        retention_days=settings.track_retention_days,
        interval=settings.track_flush_seconds,
    )


def _record(settings: Settings, hit: Hit) -> None:
    try:
        with db.session_scope(settings.database_url) as session:
            recording.record(
                session,
                hit,
                limits=limits(settings),
                retention_days=settings.track_retention_days,
            )
    except Exception:  # a lost event must not surface anywhere: the reader has their page
        log.exception("tracking: the %s of issue %s was not recorded", hit.kind, hit.issue_id)


def _keep(request: Request, hit: Hit, response: Response) -> Response:
    """Hand the hit to the recorder, or (no buffer) to a task run after the response."""
    buffer: Recorder | None = getattr(request.app.state, "recorder", None)
    if buffer is not None:
        buffer.add(hit)
    else:
        response.background = BackgroundTask(_record, request.app.state.settings, hit)
    return response


def _read(settings: Settings, issue: int, token: str) -> tokens.TrackToken | None:
    read = tokens.read_token(settings.secret_key, token)
    return read if read is not None and read.issue_id == issue else None


async def _links(settings: Settings, issue: int) -> IssueLinks:
    cached = recording.cached_links(issue)
    if cached is not None:
        return cached
    return await run_in_threadpool(recording.load_links, settings.database_url, issue)


def _hit(request: Request, read: tokens.TrackToken, kind: str, link: Target | None) -> Hit:
    return Hit(
        issue_id=read.issue_id,
        subscriber_id=read.subscriber_id,
        kind=kind,
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        ip=request.client.host if request.client else None,
        at=utcnow(),
        link=link,
    )


def _redirect(request: Request, read: tokens.TrackToken | None, link: Target | None) -> Response:
    if read is None or link is None:
        raise NotFound("this link is not one of ours")
    answer = RedirectResponse(link.url, status_code=302, headers=NO_STORE)
    if read.subscriber_id == tokens.NOBODY:
        return answer
    return _keep(request, _hit(request, read, EngagementKind.click, link), answer)


def _opened(request: Request, issue: int, token: str) -> Response:
    read = _read(request.app.state.settings, issue, token)
    if read is None:
        raise NotFound("this image is not one of ours")
    answer = Response(PIXEL, media_type="image/gif", headers=NO_STORE)
    if read.subscriber_id == tokens.NOBODY:
        return answer
    return _keep(request, _hit(request, read, EngagementKind.open, None), answer)


# HEAD (a link scanner's probe) answers like GET: one operation in the docs, not two
@router.head("/r/{issue_id}/{n}/{token}", include_in_schema=False)
@router.get(
    "/r/{issue_id}/{n}/{token}",
    summary="A tracked link: 302 to the issue's link",
    response_class=RedirectResponse,
    status_code=302,
)
async def click(issue_id: str, n: str, token: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    issue, number = _number(issue_id), _number(n)
    read = _read(settings, issue, token)
    link = None if read is None else (await _links(settings, issue)).by_n.get(number)
    return _redirect(request, read, link)


@router.head("/o/{issue_id}/{token}.gif", include_in_schema=False)
@router.get(
    "/o/{issue_id}/{token}.gif", summary="The open pixel: a 1x1 GIF", response_class=Response
)
async def pixel(issue_id: str, token: str, request: Request) -> Response:
    return _opened(request, _number(issue_id), token)


class Shortcut:
    """Answers a good ``/r/`` (its issue's links cached) or ``/o/`` before the app routes it.

    Pure ASGI, inside the app's URL and body checks: the same answer as ``click`` and
    ``pixel`` without the router's matching and the parameters' validation, a third of a
    redirect's cost. Anything it is not sure of (a bad token or number, an issue not cached,
    another method) goes on to the routes, which answer it as they always do.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = _shortcut(scope) if scope["type"] == "http" else None
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)


def _shortcut(scope: Scope) -> Response | None:
    path: str = scope["path"]
    if not path.startswith(("/r/", "/o/")) or scope["method"] not in ("GET", "HEAD"):
        return None
    parts, request = path.split("/"), Request(scope)
    try:
        if len(parts) == 5 and parts[1] == "r":
            issue = _number(parts[2])
            read = _read(request.app.state.settings, issue, parts[4])
            links = recording.cached_links(issue)
            if read is None or links is None:
                return None
            return _redirect(request, read, links.by_n.get(_number(parts[3])))
        if len(parts) == 4 and parts[1] == "o" and parts[3].endswith(".gif"):
            return _opened(request, _number(parts[2]), parts[3].removesuffix(".gif"))
    except NotFound:
        return None  # the route answers it: the same 404 page as ever
    return None
