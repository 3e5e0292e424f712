"""Sign and POST one queued event, record the attempt; claim due ones for the tick."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
    utcnow,
)
from newsletter.outbound import OutboundPolicy
from newsletter.outbound import request as outbound_request
from newsletter.retries import backoff
from newsletter.tables import W

#: deliveries one Celery task POSTs, one after the other
TASK_BATCH = 10
USER_AGENT = "newsletter-webhooks/1"
_ERROR_MAX = 1000


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
