"""``POST /api/bounces``: one bounce (DSN), complaint (ARF) or mailto unsubscribe, admin only.

The body is the raw message (``message/rfc822`` or ``text/plain``); the answer is what
``newsletter.audience.bounces.process_message`` made of it. Pipe the bounce mailbox here, one
message per
request (``newsletter bounces process`` takes whole mbox files). The body is read only after the
token is checked, and at most ``MAX_MESSAGE_BYTES`` of it (413 above).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import StrictRoute
from newsletter.api.limits import BodyTooLarge
from newsletter.api.permissions import authorize_token
from newsletter.audience import bounces
from newsletter.exceptions import InvalidInput

#: a bounce carries the returned message's headers (often the whole message): 10 MB is ample
MAX_MESSAGE_BYTES = 10_000_000

router = APIRouter(
    prefix="/bounces",
    tags=["bounces"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 413, 422),
)

_BODY = {
    "requestBody": {
        "required": True,
        "description": "the whole message, headers first",
        "content": {
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


async def _message(request: Request) -> bytes:
    """The raw body, refused past ``MAX_MESSAGE_BYTES`` without reading the rest."""
    pieces, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > MAX_MESSAGE_BYTES:
            raise BodyTooLarge(MAX_MESSAGE_BYTES)
        pieces.append(piece)
    return b"".join(pieces)


@router.post("", summary="Apply one bounce, complaint or mailto unsubscribe", openapi_extra=_BODY)
async def process_bounce(
    request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    message = await _message(request)
    if not message.strip():
        raise InvalidInput("the body is empty: post the raw message")
    result = await run_in_threadpool(bounces.process_message, session, settings, message)
    return result.as_dict()
