"""The import's rows for addresses new to the database, written as COPY text ahead of time.

In a large import nearly every address is new: its subscriber, its subscriptions and their
``import`` events are inserted as the row says, and only the subscriber's id is unknown until
the chunk is written. ``prepare`` writes those rows' COPY text (every column after the id) in the
parsing thread, while the database works on the previous chunk; the writer then only puts the
ids in front (``lines``). The values are the ones ``csv_writer``'s dict rows would hold (same
columns, same text), so an address goes in the same either way; ``csv_writer`` falls back to its
dict rows whenever an address turns out to exist, on SQLite, and when the verdicts are tracked
(the preview).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from newsletter.audience.csv_bulk import NULL, copy_text, json_text
from newsletter.audience.csv_rows import Entry, Fresh
from newsletter.models import SubscriptionStatus

# the columns of each COPY, the id (or subscriber id) first
SUBSCRIBER_COLUMNS = (
    "id",
    "email",
    "email_hash",
    "name",
    "language",
    "time_zone",
    "attributes",
    "created_at",
)
SUBSCRIPTION_COLUMNS = (
    "subscriber_id",
    "newsletter_id",
    "status",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_text_version",
    "created_at",
    "updated_at",
    "unsubscribed_at",
    "soft_bounces",
)
EVENT_COLUMNS = (
    "subscriber_id",
    "newsletter_id",
    "kind",
    "at",
    "ip",
    "source",
    "consent_text_version",
    "detail",
)


def prepare(chunk: dict[str, Entry], now: datetime) -> None:
    """Give each entry of ``chunk`` ({address_key: entry}) its ``Fresh`` text."""
    stamp = now.isoformat()
    unsubscribed = SubscriptionStatus.unsubscribed.value
    for key, entry in chunk.items():
        first = entry.rows[0]
        attributes = json_text(first.attributes) if first.attributes else "{}"
        language, zone = first.language, first.time_zone
        subscriber = _text(
            first.email, key, first.name, language, zone, attributes, stamp, probe=(0, 2, 3, 4, 5)
        )
        subscriptions: list[str] = []
        events: list[str] = []
        for row in entry.rows:
            for nid, wanted in row.wants.items():
                status = str(wanted.status)
                source, version = wanted.consent_source, wanted.consent_text_version
                consent = _text(wanted.consent_ip, source, version, probe=(0, 1, 2))
                at = NULL if wanted.consent_at is None else wanted.consent_at.isoformat()
                left = stamp if status == unsubscribed else NULL
                subscriptions.append(
                    f"{nid}\t{status}\t{at}\t{consent}\t{stamp}\t{stamp}\t{left}\t0"
                )
                detail = f'{{"from": null, "status": "{status}", "line": {row.line}}}'
                events.append(f"{nid}\timport\t{stamp}\t{consent}\t{detail}")
        entry.fresh = Fresh(subscriber, subscriptions, events)


def lines(ids: Iterable[tuple[int, Entry]], part: str) -> list[str]:
    """The COPY lines of ``part`` (subscriber, subscriptions or events) of (id, entry) pairs."""
    if part == "subscriber":
        return [f"{sid}\t{entry.fresh.subscriber}" for sid, entry in ids if entry.fresh]
    return [
        f"{sid}\t{text}" for sid, entry in ids if entry.fresh for text in getattr(entry.fresh, part)
    ]


def _text(*values: str | None, probe: tuple[int, ...]) -> str:
    """Tab-separated COPY text of ``values``: as they are when none of those at ``probe`` (the
    others are ours: hex keys and time stamps) needs escaping (nearly always: one check for the
    lot), else each through ``csv_bulk``'s escaping."""
    checked = "".join([v for i in probe if (v := values[i]) is not None])
    if checked.isprintable() and "\\" not in checked:
        return "\t".join([NULL if v is None else v for v in values])
    return "\t".join([copy_text(v) for v in values])
