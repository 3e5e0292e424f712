"""The public pages' language for one request: ``?lang=``, else the browser's Accept-Language.

A page about one reader (confirm, unsubscribe, preferences) uses the reader's own language
instead when they have one (``pages.page(language=...)``).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter import i18n


def accepted(header: str) -> list[str]:
    """Accept-Language's tags, the most wanted first ("ru-RU,ru;q=0.9,en;q=0.5")."""
    weighted = []
    for place, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*":
            weighted.append((-weight, place, tag))
    return [tag for _, _, tag in sorted(weighted)]


def request_locale(query: str, accept_language: str) -> str:
    asked = parse_qs(query).get("lang", [""])[0]
    if i18n.negotiate(asked) == i18n.primary(asked):
        return i18n.negotiate(asked)
    for tag in accepted(accept_language):
        if i18n.negotiate(tag) == i18n.primary(tag):
            return i18n.negotiate(tag)
    return i18n.SOURCE


class PageLocale:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        query = scope.get("query_string", b"").decode("latin-1")
        language = headers.get(b"accept-language", b"").decode("latin-1")
        with i18n.use(request_locale(query, language)):
            await self.app(scope, receive, send)
