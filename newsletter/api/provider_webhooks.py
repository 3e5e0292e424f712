"""``POST /webhooks/bounces/{provider}``: the email providers' bounce and complaint webhooks.

Public (the providers sign their requests instead: see ``newsletter.audience.provider_events``),
one path per provider: ``ses``, ``postmark``, ``sendgrid``, ``mailgun``, ``generic``. The
answer is 200 with what was applied, replayed and skipped; 401 without a signature, 403 with a
wrong one or when the provider's key is not configured (nothing applied); 422 for a payload of
the wrong shape; 404 for an unknown provider; 413 above ``NEWSLETTER_PROVIDER_WEBHOOK_BODY_LIMIT``.
An event delivered twice is applied once, so a provider's retries are harmless.

The SES reader fetches the SNS signing certificate and confirms subscriptions through the
outbound guard (``newsletter.outbound.fetch``); tests replace ``get_fetcher``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from newsletter import outbound
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import StrictRoute
from newsletter.audience import provider_events
from newsletter.audience.provider_types import Fetcher, WebhookRequest
from newsletter.config import Settings

__all__ = ["PREFIX", "Provider", "get_fetcher", "router"]

PREFIX = "/webhooks/bounces"

router = APIRouter(
    prefix=PREFIX,
    tags=["provider webhooks"],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 413, 422),
)


def get_fetcher(settings: SettingsDep) -> Fetcher:
    """GET through the outbound guard: public addresses only, TLS verified, size-capped."""
    policy = outbound.OutboundPolicy.from_settings(settings)

    def fetch(url: str) -> bytes:
        return outbound.fetch(url, policy)

    return fetch


FetcherDep = Annotated[Fetcher, Depends(get_fetcher)]


def _receive(
    session: Session, settings: Settings, provider: str, request: WebhookRequest, fetch: Fetcher
) -> dict[str, Any]:
    return provider_events.receive(session, settings, provider, request, fetch).as_dict()


class Provider(StrEnum):
    ses = "ses"
    postmark = "postmark"
    sendgrid = "sendgrid"
    mailgun = "mailgun"
    generic = "generic"


_BODY = {
    "requestBody": {
        "required": True,
        "description": "the provider's own JSON, exactly as it sent it (signatures cover bytes)",
        "content": {"application/json": {"schema": {}}},
    }
}


@router.post("/{provider}", summary="A provider's bounce and complaint events", openapi_extra=_BODY)
async def provider_webhook(
    provider: Provider,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetch: FetcherDep,
) -> dict[str, Any]:
    body = await request.body()  # capped by PublicBodyLimit at the provider webhook limit
    incoming = WebhookRequest(
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        query=dict(request.query_params),
    )
    return await run_in_threadpool(_receive, session, settings, provider.value, incoming, fetch)
