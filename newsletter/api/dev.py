"""``/dev/outbox``: what the local SMTP sink received, in development only.

``create_app`` includes this router only when the settings' environment is ``development``;
anywhere else the paths do not exist (404). Even then only a client on this machine (loopback)
sees them: the messages carry every reader's personal links, and ``newsletter dev --host
0.0.0.0`` must not show them to the network. The folder is ``NEWSLETTER_OUTBOX_DIR``
(``newsletter dev --outbox``).

A message's HTML part is served like the composer's preview: ``Content-Security-Policy:
sandbox`` and shown in an ``<iframe sandbox>``, so nothing in it runs; its plain text and
headers are escaped into the page.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from newsletter.api.admin import views
from newsletter.api.admin.composer import PREVIEW_HEADERS
from newsletter.api.deps import SettingsDep
from newsletter.exceptions import NotFound
from newsletter.mail import outbox

PREFIX = "/dev/outbox"


def from_this_machine(request: Request) -> None:
    """Loopback clients only; anyone else is told the page does not exist."""
    host = request.client.host if request.client else ""
    try:
        loopback = ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise NotFound("not found")


router = APIRouter(include_in_schema=False, dependencies=[Depends(from_this_machine)])
Name = Annotated[str, Path(max_length=220)]


@router.get("/dev")
def dev_index() -> Response:
    return RedirectResponse(PREFIX, status_code=307)


@router.get(PREFIX)
def outbox_list(request: Request, settings: SettingsDep) -> HTMLResponse:
    folder = settings.outbox_dir.resolve()
    return views.render(
        request,
        "outbox.html.j2",
        title="Outbox",
        folder=str(folder),
        listing=outbox.listing(folder),
        limit=outbox.LIMIT,
    )


@router.get(PREFIX + "/{name}")
def outbox_message(request: Request, name: Name, settings: SettingsDep) -> HTMLResponse:
    shown = outbox.message(settings.outbox_dir.resolve(), name)
    return views.render(
        request,
        "outbox_message.html.j2",
        title=shown.entry.subject or "(no subject)",
        message=shown,
    )


@router.get(PREFIX + "/{name}/html")
def outbox_html(name: Name, settings: SettingsDep) -> HTMLResponse:
    shown = outbox.message(settings.outbox_dir.resolve(), name)
    if shown.html is None:
        raise NotFound(f"message {name!r} has no HTML part")
    return HTMLResponse(shown.html, headers=PREVIEW_HEADERS)
