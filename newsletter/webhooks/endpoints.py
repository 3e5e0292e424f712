"""Webhook endpoints: register (URL checked through the outbound guard), list, delete."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import Session, col

from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import (
    WebhookDelivery,
    WebhookEndpoint,
)
from newsletter.outbound import NOT_ALLOWED, AddressNotAllowed, OutboundPolicy, vet_url
from newsletter.tables import E, W
from newsletter.webhooks.events import invalidate_cache

EVENT_TYPES: tuple[str, ...] = (
    "delivery.sent",
    "delivery.failed",
    "delivery.bounced",
    "subscriber.confirmed",
    "subscriber.unsubscribed",
)
_URL_MAX = 2000


# ---------------------------------------------------------------- endpoints


def check_url(url: str, policy: OutboundPolicy) -> str:
    """The URL as given, or InvalidInput saying what is wrong with it (a host that does not
    resolve to addresses the policy permits, too)."""
    if not url or len(url) > _URL_MAX:
        raise InvalidInput(f"webhook URL must be 1 to {_URL_MAX} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput(f"webhook URL {url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise InvalidInput(f"webhook URL {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"webhook URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise InvalidInput(f"webhook URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"webhook URL {url!r} must not contain credentials")
    try:
        vet_url(url, policy)
    except AddressNotAllowed:
        raise InvalidInput(f"webhook URL {url!r}: {NOT_ALLOWED}") from None
    return url


def check_events(events: Sequence[str]) -> list[str]:
    """The events, deduplicated in ``EVENT_TYPES`` order; InvalidInput for an unknown one."""
    if not events:
        raise InvalidInput("a webhook needs at least one event: " + ", ".join(EVENT_TYPES))
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown webhook event {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return [e for e in EVENT_TYPES if e in events]


def register(
    session: Session, url: str, events: Sequence[str], *, policy: OutboundPolicy
) -> WebhookEndpoint:
    """A new endpoint with a random secret (the caller shows it once)."""
    endpoint = WebhookEndpoint(
        url=check_url(url.strip(), policy),
        events=check_events(events),
        secret="whsec_" + secrets.token_urlsafe(32),
    )
    session.add(endpoint)
    session.flush()
    invalidate_cache()
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))))


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook {endpoint_id} not found")
    return endpoint


def delete(session: Session, endpoint_id: int) -> None:
    """Remove an endpoint and its delivery history; pending POSTs to it are not made."""
    get_endpoint(session, endpoint_id)
    session.execute(W.delete().where(W.c.endpoint_id == endpoint_id))
    session.execute(E.delete().where(E.c.id == endpoint_id))
    session.flush()
    invalidate_cache()


def deliveries(
    session: Session, endpoint_id: int, *, status: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """An endpoint's deliveries, newest first."""
    get_endpoint(session, endpoint_id)
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    if status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status)
    stmt = stmt.order_by(col(WebhookDelivery.id).desc()).limit(limit)
    return list(session.scalars(stmt))
