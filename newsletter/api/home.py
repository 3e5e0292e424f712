"""The site's root: ``/`` sends a visitor to the editor UI, ``/favicon.ico`` is the site's icon.

The icon is a small SVG (``templates/web/favicon.svg``), served at the path browsers ask for
and named by ``<link rel="icon">`` in the page layouts.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from newsletter.content.rendering import TEMPLATES_DIR

FAVICON = TEMPLATES_DIR / "web" / "favicon.svg"

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/admin/", status_code=307)


@lru_cache(maxsize=1)
def _icon() -> bytes:
    return FAVICON.read_bytes()


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(
        _icon(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
