"""Outgoing webhooks over HTTP: ``/api/webhooks...``, admin token only.

Routes do HTTP only; ``newsletter.webhooks`` validates, stores, signs and delivers.

- ``POST   /webhooks``                  register ``{url, events}``: 201 with the signing secret,
                                        shown this once (422 for a bad URL or an unknown event)
- ``GET    /webhooks``                  the endpoints (without secrets)
- ``GET    /webhooks/{id}``             one endpoint
- ``DELETE /webhooks/{id}``             remove it and its delivery history
- ``GET    /webhooks/{id}/deliveries``  its deliveries, newest first: status, attempts, the last
                                        status code and error, the next attempt
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from newsletter import webhooks
from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from newsletter.outbound import OutboundPolicy

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http(s) URL without credentials")
    events: list[str] = Field(
        min_length=1, max_length=len(webhooks.EVENT_TYPES), examples=[list(webhooks.EVENT_TYPES)]
    )


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signs every POST (X-Newsletter-Signature); shown only now")


class WebhookDeliveryPublic(BaseModel):
    id: int
    event_type: str
    status: WebhookStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


def _public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return WebhookPublic.model_validate(endpoint, from_attributes=True).model_dump()


@router.post("", status_code=201, summary="Register a URL for events; the secret is shown once")
def create(body: WebhookCreate, session: SessionDep, settings: SettingsDep) -> WebhookCreated:
    policy = OutboundPolicy.from_settings(settings)
    endpoint = webhooks.register(session, body.url, body.events, policy=policy)
    return WebhookCreated(**_public(endpoint), secret=endpoint.secret)


@router.get("", summary="The registered endpoints")
def list_all(session: SessionDep) -> list[WebhookPublic]:
    return [WebhookPublic(**_public(e)) for e in webhooks.list_endpoints(session)]


@router.get("/{endpoint_id}", summary="One endpoint")
def get(endpoint_id: Id, session: SessionDep) -> WebhookPublic:
    return WebhookPublic(**_public(webhooks.get_endpoint(session, endpoint_id)))


@router.delete("/{endpoint_id}", status_code=204, summary="Remove an endpoint and its history")
def remove(endpoint_id: Id, session: SessionDep) -> Response:
    webhooks.delete(session, endpoint_id)
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", summary="Deliveries and their attempts, newest first")
def list_deliveries(
    endpoint_id: Id,
    session: SessionDep,
    status: WebhookStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WebhookDeliveryPublic]:
    rows: list[WebhookDelivery] = webhooks.deliveries(
        session, endpoint_id, status=status, limit=limit
    )
    return [WebhookDeliveryPublic.model_validate(r, from_attributes=True) for r in rows]
