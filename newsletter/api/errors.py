"""Error answers: every failure is a response with a reason, in the shape of the site's part.

- ``/api/...``: JSON ``{"error": "..."}`` (``ErrorBody``; a 422 adds pydantic's ``detail`` with
  each input cut to a short prefix, a QA refusal adds ``findings``);
- ``/admin/...``: the editor UI's own pages and redirects (``admin.user_error``);
- everything else (sign-up, personal links, archive, unknown paths): a small HTML page.

``install(app, status_of)`` registers the handlers: domain errors by ``status_of``; Starlette's
HTTP errors; malformed requests (422); numbers out of range (``OverflowError``) and values the
database refuses (``DataError``) as 422; input nested too deeply (``RecursionError``) as 422; a
query on a table the schema does not have yet as 503 "schema not at head"; anything else as 500.
No answer quotes more than ``MAX_ERROR_CHARS`` characters, nor more than ``MAX_INPUT_CHARS`` of
any input (``MAX_CONTEXT_CHARS`` of a finding's context).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter import db
from newsletter.api import admin
from newsletter.api.pages import page
from newsletter.config import Settings
from newsletter.exceptions import InvalidToken, QABlocked, RateLimited, UserError

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300
MAX_INPUT_CHARS = 40
#: a finding's context (a limit, a pattern, the parser's reason) may quote a little more
MAX_CONTEXT_CHARS = 100
API_PREFIX = "/api"

Handler = Callable[[Request, Exception], Awaitable[Response]]

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Not possible now",
    413: "Too large",
    422: "Not accepted",
    429: "Too many attempts",
    503: "Unavailable",
}


# ---------------------------------------------------------------- bodies (OpenAPI)


class ErrorBody(BaseModel):
    """Every JSON error: one readable line (a QA refusal adds ``findings``)."""

    error: str = Field(description="what went wrong, one line")


class ValidationErrorBody(ErrorBody):
    detail: list[dict[str, Any]] = Field(
        default_factory=list,
        description="pydantic's findings (type, loc, msg); inputs cut to a short prefix",
    )


DESCRIPTIONS = {
    400: "malformed request (a body that cannot be parsed)",
    401: "no admin API token, or an unknown one",
    403: "a revoked admin API token",
    404: "no such object",
    409: "the action does not fit the object's current state",
    413: "the request body is larger than the limit",
    422: "invalid input (JSON: pydantic's findings in `detail`, inputs cut short)",
    429: "too many attempts; `Retry-After` says when to try again",
    503: "the database is unavailable or its schema is not at head",
}


def _codes(codes: tuple[int, ...], database: bool) -> list[int]:
    """``codes``, 422 (any route: a NUL in the URL) and 503 (a route that reads the database)."""
    return sorted({*codes, 422, *((503,) if database else ())})


def api_errors(*codes: int, database: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a JSON route that can answer ``codes`` (see ``_codes``)."""
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": DESCRIPTIONS[code],
        }
        for code in _codes(codes, database)
    }


HTML_ERROR = {"text/html": {"schema": {"type": "string"}}}


def page_errors(*codes: int, database: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a page (HTML answers) that can answer ``codes``."""
    return {
        code: {"content": HTML_ERROR, "description": DESCRIPTIONS[code]}
        for code in _codes(codes, database)
    }


# ---------------------------------------------------------------- rendering


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wants_json(path: str) -> bool:
    # the providers' bounce webhooks (/webhooks/bounces/...) are machines reading JSON too
    return path == API_PREFIX or path.startswith((API_PREFIX + "/", "/webhooks/"))


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The error in the shape of the request's part of the site (see the module docstring)."""
    message = short(message)
    if admin.is_admin(request):
        response = admin.user_error(request, UserError(message), status)
        response.headers.update(headers or {})
        return response
    if wants_json(request.url.path):
        body = {"error": message, **(extra or {})}
        return JSONResponse(body, status_code=status, headers=dict(headers or {}))
    title = TITLES.get(status, "Something went wrong")
    return page(
        "message.html.j2", status=status, headers=dict(headers or {}), title=title, message=message
    )


# ---------------------------------------------------------------- handlers


def _user_error(code: int) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserError)
        extra: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, QABlocked):
            extra["findings"] = [short(f) for f in exc.findings]
        if isinstance(exc, InvalidToken):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(request, code, str(exc), headers=headers, extra=extra)

    return handle


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method, a body too large) in our shape."""
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, str(exc.detail), headers=exc.headers)


def _prefix(value: Any, limit: int = MAX_INPUT_CHARS) -> Any:
    """At most ``limit`` characters of an input, in a JSON-safe form."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**18 else short(str(value)[: limit + 1], limit)
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    if not isinstance(value, str):
        value = json.dumps(jsonable_encoder(value), default=str)
    return short(value, limit)


