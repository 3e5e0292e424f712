"""Issue 16's whole promise in one send: one issue in three editions (be, ru, en) and three
time zones (Minsk, Warsaw, New York), every language in every zone, through the real Celery
worker (on Redis) to a real SMTP sink. Each reader gets exactly one message, in their language
with its localised chrome, and none before 08:00 in the reader's own zone.

The due times' clock (``local_time.clock``) is stepped from one wave's 08:00 to the next, as in
``test_local_time_worker`` (the worker runs on threads of this process).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.db import session_scope
from newsletter.models import IssueStatus
from newsletter.sending import local_time, progress
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_subscribers
from tests.integration.editions_support import TEXT, body, issue_with_editions, received
from tests.integration.test_local_time_worker import WAVES, Clock, arrivals, clock, sink
from tests.unit.test_locales import catalogue

__all__ = ["arrivals", "clock", "sink"]  # the local-time worker test's fixtures, used by name
REDIS_DB = 11  # a database of its own on the shared server, flushed before the test
LANGUAGES = ("be", "ru", "en")
QUIET = 1.5  # seconds in which a wave that is not due must send nothing


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="4") as current:
        yield current


def _arrived(sink: SMTPSink, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(QUIET)  # and nothing more: the next wave is not due
    assert len(sink.messages) == count, f"{len(sink.messages)} arrived, {count} expected"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the worker test's CI time
def test_three_editions_in_three_zones_one_message_each_in_its_language_at_its_local_eight(
    session: Session,
    worker_settings: Settings,
    sink: SMTPSink,
    clock: Clock,
    arrivals: dict[str, list[datetime]],
) -> None:
    from worker.tasks import dispatch

    fx = issue_with_editions(session)
    readers = make_subscribers(session, fx.newsletter, len(WAVES) * len(LANGUAGES))
    wanted: dict[str, tuple[str, str]] = {}  # email -> (language, zone)
    for n, reader in enumerate(readers):
        zone, language = list(WAVES)[n // len(LANGUAGES)], LANGUAGES[n % len(LANGUAGES)]
        reader.time_zone, reader.language = zone, language
        session.add(reader)
        wanted[reader.email] = (language, zone)
    session.commit()
    local_time.set_local_time(session, fx.issue, "08:00")
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()

    dispatch.delay(issue_id)
    _arrived(sink, 0)  # nobody's 08:00 yet
    for wave, due in enumerate(WAVES.values(), start=1):
        clock.now = due
        dispatch.delay(issue_id)
        _arrived(sink, wave * len(LANGUAGES))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(worker_settings.database_url) as s:
            state = progress.progress(s, issue_id=issue_id)
        if state.finished:
            break
        time.sleep(0.1)
    assert (state.status, state.counts) == (IssueStatus.sent, {"sent": len(readers)})
    got = received(sink)
    assert sorted(got) == sorted(wanted)
    for email, (language, zone) in wanted.items():
        (message,) = got[email]  # exactly one
        assert arrivals[email] == [WAVES[zone]], email  # at its zone's 08:00, not before
        subject, intro, title = TEXT[language]
        assert message["Subject"] == subject
        text, html = body(message), body(message, "html")
        assert intro in text and title in html
        if language == "en":
            assert "Unsubscribe:" in text
        else:
            words = catalogue(language)
            assert f"{words['Unsubscribe']}:" in text and words["Manage preferences"] in html
