"""Prometheus metrics computed from the delivery ledger when scraped.

Messages are sent by Celery worker processes, often on other machines, so counters kept in the
web process would see none of them. The ledger (one ``Delivery`` row per recipient and issue) is
the truth every process shares; a custom collector reads it at scrape time:

======================================  ==========  ==============================================
``newsletter_messages_total{status}``   counter     ledger rows ``sent`` / ``failed`` (all issues)
``newsletter_deliveries{status}``       gauge       ledger rows by every status (pending, ...)
``newsletter_send_rate``                gauge       messages/s sent over the last 10 s
``newsletter_queue_depth``              gauge       pending rows of sending issues (with retries)
``newsletter_celery_queue_length{q}``   gauge       tasks waiting in the Redis broker's queue
``newsletter_issues{status}``           gauge       issues by status
``newsletter_provider_events_total``    counter     bounce receipts by ``provider`` and ``kind``
``newsletter_engagement_events_total``  counter     clicks and opens by ``kind`` and ``verdict``
``newsletter_relay_up{relay}``          gauge       1 a relay in service, 0 out (``relay_checks``)
``newsletter_relay_out_seconds{relay}`` gauge       seconds until an out relay is tried again
======================================  ==========  ==============================================

``newsletter_provider_events_total{provider,kind}`` counts the ``BounceReceipt`` rows: the
providers' webhook events (``ses``, ``postmark``, ``sendgrid``, ``mailgun``, ``generic``) and ARF
complaints (``arf``), each once however often it was delivered; kind is hard, soft or complaint.

``newsletter_messages_total`` only goes down when rows leave the ledger (a subscriber erased,
``resend-failed`` putting failures back to pending); Prometheus reads that as a counter reset.

Cheap at scrape time: the counts by status come from the issue counters (``counters``: a few
rows per issue and status, kept by the database with every ledger change), not from the ledger.
The queue depth counts the pending rows of the issues sending, retries waiting for their time
included (telling those apart would scan the ledger). Only the send rate reads the ledger: the
rows sent in the last 10 s, through the (issue_id, sent_at) index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, or_, select
from sqlmodel import Session

from newsletter.analytics import retention
from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.models import DeliveryStatus, IssueStatus, utcnow
from newsletter.models_analytics import EngagementKind, Verdict
from newsletter.models_audience import BounceReceipt
from newsletter.sending import counters, relay_checks
from newsletter.sending.controls import RATE_WINDOW
from newsletter.tables import D, I, table_of

log = logging.getLogger(__name__)
R = table_of(BounceReceipt)


#: the Celery queues (worker/celery_app.py) and kombu's Redis priority sub-queues
CELERY_QUEUES = ("newsletter", "newsletter.send")
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)

Counts = dict[str, int]


class LedgerCollector(Collector):
    """Reads the ledger (and the Redis broker's queue lengths) at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with Session(get_engine(self.settings.database_url)) as session:
            issues = session.execute(select(I.c.id, I.c.status)).all()
            by_status: Counts = {}
            started: list[int] = []
            for issue_id, status in issues:
                by_status[status] = by_status.get(status, 0) + 1
                if status == IssueStatus.sending:
                    started.append(int(issue_id))
            # the issue counters (``counters``), not the ledger: a few rows per issue and status
            totals: Counts = dict.fromkeys((s.value for s in DeliveryStatus), 0)
            totals.update(counters.totals(session))
            rate = _recent_sent(session, now) / RATE_WINDOW.total_seconds()
            depth = sum(
                c.get(DeliveryStatus.pending, 0)
                for c in counters.counts_of(session, started).values()
            )
            provider_events = session.execute(
                select(R.c.source, R.c.kind, func.count())
                .where(R.c.kind.in_(("hard", "soft", "complaint")))
                .group_by(R.c.source, R.c.kind)
            ).all()
            engagement = retention.event_totals(session)

        messages = CounterMetricFamily(
            "newsletter_messages",
            "Messages in the delivery ledger that were sent or failed for good",
            labels=["status"],
        )
        for final in (DeliveryStatus.sent, DeliveryStatus.failed):
            messages.add_metric([final.value], totals.get(final, 0))
        yield messages
        deliveries = GaugeMetricFamily(
            "newsletter_deliveries", "Delivery ledger rows by status", labels=["status"]
        )
        for name, count in sorted(totals.items()):
            deliveries.add_metric([name], count)
        yield deliveries
        yield GaugeMetricFamily(
            "newsletter_send_rate",
            f"Messages sent per second over the last {RATE_WINDOW.total_seconds():g} s",
            value=rate,
        )
        yield GaugeMetricFamily(
            "newsletter_queue_depth",
            "Pending deliveries of sending issues (due now or waiting for a retry)",
            value=depth,
        )
        issues_metric = GaugeMetricFamily(
            "newsletter_issues", "Issues by status", labels=["status"]
        )
        for state in IssueStatus:
            issues_metric.add_metric([state.value], by_status.get(state.value, 0))
        yield issues_metric
        events = CounterMetricFamily(
            "newsletter_provider_events",
            "Bounces and complaints received (provider webhooks, ARF), by provider and kind",
            labels=["provider", "kind"],
        )
        for source, kind, count in provider_events:
            events.add_metric([source, kind], int(count))
        yield events
        tracked = CounterMetricFamily(
            "newsletter_engagement_events",
            "Clicks and opens recorded (tracking), by kind and verdict (human or machine)",
            labels=["kind", "verdict"],
        )
        for kind in EngagementKind:
            for verdict in Verdict:
                tracked.add_metric([kind.value, verdict.value], engagement.get((kind, verdict), 0))
        yield tracked
        yield from _relays(self.settings, now)
        yield from self._celery_queues()

    def _celery_queues(self) -> Iterator[Metric]:
        url = self.settings.broker_url
        if not url.startswith(("redis://", "rediss://")):
            return
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            with client:
                pipe = client.pipeline(transaction=False)
                for queue in CELERY_QUEUES:
                    pipe.llen(queue)
                    for step in _PRIORITY_STEPS:
                        pipe.llen(f"{queue}{_PRIORITY_SEP}{step}")
                lengths = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: broker queue lengths unavailable: %s", exc)
            return
        metric = GaugeMetricFamily(
            "newsletter_celery_queue_length",
            "Tasks waiting in the Redis broker's queue",
            labels=["queue"],
        )
        per_queue = 1 + len(_PRIORITY_STEPS)
        for index, queue in enumerate(CELERY_QUEUES):
            metric.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
        yield metric


def _relays(settings: Settings, now: datetime) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "newsletter_relay_up", "1: the SMTP relay is in service; 0: it is out", labels=["relay"]
    )
    out = GaugeMetricFamily(
        "newsletter_relay_out_seconds",
        "Seconds until a relay that is out is tried again (0 in service or due)",
        labels=["relay"],
    )
    for status in relay_checks.statuses(settings):
        name = status.relay.name
        up.add_metric([name], 1 if status.up else 0)
        left = (status.out_until - now).total_seconds() if status.out_until else 0.0
        out.add_metric([name], max(0.0, left))
    yield up
    yield out


def _recent_sent(session: Session, now: datetime) -> int:
    """Rows sent within the window, looking only at issues that can have any (index-friendly)."""
    since = now - RATE_WINDOW
    recent_issues = select(I.c.id).where(
        or_(
            I.c.status.in_([IssueStatus.sending, IssueStatus.paused]),
            I.c.sent_at >= since,
            I.c.status_changed_at >= since,
        )
    )
    count = session.execute(
        select(func.count())
        .select_from(D)
        .where(D.c.issue_id.in_(recent_issues), D.c.sent_at >= since)
    ).scalar_one()
    return int(count)


def registry_for(settings: Settings) -> CollectorRegistry:
    """A registry of its own per app (the global one would mix apps made by tests)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(settings))
    return registry
