"""Outgoing webhooks: signed POSTs to the URLs an admin registered, retried with backoff.

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

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import JSON, DateTime, Integer, String, insert, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import (
    Newsletter,
    Subscriber,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
    utcnow,
)
from newsletter.outbound import NOT_ALLOWED, AddressNotAllowed, OutboundPolicy, vet_url
from newsletter.outbound import request as outbound_request
from newsletter.sending.ledger import backoff
from newsletter.tables import E, W

EVENT_TYPES: tuple[str, ...] = (
    "delivery.sent",
    "delivery.failed",
    "delivery.bounced",
    "subscriber.confirmed",
    "subscriber.unsubscribed",
)
#: how long a process trusts its idea of which events have an endpoint
CACHE_SECONDS = 5.0
#: deliveries one Celery task POSTs, one after the other
TASK_BATCH = 10
USER_AGENT = "newsletter-webhooks/1"
_URL_MAX = 2000
_ERROR_MAX = 1000


Executor = Session | Connection


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


# ---------------------------------------------------------------- emitting


_cache: dict[str, tuple[float, dict[str, tuple[int, ...]]]] = {}
_cache_lock = threading.Lock()


def invalidate_cache() -> None:
    """Forget which events have endpoints (this process); other processes see it within
    ``CACHE_SECONDS``."""
    with _cache_lock:
        _cache.clear()


def _engine(executor: Executor) -> Engine:
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    return bind if isinstance(bind, Engine) else bind.engine


def _subscribed(executor: Executor) -> dict[str, tuple[int, ...]]:
    """event type -> ids of the active endpoints that want it, cached per database."""
    key = str(_engine(executor).url)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    wanted: dict[str, list[int]] = {}
    for endpoint_id, events in executor.execute(
        select(E.c.id, E.c.events).where(E.c.active.is_(True))
    ):
        for event in events or ():
            wanted.setdefault(event, []).append(int(endpoint_id))
    result = {event: tuple(ids) for event, ids in wanted.items()}
    with _cache_lock:
        _cache[key] = (now, result)
    return result


def enabled_events(executor: Executor) -> frozenset[str]:
    """The events some active endpoint wants (cached): emit nothing else."""
    return frozenset(_subscribed(executor))


def emit(executor: Executor, event_type: str, payload: Mapping[str, Any]) -> int:
    """Queue ``event_type`` for every active endpoint that wants it; the rows queued.

    One ``INSERT ... SELECT`` in the caller's transaction; an endpoint deleted since the cache
    was filled simply gets no row.
    """
    ids = _subscribed(executor).get(event_type)
    if not ids:
        return 0
    now = utcnow()
    rows = select(
        E.c.id,
        literal(event_type, String(40)),
        literal(dict(payload), JSON()),
        literal(WebhookStatus.pending.value, String(16)),
        literal(0, Integer()),
        literal(now, DateTime(timezone=True)),
        literal(now, DateTime(timezone=True)),
    ).where(E.c.id.in_(ids), E.c.active.is_(True))
    columns = [
        "endpoint_id",
        "event_type",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    queued = executor.execute(insert(W).from_select(columns, rows).returning(W.c.id))
    return len(queued.all())


def emit_subscriber(
    session: Session,
    event_type: str,
    *,
    subscriber_id: int,
    newsletter_ids: Sequence[int],
    at: datetime | None = None,
) -> int:
    """``subscriber.confirmed`` / ``subscriber.unsubscribed`` for some of their newsletters."""
    if not newsletter_ids or event_type not in _subscribed(session):
        return 0
    subscriber = session.get(Subscriber, subscriber_id)
    slugs = session.scalars(
        select(col(Newsletter.slug))
        .where(col(Newsletter.id).in_(list(newsletter_ids)))
        .order_by(col(Newsletter.slug))
    ).all()
    payload = {
        "subscriber_id": subscriber_id,
        "email": subscriber.email if subscriber else None,
        "newsletters": [str(s) for s in slugs],
        "at": (at or utcnow()).isoformat(),
    }
    return emit(session, event_type, payload)


# ---------------------------------------------------------------- signing


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``X-Newsletter-Signature`` value: ``sha256=`` + hex HMAC of ``{timestamp}.{body}``."""
    raw = body.encode() if isinstance(body, str) else body
    message = str(timestamp).encode() + b"." + raw
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (replays of
    an old request fail). Compare in constant time."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), header.strip())


