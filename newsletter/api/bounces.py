"""``POST /api/bounces``: one bounce (DSN), complaint (ARF) or mailto unsubscribe, admin only.

The body is the raw message (``message/rfc822`` or ``text/plain``); the answer is what
``newsletter.bounces.process_message`` made of it. Pipe the bounce mailbox here, one message per
request (``newsletter bounces process`` takes whole mbox files).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from newsletter import bounces
from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.exceptions import InvalidInput

router = APIRouter(prefix="/bounces", tags=["bounces"], dependencies=[Depends(require_token)])

RawMessage = Annotated[
    bytes, Body(media_type="message/rfc822", description="the whole message, headers first")
]


@router.post("", summary="Apply one bounce, complaint or mailto unsubscribe")
def process_bounce(
    message: RawMessage, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    if not message.strip():
        raise InvalidInput("the body is empty: post the raw message")
    return bounces.process_message(session, settings, message).as_dict()
