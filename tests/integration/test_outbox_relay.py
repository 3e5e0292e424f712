"""A sign-up's confirmation survives a broker outage (issue 17 item 4), with real services.

A private redis-server is the broker: while it is down (not started yet, or frozen with SIGSTOP)
a sign-up answers as usual and its confirmation waits in the outbox; once it is up, the beat
(the embedded one, on its real schedule) relays the row, a real Celery worker sends the email,
and a real aiosmtpd sink receives it. A row relayed twice is one email. SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery.signals import task_postrun
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.api import create_app
from newsletter.audience import outbox
from newsletter.config import Settings, get_settings
from newsletter.db import session_scope
from newsletter.models import ConfirmationOutbox
from newsletter.tables import OB
from newsletter.transports.sink import Received, SMTPSink, free_port
from tests.conftest import celery_worker, make_newsletter
from tests.integration.public_support import confirm_link, generous_limiter, parse, unique_email
from worker import celery_app
from worker.dispatch import celery_send_confirmation
from worker.embedded import celery_beat

REDIS_DB = 12  # the shared server's database of the double-relay test, flushed before it


class RedisServer:
    """A redis-server of this test's own on a fixed port: started, frozen, stopped at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [self.binary, *args, "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)  # a frozen server cannot end
                self.process.terminate()
                self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def point_celery_at(url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app publishes to ``url`` (where nothing may be listening yet)."""
    monkeypatch.setenv("NEWSLETTER_BROKER_URL", url)
    get_settings.cache_clear()
    current = get_settings()
    celery_app.configure(current)
    return current


def web(settings: Settings) -> TestClient:
    app = create_app(settings, send_confirmation=celery_send_confirmation)
    app.state.signup_limiter = generous_limiter()
    return TestClient(app)


def rows(database_url: str) -> list[ConfirmationOutbox]:
    with session_scope(database_url) as session:
        return list(session.exec(select(ConfirmationOutbox)).all())


def wait_for(found: Callable[[], Any], timeout: float = 60, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: nothing in {timeout}s")


def to(sink: SMTPSink, email: str) -> Callable[[], list[Received]]:
    return lambda: [m for m in list(sink.messages) if m.rcpt_tos == [email]]


def test_a_sign_up_while_the_broker_is_down_gets_its_confirmation_once_it_is_back(
    settings: Settings,
    session: Session,
    broker: RedisServer,
    sink: SMTPSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nl = make_newsletter(session)
    email = unique_email("outage")
    down = point_celery_at(broker.url, monkeypatch)  # nothing listens there yet

    started = time.monotonic()
    with web(down) as client:
        answer = client.post("/api/subscribe", json={"email": email, "newsletters": [nl.slug]})
    took = time.monotonic() - started  # with the publish after the answer, which failed

    assert answer.status_code == 202
    assert took < 10, f"the failed publish took {took:.1f}s"
    (row,) = rows(settings.database_url)
    assert row.relayed_at is None and row.sent_at is None and row.attempts == 1
    assert "111" in (row.last_error or "") or "refused" in (row.last_error or "").lower()

    broker.start()
    with (
        celery_worker(broker.url, 0, sink, monkeypatch) as current,
        celery_beat(celery_app.configure(current)),
    ):
        (message,) = wait_for(to(sink, email), what="the relayed confirmation")
        wait_for(lambda: rows(settings.database_url)[0].sent_at, what="the row marked sent")

    (row,) = rows(settings.database_url)
    assert row.relayed_at is not None and row.sent_at is not None
    assert row.attempts == 2  # the web app's failed try, the beat's relay
    parsed = parse(message.data)
    assert "/confirm/" in confirm_link(parsed)
    assert str(parsed["Message-ID"]).startswith(f"<confirm.{row.id}.")
    assert len(to(sink, email)()) == 1


def test_a_broker_that_hangs_fails_the_publish_in_seconds_and_the_row_waits(
    settings: Settings,
    session: Session,
    broker: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nl = make_newsletter(session)
    broker.start()
    assert broker.process is not None
    hung = point_celery_at(broker.url, monkeypatch)
    os.kill(broker.process.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        with web(hung) as client:
            answer = client.post(
                "/subscribe", data={"email": unique_email("hang"), "newsletters": [nl.slug]}
            )
        took = time.monotonic() - started
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)

    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    assert took < 20, f"the publish to a hung broker took {took:.1f}s"
    (row,) = rows(settings.database_url)
    assert row.relayed_at is None and "Timeout" in (row.last_error or "")


class Finished:
    """Counts the confirmation tasks the in-process worker finished (sent, skipped, retried)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, sender: Any = None, state: str | None = None, **_: Any) -> None:
        if getattr(sender, "name", "") == "worker.tasks.send_confirmation":
            with self.lock:
                self.states.append(str(state))


@pytest.fixture
def finished() -> Iterator[Finished]:
    counter = Finished()
    task_postrun.connect(counter, weak=False)
    try:
        yield counter
    finally:
        task_postrun.disconnect(counter)


def test_a_row_relayed_twice_is_one_email(
    settings: Settings,
    session: Session,
    redis_url: str,
    sink: SMTPSink,
    finished: Finished,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nl = make_newsletter(session)
    email = unique_email("twice")
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch) as current:
        with web(current) as client:
            answer = client.post("/api/subscribe", json={"email": email, "newsletters": [nl.slug]})
        assert answer.status_code == 202
        wait_for(to(sink, email), what="the confirmation")
        (row,) = rows(settings.database_url)
        assert row.relayed_at is not None  # queued at once and marked

        # the publish went out but its mark was lost (the web process died right after it):
        # the beat relays the row again
        with session_scope(settings.database_url) as s:
            s.execute(update(OB).where(OB.c.id == row.id).values(relayed_at=None))
        run = outbox.relay_due(settings.database_url, celery_send_confirmation, now=_later())
        assert run.relayed == 1
        wait_for(lambda: len(finished.states) >= 2, what="the second task")

    assert len(to(sink, email)()) == 1
    (row,) = rows(settings.database_url)
    assert row.sent_at is not None and row.relayed_at is not None


def _later() -> Any:
    from datetime import timedelta

    from newsletter.models import utcnow

    return utcnow() + timedelta(minutes=1)
