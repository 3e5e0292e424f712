"""Queue events for the endpoints that want them, in the caller's transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, insert, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col

from newsletter.models import (
    Newsletter,
    Subscriber,
    WebhookStatus,
    utcnow,
)
from newsletter.tables import E, W

#: how long a process trusts its idea of which events have an endpoint
CACHE_SECONDS = 5.0


Executor = Session | Connection


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
