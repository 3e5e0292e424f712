"""The sign-up box for article pages: ``GET /embed/<slug>`` and the code to paste.

``GET /embed/<slug>?source=<article URL>`` is a small page in the newsletter's branding (colour,
logo, name, its one-line pitch, the latest sent issue's lead headline) with a sign-up form that
posts to ``/subscribe``; it is made to sit in an ``<iframe>`` on another site, 320 to 700 px
wide. Its answers, and those of ``POST /subscribe`` sent from it (``embed=1``), are the only
pages of the service other sites may frame (``frame-ancestors *``, no ``X-Frame-Options``);
every other page keeps ``frame-ancestors 'none'`` (``pages.PRIVATE_HEADERS``). Framing them is
harmless: they show nothing personal, and a sign-up only sends a confirmation email.

The form carries a signed ``issued`` time (the minimum fill time) and the honeypot
(``newsletter.audience.signup_guard``), and the article's address as ``source``: the iframe's
``?source=``, else the Referer of the iframe's request (sent in full when the iframe has
``referrerpolicy="no-referrer-when-downgrade"``, as the code to paste does).

The code to paste is written by ``newsletter.api.admin.signup_box`` (the settings page).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from sqlmodel import Session
from starlette.responses import HTMLResponse

from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import page_errors
from newsletter.api.inputs import StrictRoute
from newsletter.api.pages import page
from newsletter.audience.consent import consent_text, tracking_notice
from newsletter.audience.embed import SOURCE_MAX, latest_issue, page_source
from newsletter.audience.signup_guard import HONEYPOT_FIELD, issue_stamp
from newsletter.config import Settings
from newsletter.models import Newsletter
from newsletter.newsletters import get_newsletter

router = APIRouter(tags=["public pages"], route_class=StrictRoute, responses=page_errors())

#: the sign-up box's headers: like every public page's, but any site may frame it
EMBED_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: 'self'; "
        "form-action 'self'; frame-ancestors *; base-uri 'none'"
    ),
}


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def own_page(settings: Settings, url: str) -> bool:
    """Whether ``url`` is this service's own sign-up form or box (no article: not a source)."""
    base = _base(settings)
    return url.split("?")[0] == f"{base}/subscribe" or url.startswith(f"{base}/embed/")


def source_of(settings: Settings, given: str | None, referer: str | None) -> str | None:
    """The article's address: the one given, else the Referer; None if neither is one."""
    for candidate in (given, referer):
        url = page_source(candidate)
        if url and not own_page(settings, url):
            return url
    return None


def embed_page(
    session: Session,
    settings: Settings,
    newsletter: Newsletter,
    *,
    source: str | None,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    issued: str | None = None,
) -> HTMLResponse:
    """The sign-up box (again, with ``error``, when a sign-up from it was refused: then with the
    time it was first served, ``issued``, so a reader who fixes a typo at once is no bot)."""
    version = settings.consent_text_version
    latest = latest_issue(session, newsletter.id) if newsletter.id else None
    return page(
        "embed.html.j2",
        status=status,
        headers=headers,
        base_headers=EMBED_HEADERS,
        newsletter=newsletter,
        latest=latest,
        latest_url=f"{_base(settings)}/archive/{newsletter.slug}/{latest.number}"
        if latest
        else None,
        source=source or "",
        email=email,
        error=error,
        honeypot=HONEYPOT_FIELD,
        issued=issued or issue_stamp(settings.secret_key),
        consent_version=version,
        consent_paragraphs=[
            *consent_text(version).split("\n\n"),
            *_notice([newsletter], settings.track_retention_days),
        ],
    )


def _notice(newsletters: list[Newsletter], retention_days: int) -> list[str]:
    notice = tracking_notice(newsletters, retention_days=retention_days)
    return [notice] if notice else []


def embed_done(
    newsletter: Newsletter | None,
    message: str,
    *,
    title: str = "Check your inbox",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """What the box shows after a sign-up (a person's or, just the same, a bot's)."""
    return page(
        "embed_done.html.j2",
        status=status,
        headers=headers,
        base_headers=EMBED_HEADERS,
        newsletter=newsletter,
        title=title,
        message=message,
    )


@router.get(
    "/embed/{slug}",
    response_class=HTMLResponse,
    summary="The sign-up box, to frame in an article page",
    responses=page_errors(404, 422),
)
def embed(
    slug: str,
    session: SessionDep,
    settings: SettingsDep,
    source: Annotated[str | None, Query(max_length=4 * SOURCE_MAX)] = None,
    referer: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> HTMLResponse:
    newsletter = get_newsletter(session, slug)
    return embed_page(session, settings, newsletter, source=source_of(settings, source, referer))
