"""The embedded default, running in this process: a real Celery worker thread and the beat."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def celery_worker(app: Any, *, concurrency: int = 2) -> Iterator[Any]:
    """A real Celery worker consuming the configured broker from a thread (not eager mode)."""
    from celery.worker import state

    worker = app.WorkController(
        app=app,
        pool="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        ready_callback=None,
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        wake_to_stop(app)
        thread.join(30)
        state.should_terminate = None


def wake_to_stop(app: Any) -> None:
    """Ask the worker threads of this process to stop, now rather than in up to 4 s.

    Celery's blocking consumer loop waits up to 2 s for the broker, then looks at its stop
    flag, then waits once more (the check sits in a ``try`` whose ``finally`` drains again):
    two no-op messages end both waits at once.
    """
    from celery.worker import state

    state.should_terminate = 0  # the consumer loop's own shutdown signal
    for _ in range(2):
        app.send_task("worker.tasks.wake")


@contextmanager
def celery_beat(app: Any) -> Iterator[Any]:
    """The beat (``beat_schedule``: the periodic tick) in a thread, its schedule in memory."""
    from celery.beat import EmbeddedService

    beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")
    beat.start()
    try:
        yield beat
    finally:
        beat.stop()  # waits for the thread's loop to end (it sleeps at most a second)
