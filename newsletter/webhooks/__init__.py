"""Outgoing webhooks: signed POSTs to the URLs an admin registered, retried with backoff.

- ``endpoints`` registering, listing and removing endpoints
- ``events``    queueing events (one row per endpoint that wants one), cached per process
- ``delivery``  signing and POSTing one event, and the tick's claim of due ones

- ``register`` / ``list_endpoints`` / ``delete`` manage ``WebhookEndpoint`` rows; a URL must be
  http(s) with a host and no credentials, its host must resolve to public addresses only (or
  ones the ``OutboundPolicy`` allows), and every event must be one of ``EVENT_TYPES``.
- ``emit`` inserts one ``WebhookDelivery`` row per active endpoint that wants the event, in the
  caller's transaction (a Session, or the sender's autocommit Connection). Which events have an
  endpoint is cached per process for ``CACHE_SECONDS``, so emitting with no endpoint registered
  costs a dictionary lookup; the sender asks ``enabled_events`` once per batch.
- ``due_ids`` (the periodic tick) claims rows whose time came; ``deliver`` makes one signed POST
  and records the attempt: a 2xx delivers it, anything else (a status, a timeout, a refused
  connection) schedules the next attempt with exponential backoff and jitter, until
  ``webhook_max_attempts``, then the row is failed. Redirects are not followed. The POST goes
  through ``newsletter.outbound``, so the host is vetted again at delivery (DNS can change).

Every POST carries ``X-Newsletter-Event``, ``X-Newsletter-Delivery`` (the row id: the same on
every retry, so receivers can deduplicate), ``X-Newsletter-Timestamp`` (Unix seconds) and
``X-Newsletter-Signature: sha256=<hex>``, the HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed
with the endpoint's secret. ``verify_signature`` is what a receiver does.
"""

from __future__ import annotations

from newsletter.webhooks.delivery import (
    TASK_BATCH,
    Attempt,
    GuardedClient,
    WebhookClient,
    body_of,
    deliver,
    due_ids,
    lease_seconds,
    sign,
    verify_signature,
)
from newsletter.webhooks.endpoints import (
    EVENT_TYPES,
    check_events,
    check_url,
    delete,
    deliveries,
    get_endpoint,
    list_endpoints,
    register,
)
from newsletter.webhooks.events import (
    CACHE_SECONDS,
    emit,
    emit_subscriber,
    enabled_events,
    invalidate_cache,
)

__all__ = [
    "CACHE_SECONDS",
    "EVENT_TYPES",
    "TASK_BATCH",
    "Attempt",
    "GuardedClient",
    "WebhookClient",
    "body_of",
    "check_events",
    "check_url",
    "delete",
    "deliver",
    "deliveries",
    "due_ids",
    "emit",
    "emit_subscriber",
    "enabled_events",
    "get_endpoint",
    "invalidate_cache",
    "lease_seconds",
    "list_endpoints",
    "register",
    "sign",
    "verify_signature",
]
