"""Thin Celery tasks: they take ids and call ``newsletter.sending.batch``."""

from __future__ import annotations

import threading

from celery import Task

from newsletter import db, webhooks
from newsletter.analytics import retention
from newsletter.audience import confirmations, import_reaper, outbox
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.config import Settings
from newsletter.exceptions import DatabaseUnavailable, TemporaryFailure
from newsletter.sending import batch, relays, scheduler
from newsletter.sending.checks import qa_config
from newsletter.transports import Transport
from newsletter.transports.factory import make_transport
from newsletter.transports.pool import TransportPool
from worker.celery_app import app, current_settings

_local = threading.local()  # one transport per worker process (or thread, in the demo)


def _route() -> relays.Route:
    """The relays this thread's connections may use: set by each batch (its newsletter's)."""
    current: relays.Route | None = getattr(_local, "route", None)
    if current is None:
        current = _local.route = relays.Route()
    return current


def transport() -> Transport:
    """NEWSLETTER_TRANSPORT's transport of this process (thread): the SMTP relays (one
    connection each, ``relays``), or a provider's HTTP client with its connection pool; made
    again when the settings change. Every relay may be used until a batch says otherwise."""
    settings = current_settings()
    smtp = settings.transport == "smtp"
    key = relays.relay_key(settings) if smtp else settings.transport_config()
    current: Transport | None = getattr(_local, "transport", None)
    if current is None or _local.transport_key != key:
        if current is not None:
            current.close()
        if smtp:
            current = _local.transport = relays.relay_set(settings, _route())
        else:
            current = _local.transport = make_transport(settings.transport_config())
        _local.transport_key = key
    _route().only = None
    return current


def pool() -> TransportPool | None:
    """NEWSLETTER_SMTP_CONNECTIONS connections of this process (thread, in the demo), each to
    every relay, or None for one, or with an HTTP API transport: then ``transport()`` alone
    sends."""
    settings = current_settings()
    size = settings.smtp_connections
    current: TransportPool | None = getattr(_local, "pool", None)
    if size < 2 or settings.transport != "smtp":
        return None
    key = (relays.relay_key(settings), size)
    if current is None or _local.pool_key != key:
        if current is not None:
            current.close()
        route = _route()
        current = _local.pool = TransportPool(lambda: relays.relay_set(settings, route), size)
        _local.pool_key = key
    return current


@app.task(name="worker.tasks.wake")
def wake() -> None:
    """Nothing: a message that ends a stopping worker's wait for the broker (``embedded``)."""


@app.task(name="worker.tasks.dispatch")
def dispatch(issue_id: int) -> int:
    """Start the batch chains of an issue that has been started."""
    settings = current_settings()
    ticked = scheduler.tick(settings, parallelism=settings.send_parallelism)
    started = ticked.batches.get(issue_id, 0)
    for _ in range(started):
        send_batch.delay(issue_id)
    return started


@app.task(
    name="worker.tasks.send_batch",
    # the database went away (a restart) for longer than the batch waits: the chain goes on
    # a second or so later; the rows the batch held come back after their lease
    autoretry_for=(DatabaseUnavailable,),
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=False,
    max_retries=30,
)
def send_batch(issue_id: int) -> int:
    result = batch.run_batch(
        current_settings(), issue_id=issue_id, transport=transport(), pool=pool()
    )
    if result.more:
        send_batch.delay(issue_id)
    return result.sent


@app.task(name="worker.tasks.tick")
def tick() -> int:
    settings = current_settings()
    result = scheduler.tick(settings, parallelism=settings.send_parallelism)
    for issue_id, count in result.batches.items():
        for _ in range(count):
            send_batch.delay(issue_id)
    dispatch_webhooks(settings)
    return result.requeued


def dispatch_webhooks(settings: Settings) -> int:
    """Hand the webhook deliveries whose time came to tasks, ``TASK_BATCH`` ids per task."""
    with db.session_scope(settings.database_url) as session:
        ids = webhooks.due_ids(session, lease_seconds=webhooks.lease_seconds(settings))
    for start in range(0, len(ids), webhooks.TASK_BATCH):
        deliver_webhooks.delay(ids[start : start + webhooks.TASK_BATCH])
    return len(ids)


