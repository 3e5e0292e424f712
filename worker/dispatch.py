"""The ports the web app and the CLI are given to reach the workers: Celery, on its broker."""

from __future__ import annotations

from newsletter.audience.lifecycle import ConfirmationRequest


def celery_dispatch(issue_id: int) -> None:
    """Queue ``worker.tasks.dispatch`` for an issue that is (again) sending."""
    from worker.tasks import dispatch  # importing the tasks configures nothing at import

    dispatch.delay(issue_id)


#: a publish that fails gives up quickly: the sign-up's row waits in the outbox for the beat
#: (a broker that refuses connections fails in milliseconds; one that hangs, after the socket
#: timeout of ``celery_app.broker_options``)
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def celery_send_confirmation(request: ConfirmationRequest) -> None:
    """Queue ``worker.tasks.send_confirmation`` for a sign-up (its outbox row)."""
    from worker.tasks import send_confirmation

    send_confirmation.apply_async(
        (
            request.subscriber_id,
            list(request.newsletter_ids),
            request.source,
            request.consent_text_version,
            request.outbox_id,
        ),
        retry_policy=PUBLISH_RETRY,
    )


def celery_start_import(import_job_id: int) -> None:
    """Queue ``worker.tasks.import_subscribers`` for a CSV import job that was started."""
    from worker.tasks import import_subscribers

    import_subscribers.delay(import_job_id)
