"""Bounce receipts: each provider event applied once, each complaint counted against its send.

``record`` writes one ``BounceReceipt`` whose ``event_key`` is unique: an event the provider
delivers twice (a retry, a replay) finds its key taken and is not applied again. ``sent_issue``
names the send a complaint is attributed to when the provider gave no Message-ID of ours: the
last issue the reader was sent.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.models import DeliveryStatus, utcnow
from newsletter.models_audience import BounceReceipt
from newsletter.tables import D, table_of

__all__ = ["GUARD_KIND", "MAX_KEY", "event_key", "record", "sent_issue"]

R = table_of(BounceReceipt)
MAX_KEY = 255
#: the kind of a receipt row that only keeps a one-time token (not an event of its own)
GUARD_KIND = "guard"


def event_key(source: str, *parts: object) -> str:
    """``source:part:part``; a key too long for the column, or with a character a database
    may refuse (NUL, other controls), becomes ``source:sha256:<hex>``."""
    key = ":".join([source, *(str(p) for p in parts)])
    if len(key) <= MAX_KEY and key.isprintable():
        return key
    return f"{source}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def record(
    session: Session,
    *,
    key: str,
    source: str,
    kind: str,
    issue_id: int | None,
    subscriber_id: int | None,
    also: tuple[str, ...] = (),
) -> bool:
    """Write the receipt; False when ``key`` (or one of the ``also`` keys, e.g. a signature's
    one-time token) was received before: then nothing is written."""
    keys = [key, *also]
    if session.execute(select(R.c.id).where(R.c.event_key.in_(keys))).first() is not None:
        return False
    now = utcnow()
    rows = [
        {
            "event_key": k,
            "source": source,
            "kind": kind if k == key else GUARD_KIND,  # counted once: the event's own row
            "issue_id": issue_id,
            "subscriber_id": subscriber_id,
            "received_at": now,
        }
        for k in keys
    ]
    try:
        with session.begin_nested():  # a concurrent twin committed first: a replay too
            session.execute(insert(R), rows)
    except IntegrityError:
        return False
    return True


def sent_issue(session: Session, subscriber_id: int) -> int | None:
    """The issue most recently sent to this reader, if any."""
    return session.execute(
        select(D.c.issue_id)
        .where(D.c.subscriber_id == subscriber_id, D.c.status == DeliveryStatus.sent)
        .order_by(D.c.sent_at.desc(), D.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
