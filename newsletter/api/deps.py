"""What routes depend on: the app's settings, one database session per request, the dispatcher.

Kept apart from ``app.py`` so that routers can import these without importing the app factory
(which imports every router). The ones that only read the request or the app's state are
``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off to a
thread and back for an attribute read (two of the five a one-click POST made).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from anyio import CancelScope, CapacityLimiter, to_thread
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


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """Commits when the route returns, rolls back when it raises (then the error handlers run).

    ``db.session_scope``'s work with one hand-off to a thread instead of two: making the session
    touches no database (the route's first statement takes a connection, in the route's thread),
    so it is made here; the commit or the rollback, then the close, run in one thread. As
    FastAPI does for a ``def`` dependency's exit: shielded from cancellation, and on a limiter
    of its own, so that it never waits for a thread held by a route waiting for a connection.
    """
    session = Session(db.get_engine(settings.database_url), expire_on_commit=False)
    try:
        yield session
    except BaseException:
        with CancelScope(shield=True):
            await to_thread.run_sync(_end, session, False, limiter=CapacityLimiter(1))
        raise
    with CancelScope(shield=True):
        await to_thread.run_sync(_end, session, True, limiter=CapacityLimiter(1))


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


# scope="function": the commit happens before the response is sent, so a client that gets a 200
# and asks again sees what it did, and a failed commit is a 500 instead of a lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_dispatcher(request: Request) -> Dispatcher:
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


async def get_confirmation_sender(request: Request) -> ConfirmationSender:
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


async def get_import_starter(request: Request) -> ImportStarter:
    start: ImportStarter = getattr(request.app.state, "start_import", no_import_queue)
    return start


ImportStarterDep = Annotated[ImportStarter, Depends(get_import_starter)]


@dataclass(frozen=True)
class Client:
    """Who asked: the client IP (see ``newsletter serve --forwarded-allow-ips``) and user agent."""

    ip: str | None
    user_agent: str | None


async def client_of(request: Request) -> Client:
    return Client(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


ClientDep = Annotated[Client, Depends(client_of)]