@app.task(name="worker.tasks.deliver_webhooks")
def deliver_webhooks(webhook_delivery_ids: list[int]) -> int:
    """POST some due webhook deliveries, one transaction each; how many were delivered."""
    return sum(deliver_webhook(i) == "delivered" for i in webhook_delivery_ids)


@app.task(name="worker.tasks.deliver_webhook")
def deliver_webhook(webhook_delivery_id: int) -> str | None:
    """One signed POST; a failure is retried by a later tick (``next_attempt_at``)."""
    settings = current_settings()
    with db.session_scope(settings.database_url) as session:
        attempt = webhooks.deliver(session, webhook_delivery_id, settings=settings)
    return attempt.status if attempt else None


@app.task(
    bind=True,
    name="worker.tasks.send_confirmation",
    # a relay's 4xx, another task holding the row, a database restart: tried again later. A
    # reader is waiting for this one: 5 s, 10 s, 20 s ... 10 min, each with full jitter, and
    # while every relay is out, soon after the first is due back (``retry_delay``); eight tries
    # cover about 20 minutes, far below the broker's visibility timeout, and a row whose task
    # gave up is relayed again by the outbox
    max_retries=8,
)
def send_confirmation(
    self: Task,
    subscriber_id: int,
    newsletter_ids: list[int],
    source: str,
    consent_text_version: str,
    outbox_id: int | None = None,  # None: a message queued before the outbox existed
) -> str:
    """One sign-up's double opt-in email, over the same SMTP transport as the issues; sent once
    per outbox row, however often the row was relayed."""
    ids = tuple(newsletter_ids)
    request = ConfirmationRequest(subscriber_id, ids, source, consent_text_version, outbox_id)
    try:
        return confirmations.send_confirmation(current_settings(), request, transport=transport())
    except (TemporaryFailure, DatabaseUnavailable) as exc:
        countdown = confirmations.retry_delay(self.request.retries, exc)
        raise self.retry(exc=exc, countdown=countdown) from exc


@app.task(name="worker.tasks.relay_confirmations")
def relay_confirmations() -> int:
    """The beat's relay of the confirmation outbox: rows the web app could not queue."""
    from worker.dispatch import celery_send_confirmation

    settings = current_settings()
    run = outbox.relay_due(
        settings.database_url,
        celery_send_confirmation,
        valid_seconds=settings.confirmation_max_age_seconds,
    )
    return run.relayed


@app.task(name="worker.tasks.autopilot")
def autopilot() -> int:
    """The beat's autopilot: due feeds fetched, due issues drafted, editors told; the drafts."""
    from newsletter.autopilot import beat  # loaded by the worker that runs it, when it does

    settings = current_settings()
    return len(beat.run(settings, checks=qa_config(settings), transport=transport).drafted)


@app.task(name="worker.tasks.fold_engagement")
def fold_engagement() -> int:
    """The beat's daily fold of clicks and opens past the retention period (no subscriber ids
    kept); the events folded."""
    settings = current_settings()
    with db.session_scope(settings.database_url) as session:
        return retention.fold_due(session, retention_days=settings.track_retention_days)


@app.task(name="worker.tasks.reap_imports")
def reap_imports() -> list[int]:
    """The beat's look for CSV imports whose worker went away: started again (or failed)."""
    from worker.dispatch import celery_start_import

    settings = current_settings()
    with db.session_scope(settings.database_url) as session:
        requeued = import_reaper.reap_stalled(session, stale_seconds=settings.import_stall_seconds)
    for job_id in requeued:
        celery_start_import(job_id)
    return requeued


@app.task(name="worker.tasks.import_subscribers")
def import_subscribers(import_job_id: int) -> str | None:
    """Run one queued CSV import job (the file is in the database); its final status."""
    # the CSV importer (psycopg's COPY machinery, the parsers) loads with the first import: a
    # worker that runs none (the embedded demo's) does not import it
    from newsletter.audience import import_jobs

    with db.session_scope(current_settings().database_url) as session:
        job = import_jobs.run(session, import_job_id)
    return job.status if job is not None else None
