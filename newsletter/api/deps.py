"""What routes depend on: the app's settings, one database session per request, the dispatcher.

Kept apart from ``app.py`` so that routers can import these without importing the app factory
(which imports every router).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from newsletter import db
from newsletter.audience.subscribers import ConfirmationRequest
from newsletter.config import Settings

#: queues the batch chains of a started issue; the app's default hands it to Celery
Dispatcher = Callable[[int], None]


def celery_dispatch(issue_id: int) -> None:
    """``worker.tasks.dispatch.delay`` on the broker ``worker.celery_app`` is configured for."""
    from worker.tasks import dispatch  # lazily: importing the app needs no Celery set-up

    dispatch.delay(issue_id)


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """Commits when the route returns, rolls back when it raises (then the error handlers run)."""
    with db.session_scope(settings.database_url) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that gets a 200
# and asks again sees what it did, and a failed commit is a 500 instead of a lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_dispatcher(request: Request) -> Dispatcher:
    dispatch: Dispatcher = request.app.state.dispatch
    return dispatch


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


#: queues a sign-up's confirmation email; the default hands it to Celery. Tests (and embedders)
#: may set ``app.state.send_confirmation`` to another callable.
ConfirmationSender = Callable[[ConfirmationRequest], None]


def celery_send_confirmation(request: ConfirmationRequest) -> None:
    """``worker.tasks.send_confirmation.delay`` on the broker ``worker.celery_app`` uses."""
    from worker.tasks import send_confirmation

    send_confirmation.delay(
        request.subscriber_id,
        list(request.newsletter_ids),
        request.source,
        request.consent_text_version,
    )


def get_confirmation_sender(request: Request) -> ConfirmationSender:
    send: ConfirmationSender = getattr(
        request.app.state, "send_confirmation", celery_send_confirmation
    )
    return send


ConfirmationSenderDep = Annotated[ConfirmationSender, Depends(get_confirmation_sender)]
