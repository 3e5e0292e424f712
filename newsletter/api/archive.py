"""The public archive over HTTP (no login): what was sent, without anyone's personal links.

==========================================  =================================================
``GET /archive``                            every newsletter and its sent issues (HTML)
``GET /archive/feed.atom``                  the latest sent issues of all newsletters (Atom)
``GET /archive/{newsletter}``               one newsletter's sent issues, newest first
``GET /archive/{newsletter}/feed.atom``     its Atom feed
``GET /archive/{newsletter}/{number}``      the issue's email HTML as sent, personal bits
                                            removed; the emails' "view in browser" link
==========================================  =================================================

Unknown newsletters, unknown numbers and issues that are not ``sent`` (drafts, scheduled,
sending, cancelled) are all the same 404. Unlike the token pages these URLs are public: they may
be cached and indexed, but an issue page may not run scripts or be framed by another site.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import HTMLResponse, Response

from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import page_errors, short
from newsletter.api.inputs import MAX_ID, StrictRoute
from newsletter.api.pages import render
from newsletter.config import Settings
from newsletter.content import archive, archive_editions
from newsletter.exceptions import NotFound
from newsletter.i18n import N_, gettext
from newsletter.models import Newsletter

router = APIRouter(
    prefix="/archive", tags=["archive"], route_class=StrictRoute, responses=page_errors()
)
MISSING = page_errors(404)
Slug = Annotated[str, Path(description="the newsletter's slug", examples=["belarus-weekly"])]
Number = Annotated[str, Path(description="the issue's number", examples=["1"])]

PUBLIC_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
#: the email's HTML loads remote images and fonts and has inline styles; nothing else runs
ISSUE_HEADERS = PUBLIC_HEADERS | {
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline' https:; "
        "font-src https: data:; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
    ),
}
INDEX_HEADERS = PUBLIC_HEADERS | {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
ATOM = "application/atom+xml; charset=utf-8"


def _render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status, headers=INDEX_HEADERS)


def _not_found(exc: NotFound) -> HTMLResponse:
    message = short(str(exc))
    html = render("message.html.j2", title=N_("Not found"), message=message)
    return HTMLResponse(html, status_code=404, headers={"X-Content-Type-Options": "nosniff"})


def _group(
    settings: Settings, newsletter: Newsletter, issues: list[archive.ArchivedIssue]
) -> dict[str, Any]:
    return {
        "newsletter": newsletter,
        "issues": issues,
        "href": archive.newsletter_url(settings, newsletter),
        "subscribe": f"{archive.base_url(settings)}/subscribe?newsletter={newsletter.slug}",
    }


@router.get("", response_class=HTMLResponse, summary="The archive: every newsletter's issues")
def archive_index(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    sent = archive.sent_issues(session, settings)
    groups = [
        _group(settings, nl, [e for e in sent if e.newsletter.id == nl.id])
        for nl in archive.newsletters(session)
    ]
    feed = f"{archive.base_url(settings)}/archive/feed.atom"
    return _render(
        "archive.html.j2",
        title=N_("Archive"),
        intro="Every issue we have sent, as it was sent.",
        groups=groups,
        single=False,
        feeds=[{"title": "All newsletters", "href": feed}],
    )


@router.get(
    "/feed.atom",
    response_class=Response,
    summary="Atom feed of all newsletters",
    responses={200: {"content": {"application/atom+xml": {}}}},
)
def site_feed(session: SessionDep, settings: SettingsDep) -> Response:
    return Response(archive.site_feed(session, settings), media_type=ATOM, headers=PUBLIC_HEADERS)


@router.get(
    "/{newsletter}",
    response_class=HTMLResponse,
    summary="One newsletter's sent issues",
    responses=MISSING,
)
def newsletter_index(newsletter: Slug, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        nl = archive.get_newsletter(session, newsletter)
    except NotFound as exc:
        return _not_found(exc)
    home = archive.newsletter_url(settings, nl)
    return _render(
        "archive.html.j2",
        title=gettext("%(name)s: archive") % {"name": nl.name},
        intro=nl.description,
        groups=[_group(settings, nl, archive.sent_issues(session, settings, newsletter=nl))],
        single=True,
        feeds=[{"title": nl.name, "href": f"{home}/feed.atom"}],
    )


@router.get(
    "/{newsletter}/feed.atom",
    response_class=Response,
    summary="One newsletter's Atom feed",
    responses={200: {"content": {"application/atom+xml": {}}}, **MISSING},
)
def newsletter_feed(newsletter: Slug, session: SessionDep, settings: SettingsDep) -> Response:
    try:
        nl = archive.get_newsletter(session, newsletter)
    except NotFound as exc:
        return _not_found(exc)
    body = archive.newsletter_feed(session, settings, nl)
    return Response(body, media_type=ATOM, headers=PUBLIC_HEADERS)


def _is_issue_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID


@router.get(
    "/{newsletter}/{number}",
    response_class=HTMLResponse,
    summary="One sent issue, as sent (the emails' 'view in browser' link)",
    responses=MISSING,
)
def issue_page(
    newsletter: Slug,
    number: Number,
    session: SessionDep,
    settings: SettingsDep,
    lang: Annotated[
        str | None, Query(max_length=35, description="an edition's language (BCP 47)")
    ] = None,
) -> HTMLResponse:
    try:
        if not _is_issue_number(number):
            raise NotFound(f"no issue {number[:20]!r} in the archive of {newsletter[:80]!r}")
        entry, frozen = archive.get_archived(session, settings, newsletter, int(number))
    except NotFound as exc:
        return _not_found(exc)
    html = archive_editions.edition_page(session, settings, entry, frozen, lang)
    return HTMLResponse(html, headers=ISSUE_HEADERS)