# ---------------------------------------------------------------- delivering


class WebhookClient(Protocol):
    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, str]:
        """(status code, start of the response body); OSError or InvalidInput when no response
        came or the URL was refused."""
        ...


class GuardedClient:
    """POSTs through ``newsletter.outbound``: the host vetted again, no proxies, no redirects (a
    3xx is an answer, not a hop: the signature was made for this URL)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, str]:
        """One POST that may take ``timeout`` seconds in all (``webhook_timeout``)."""
        connect = min(self.policy.connect_timeout, timeout)
        policy = replace(self.policy, connect_timeout=connect, read_timeout=timeout)
        response = outbound_request(
            "POST", url, policy, body=body, headers=headers, truncate_at=_ERROR_MAX
        )
        return response.status, response.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    status: str
    status_code: int | None
    error: str | None


def body_of(row: WebhookDelivery) -> bytes:
    """The JSON a POST carries: the same bytes on every retry."""
    document = {
        "id": row.id,
        "type": row.event_type,
        "created_at": _aware(row.created_at).isoformat(),
        "data": row.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def deliver(
    session: Session,
    webhook_delivery_id: int,
    *,
    settings: Settings,
    client: WebhookClient | None = None,
    policy: OutboundPolicy | None = None,
) -> Attempt | None:
    """One signed POST of a pending delivery, recorded on its row (the caller commits).

    The POST goes through ``client``, by default a ``GuardedClient`` under ``policy`` (default:
    the one ``settings`` describe). None when the row is gone (its endpoint was deleted) or no
    longer pending.
    """
    row = session.get(WebhookDelivery, webhook_delivery_id, populate_existing=True)
    if row is None or row.status != WebhookStatus.pending:
        return None
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    assert endpoint is not None
    now = utcnow()
    if not endpoint.active:
        row.status, row.last_error, row.next_attempt_at = WebhookStatus.failed, "inactive", None
        session.add(row)
        session.flush()
        return Attempt(webhook_delivery_id, row.status, None, row.last_error)
    body = body_of(row)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Newsletter-Event": row.event_type,
        "X-Newsletter-Delivery": str(row.id),
        "X-Newsletter-Timestamp": str(timestamp),
        "X-Newsletter-Signature": sign(endpoint.secret, timestamp, body),
    }
    code: int | None = None
    error: str | None = None
    try:
        poster = client or GuardedClient(policy or OutboundPolicy.from_settings(settings))
        code, text = poster.post(endpoint.url, body, headers, settings.webhook_timeout)
        if not 200 <= code < 300:
            error = f"HTTP {code}: {text}".strip()[:_ERROR_MAX]
    except InvalidInput as exc:  # the guard: a refused address, no answer, a malformed URL
        error = str(exc)[:_ERROR_MAX]
    except (OSError, ValueError) as exc:  # what another client raises when no answer came
        error = f"{type(exc).__name__}: {exc}"[:_ERROR_MAX]
    row.attempts += 1
    row.last_status_code = code
    row.last_error = error
    if error is None:
        row.status, row.delivered_at, row.next_attempt_at = WebhookStatus.delivered, now, None
    elif row.attempts >= settings.webhook_max_attempts:
        row.status, row.next_attempt_at = WebhookStatus.failed, None
    else:
        row.next_attempt_at = now + backoff(row.attempts, base=settings.webhook_retry_base_seconds)
    session.add(row)
    session.flush()
    return Attempt(webhook_delivery_id, row.status, code, error)


def due_ids(
    session: Session, *, limit: int = 500, lease_seconds: float = 300.0, now: datetime | None = None
) -> list[int]:
    """Claim pending deliveries whose time came: their next attempt moves ``lease_seconds``
    ahead, so the next tick does not hand them out again while a task is POSTing them (a task
    that dies leaves them due again after the lease). The caller commits, then dispatches."""
    now = now or utcnow()
    stmt = (
        select(W.c.id)
        .where(W.c.status == WebhookStatus.pending, W.c.next_attempt_at <= now)
        .order_by(W.c.next_attempt_at, W.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = [int(i) for i in session.execute(stmt).scalars()]
    if ids:
        session.execute(
            W.update()
            .where(W.c.id.in_(ids))
            .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
        )
    return ids


def lease_seconds(settings: Settings) -> float:
    """How long a claimed delivery waits for its task: a whole batch of timeouts, and a minute."""
    return settings.webhook_timeout * TASK_BATCH + 60.0
