"""The Celery app, configured from Settings (broker URL, queues, reliability options).

Importing this module reads no settings: ``configure(settings)`` points the app at a broker
(``newsletter worker``, the demo, tests), and an app nobody configured (``celery -A
worker.celery_app worker``, as docker-compose runs it) configures itself from the environment
the first time Celery reads its configuration (``worker.celery_config``). The tasks read the
settings the app was configured with (``current_settings``).
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init
from kombu.entity import Queue

from newsletter import db
from newsletter.config import Settings, get_settings

app = Celery("newsletter", include=["worker.tasks"])
app.config_from_object("worker.celery_config")  # read lazily, on the first look at app.conf
_settings: Settings | None = None


def current_settings() -> Settings:
    """The settings the app was configured with; the environment's when nobody configured it."""
    return _settings if _settings is not None else get_settings()


def forget_settings() -> None:
    """Tasks read the environment's settings again (tests, between one database and the next)."""
    global _settings
    _settings = None


#: how often a worker on the file-system broker looks for messages when it has none: each
#: look lists the folder once per queue, so a long-running worker idles at about 0.3% of a core
FS_POLL_SECONDS = 0.1


def broker_options(settings: Settings, *, poll: float = FS_POLL_SECONDS) -> dict[str, Any]:
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": poll,
        }
    # a long visibility timeout: the ledger's lease, not Redis, decides when to resend.
    # Socket timeouts: a broker that hangs (no reply, no reset) fails a publish in seconds
    # instead of blocking it for good (a sign-up's confirmation then waits in the outbox);
    # the read timeout is above kombu's 1 s BRPOP, so an idle worker is not disturbed.
    return {"visibility_timeout": 3600, "socket_connect_timeout": 3, "socket_timeout": 5}


def celery_conf(settings: Settings, *, poll: float = FS_POLL_SECONDS) -> dict[str, Any]:
    """The Celery configuration for ``settings`` (``poll``: the file-system broker's)."""
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": broker_options(settings, poll=poll),
        # kombu's own file-system transport lets a consumer read a message half written
        "broker_transport": (
            "worker.fs_broker:Transport" if settings.broker_url.startswith("filesystem") else None
        ),
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "task_default_queue": "newsletter",
        # control tasks (dispatch, tick) never wait behind a long queue of send batches
        # webhook POSTs (up to a timeout each) wait behind neither of them
        "task_queues": [
            Queue("newsletter"),  # type: ignore[no-untyped-call]
            Queue("newsletter.send"),  # type: ignore[no-untyped-call]
            Queue("newsletter.webhooks"),  # type: ignore[no-untyped-call]
            Queue("newsletter.import"),  # type: ignore[no-untyped-call]
            Queue("newsletter.confirm"),  # type: ignore[no-untyped-call]
        ],
        "task_routes": {
            "worker.tasks.send_batch": {"queue": "newsletter.send"},
            "worker.tasks.deliver_webhooks": {"queue": "newsletter.webhooks"},
            "worker.tasks.deliver_webhook": {"queue": "newsletter.webhooks"},
            # the autopilot's feed fetches are outbound HTTP too (a slow feed takes up to the
            # outbound timeout): they wait with the webhooks, never in front of the tick
            "worker.tasks.autopilot": {"queue": "newsletter.webhooks"},
            # a big CSV import takes a minute: it holds up neither sends nor control tasks
            "worker.tasks.import_subscribers": {"queue": "newsletter.import"},
            # a sign-up storm's confirmation emails never hold up a control task (the tick,
            # the relay probe's resume) nor wait behind a send's batches
            "worker.tasks.send_confirmation": {"queue": "newsletter.confirm"},
        },
        "beat_schedule": {
            "tick": {"task": "worker.tasks.tick", "schedule": 5.0},
            # confirmations the web app could not queue (a broker outage), from the outbox
            "relay-confirmations": {"task": "worker.tasks.relay_confirmations", "schedule": 5.0},
            # the digest autopilot: feeds fetched (each every 30 min), issues drafted before
            # their run, editors told; a minute is fine-grained enough for a lead time in hours
            "autopilot": {"task": "worker.tasks.autopilot", "schedule": 60.0},
            # CSV imports whose worker went away (no progress for NEWSLETTER_IMPORT_STALL_SECONDS)
            "reap-imports": {"task": "worker.tasks.reap_imports", "schedule": 60.0},
            # clicks and opens past NEWSLETTER_TRACK_RETENTION_DAYS, folded without subscribers
            "fold-engagement": {"task": "worker.tasks.fold_engagement", "schedule": 86_400.0},
        },
        "timezone": "UTC",
    }


def configure(settings: Settings, *, poll: float = FS_POLL_SECONDS) -> Celery:
    """Point the app at the settings' broker and hand the tasks these settings; safe to call
    again with other settings. ``poll``: how often a worker on the file-system broker looks for
    messages (a short run waits for each of its hops up to that long)."""
    global _settings
    _drop_connections()
    app.conf.update(celery_conf(settings, poll=poll))
    _settings = settings
    db.get_engine(settings.database_url, settings.pool())  # this process's pool, from settings
    return app


def _drop_connections() -> None:
    # pools made for the previous broker must not be reused for the new one
    # (closing them would also close kombu's shared producer pools that still point at them)
    app._pool = None
    app.amqp._producer_pool = None


def _configure_logging(loglevel: str | int | None = None, **_: Any) -> None:
    """Workers log like the web process (NEWSLETTER_LOG_FORMAT); Celery adds no handler."""
    from newsletter.logs import configure_logging

    configure_logging(current_settings(), level=loglevel)


setup_logging.connect(_configure_logging)


def _check_signing(**_: Any) -> None:
    """A DKIM key that cannot sign stops the worker at start, in one line (not every batch)."""
    from newsletter.exceptions import NewsletterError
    from newsletter.mail.dkim import signer_from_settings

    try:
        signer_from_settings(current_settings())
    except NewsletterError as exc:
        print(f"error: {exc}", file=sys.stderr)  # before any logging is set up
        raise SystemExit(1) from None


worker_init.connect(_check_signing)
