"""What the routes accept: bounded ids and page numbers, and request bodies read strictly.

Every id in a path, a query or a form is an ``Id`` (1..2147483647, PostgreSQL's ``integer``), so
an id out of range is a 422 naming the parameter instead of an overflow in the database. Page
numbers are a ``Page``.

``StrictRoute`` is the route class of the app's routers: its requests read a JSON body as RFC 8259
says (UTF-8, no NaN or Infinity, no lone surrogate) and refuse text the databases cannot store
(NUL) or that is nested deeper than ``MAX_DEPTH``, in JSON and in form fields alike. Such a body
is a 422 with the reason, before any route code runs. NUL in the URL is refused by
``limits.RefuseNulInUrl`` for every route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import Field
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

#: the largest id a row can have (PostgreSQL ``integer``; SQLite's are smaller in practice)
MAX_ID = 2_147_483_647
#: the last page a listing may ask for: page * per_page stays far inside the id range
MAX_PAGE = 1_000_000
#: JSON nested deeper than this is refused (nothing we accept nests more than a few levels)
MAX_DEPTH = 32

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id (1..2147483647)")]
Page = Annotated[int, Field(ge=1, le=MAX_PAGE, description="1-based page number")]

NUL = "\x00"


class InvalidBody(HTTPException):
    """A form body whose text cannot be accepted (422); FastAPI re-raises HTTP exceptions."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=422, detail=f"invalid request: {reason}")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None: NUL characters and lone surrogates."""
    if NUL in text:
        return "text may not contain NUL (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text may not contain a lone surrogate (U+D800..U+DFFF)"
    return None


def value_problem(value: Any) -> str | None:
    """The first problem of a parsed JSON value: bad text anywhere in it, or too deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested too deeply (more than {MAX_DEPTH} levels)"
        if isinstance(item, str):
            problem = text_problem(item)
        elif isinstance(item, dict):
            problem = next(filter(None, map(text_problem, item)), None)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            problem = None
            stack.extend((v, depth + 1) for v in item)
        else:
            problem = None
        if problem:
            return problem
    return None


def _not_a_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(literal: str) -> float:
    number = float(literal)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {literal[:20]} is too large")
    return number


def parse_json(body: bytes) -> Any:
    """A JSON document as RFC 8259 has it, or ``json.JSONDecodeError`` with the reason.

    FastAPI answers a ``JSONDecodeError`` with a 422 (``json_invalid``); ``doc`` is kept empty so
    that nothing of the body travels further.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_not_a_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(exc.msg, "", exc.pos) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
    except ValueError as exc:  # NaN, Infinity, a number too long to convert
        raise json.JSONDecodeError(str(exc).splitlines()[0][:200], "", 0) from None
    problem = value_problem(value)
    if problem:
        raise json.JSONDecodeError(problem, "", 0)
    return value


def form_problem(form: FormData) -> str | None:
    for key, value in form.multi_items():
        for text in (key, value) if isinstance(value, str) else (key,):
            problem = text_problem(text)
            if problem:
                return f"form field {key[:40]!r}: {problem}"
    return None


class CheckedForm(Awaitable[FormData], AbstractAsyncContextManager[FormData]):
    """What ``request.form()`` returns: awaitable, or an ``async with`` that closes the files."""

    def __init__(self, pending: Coroutine[Any, Any, FormData]) -> None:
        self._pending = pending
        self._form: FormData | None = None

    def __await__(self) -> Generator[Any, None, FormData]:
        return self._pending.__await__()

    async def __aenter__(self) -> FormData:
        self._form = await self._pending
        return self._form

    async def __aexit__(self, *_exc: object) -> None:
        if self._form is not None:
            await self._form.close()


class StrictRequest(Request):
    """A request whose JSON and form bodies are checked as the module docstring says."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> CheckedForm:
        return CheckedForm(
            self._checked_form(
                max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
            )
        )

    async def _checked_form(
        self, *, max_files: int | float, max_fields: int | float, max_part_size: int
    ) -> FormData:
        form = await super().form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )
        problem = form_problem(form)
        if problem:
            raise InvalidBody(problem)
        return form


class StrictRoute(APIRoute):
    """The route class of every router of the app: its handlers get a ``StrictRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive))

        return strict
