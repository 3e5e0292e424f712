"""The chaos send's sign-up storm: N sign-ups through the real public sign-up path (the FastAPI
app in this process, ``POST /api/subscribe``, its confirmation published after the answer by
the Celery port) while the broker is stopped. Each must be answered 2xx; the confirmation waits
in the outbox, and the beat relays it once the broker is back."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from newsletter import db
from newsletter.api.app import create_app
from newsletter.audience import outbox
from newsletter.config import Settings

DOMAIN = "storm.example.org"
CLIENTS = 8  # sign-ups in flight at once


@dataclass
class Storm:
    addresses: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> answers
    seconds: float = 0.0
    slowest: float = 0.0
    waiting: int = 0  # outbox rows not relayed right after the storm (the broker was down)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def errors(self) -> int:
        """Answers that were not 2xx."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def newsletter_slug(database_url: str, issue_id: int) -> str:
    with db.session_scope(database_url) as s:
        return str(
            s.execute(
                text("SELECT n.slug FROM newsletter n JOIN issue i ON i.newsletter_id = n.id "
                     "WHERE i.id = :issue"),
                {"issue": issue_id},
            ).scalar_one()
        )  # fmt: skip


def sign_up(settings: Settings, *, slug: str, count: int, clients: int = CLIENTS) -> Storm:
    """``count`` sign-ups for newsletter ``slug`` from ``clients`` readers at a time."""
    from worker.dispatch import celery_dispatch, celery_send_confirmation

    app = create_app(settings, dispatch=celery_dispatch, send_confirmation=celery_send_confirmation)
    storm = Storm()
    began = time.monotonic()
    # each sign-up logs that Redis is away (the limit skipped, the publish failed): 3 lines each
    logging.disable(logging.ERROR)
    try:
        with ThreadPoolExecutor(clients) as pool:
            for done in [
                pool.submit(_sign_up_some, app, storm, slug, range(first, count + 1, clients))
                for first in range(1, clients + 1)
            ]:
                done.result()
    finally:
        logging.disable(logging.NOTSET)
    storm.seconds = time.monotonic() - began
    storm.waiting = outbox_waiting(settings.database_url)
    return storm


def _sign_up_some(app: FastAPI, storm: Storm, slug: str, numbers: range) -> None:
    """One reader after another (each answer waits for the publish that fails, a few hundred
    milliseconds with the broker down: ``worker.dispatch.PUBLISH_RETRY``)."""
    with TestClient(app, raise_server_exceptions=False) as client:
        for n in numbers:
            email = f"signup{n}@{DOMAIN}"
            started = time.monotonic()
            answer = client.post("/api/subscribe", json={"email": email, "newsletters": [slug]})
            took = time.monotonic() - started
            with storm.lock:
                storm.slowest = max(storm.slowest, took)
                storm.statuses[answer.status_code] = storm.statuses.get(answer.status_code, 0) + 1
                storm.addresses.append(email)


def outbox_waiting(database_url: str) -> int:
    """Outbox rows the beat has not relayed yet."""
    with db.session_scope(database_url) as s:
        return outbox.waiting(s)
