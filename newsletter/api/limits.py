"""ASGI middleware that refuses a request before any route reads it.

- ``PublicBodyLimit``: a public route's body larger than ``settings.public_body_limit`` is a 413
  with the reason, by its Content-Length or, without one, as soon as the bytes read pass the
  limit. Authenticated routes (the admin API under ``/api`` except the sign-up, the editor UI
  under ``/admin`` except its sign-in form) take uploads and are not capped here.
- ``RefuseNulInUrl``: a NUL (``%00``) in the path or the query string is a 422; no database
  stores one, and no id, slug or search needs one.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.api.errors import error_response

PUBLIC_API = frozenset({"/api/subscribe"})
PUBLIC_ADMIN = frozenset({"/admin/login"})


def is_public(path: str) -> bool:
    """Whether a path is served without authentication (so its body is capped)."""
    if path.startswith("/api/") or path == "/api":
        return path.rstrip("/") in PUBLIC_API
    if path.startswith("/admin/") or path == "/admin":
        return path.rstrip("/") in PUBLIC_ADMIN
    return True


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTP errors to the app's handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class PublicBodyLimit:
    """Caps the body of public routes at ``limit``; a path under a prefix of ``wider`` (the
    providers' bounce webhooks, whose batches are larger than any form) at that one's limit."""

    def __init__(
        self, app: ASGIApp, *, limit: int, wider: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.wider = wider

    def _limit_for(self, path: str) -> int:
        return next((size for prefix, size in self.wider if path.startswith(prefix)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)  # the app's HTTP error handler answers
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        exc = BodyTooLarge(limit)
        response = error_response(Request(scope, receive), 413, exc.detail)
        await response(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    if "\x00" in scope["path"]:
        return True
    query: bytes = scope.get("query_string", b"")
    return b"\x00" in query or b"\x00" in unquote_to_bytes(query)


class RefuseNulInUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            message = "invalid request: the URL may not contain NUL (%00)"
            response = error_response(Request(scope, receive), 422, message)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