def trimmed(error: Mapping[str, Any]) -> dict[str, Any]:
    """One of pydantic's findings with its input (and context) cut to a short prefix."""
    out: dict[str, Any] = {
        "type": str(error.get("type", "invalid")),
        "loc": [_prefix(p) for p in error.get("loc", ())],
        "msg": short(str(error.get("msg", "invalid")), 200),
    }
    if "input" in error:
        out["input"] = _prefix(error["input"])
    ctx = error.get("ctx")
    if isinstance(ctx, Mapping):
        out["ctx"] = {str(k): _prefix(v, MAX_CONTEXT_CHARS) for k, v in ctx.items()}
    return out


def _where(error: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"] if p != "body"]
    if error["type"] == "json_invalid":
        return "body"
    return ".".join(loc) or "body"


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"invalid JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
    return str(error["msg"])


async def _validation_error(request: Request, exc: Exception) -> Response:
    """A malformed request: one readable line in ``error``, pydantic's list in ``detail``."""
    assert isinstance(exc, RequestValidationError)
    errors = [trimmed(e) for e in exc.errors()]
    message = "invalid request: " + "; ".join(f"{_where(e)}: {_reason(e)}" for e in errors)
    return error_response(request, 422, message, extra={"detail": errors[:20]})


async def _overflow(request: Request, exc: Exception) -> Response:
    log.info("number out of range in %s %s: %s", request.method, request.url.path, exc)
    return error_response(request, 422, "invalid request: a number is out of range")


async def _too_deep(request: Request, _exc: Exception) -> Response:
    return error_response(request, 422, "invalid request: nested too deeply")


async def _refused_value(request: Request, exc: Exception) -> Response:
    """A value the database refuses (out of range, NUL, too long): the input's fault."""
    assert isinstance(exc, DataError)
    reason = str(exc.orig).splitlines()[0] if exc.orig else "a value was refused"
    log.warning(
        "the database refused a value in %s %s: %s", request.method, request.url.path, reason
    )
    return error_response(request, 422, f"invalid request: {reason}")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _database_error(request: Request, exc: Exception) -> Response:
    """A missing table (the schema is behind) or a database that does not answer: 503."""
    url = _settings(request).database_url
    try:
        at_head = await run_in_threadpool(db.schema_at_head, url)
    except SQLAlchemyError:
        at_head = True  # the database does not answer at all: said below
    if not at_head:
        return error_response(request, 503, db.SCHEMA_BEHIND)
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, OperationalError):
        log.error("database unavailable in %s", where, exc_info=exc)
        return error_response(request, 503, "the database is not available; try again later")
    log.error("unexpected database error in %s", where, exc_info=exc)  # answered here: log it
    return await _unexpected(request, exc)


async def _unexpected(request: Request, _exc: Exception) -> Response:
    """Anything else: a 500 in the same shape (Starlette then logs the exception and re-raises
    it to the server: the traceback goes to the log, never into the answer)."""
    return error_response(request, 500, "internal error: the request could not be completed")


def install(app: FastAPI, status_of: Mapping[type[UserError], int]) -> None:
    for exc_class, code in status_of.items():
        app.add_exception_handler(exc_class, _user_error(code))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(DataError, _refused_value)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(ProgrammingError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
