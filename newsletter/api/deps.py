"""What routes depend on: the app's settings, one database session per request, the dispatcher.

Kept apart from ``app.py`` so that routers can import these without importing the app factory
(which imports every router).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlmodel import Session

from newsletter import db
from newsletter.audience import outbox
from newsletter.audience.outbox import ConfirmationRequest
from newsletter.config import Settings

log = logging.getLogger(__name__)

#: queues the batch chains of a started issue: a port ``create_app`` is given (the Celery one,
#: ``worker.dispatch.celery_dispatch``, by ``newsletter serve``); the API never imports a queue
Dispatcher = Callable[[int], None]


def no_queue(issue_id: int) -> None:
    """The dispatcher of an app given none: the beat's tick starts the batches within seconds."""
    log.warning("issue %s: no worker queue configured; the periodic tick will start it", issue_id)


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


#: queues a sign-up's confirmation email: a port like the dispatcher
#: (``worker.dispatch.celery_send_confirmation`` in production); tests set their own
ConfirmationSender = Callable[[ConfirmationRequest], None]


def no_confirmation_queue(request: ConfirmationRequest) -> None:
    """The confirmation sender of an app given none: nothing can be queued from here, so the
    row stays in the outbox (a beat relays it) and the log says so loudly."""
    raise RuntimeError("no worker queue configured")


def get_confirmation_sender(request: Request) -> ConfirmationSender:
    send: ConfirmationSender = request.app.state.send_confirmation
    return send


ConfirmationSenderDep = Annotated[ConfirmationSender, Depends(get_confirmation_sender)]


def queue_confirmation(
    background: BackgroundTasks,
    send: ConfirmationSender,
    request: ConfirmationRequest | None,
    settings: Settings,
) -> None:
    """Queue a confirmation email once the answer is sent (the request's session has committed
    by then: ``SessionDep`` commits before the response, a sign-up commits itself) and mark its
    outbox row relayed. A queue that is down changes nothing the client saw: the failure is
    logged and the row waits for the beat (``outbox.relay``)."""
    if request is not None:
        background.add_task(outbox.relay, settings.database_url, request, send)


#: queues a started CSV import job: a port like the dispatcher
#: (``worker.dispatch.celery_start_import`` in production)
ImportStarter = Callable[[int], None]


def no_import_queue(import_job_id: int) -> None:
    """The import starter of an app given none: the job waits, so say so loudly."""
    log.error("import %s: not queued: no worker queue configured", import_job_id)


def get_import_starter(request: Request) -> ImportStarter:
    start: ImportStarter = getattr(request.app.state, "start_import", no_import_queue)
    return start


ImportStarterDep = Annotated[ImportStarter, Depends(get_import_starter)]


@dataclass(frozen=True)
class Client:
    """Who asked: the client IP (see ``newsletter serve --forwarded-allow-ips``) and user agent."""

    ip: str | None
    user_agent: str | None


def client_of(request: Request) -> Client:
    return Client(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


ClientDep = Annotated[Client, Depends(client_of)]
