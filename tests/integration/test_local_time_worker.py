"""A real Celery worker sends a local-time issue to a real SMTP sink in three waves: readers in
Minsk, Warsaw and New York each get one message, none before 08:00 in their own zone, and a
pause between two waves holds the next one until the resume.

The due times' clock (``local_time.clock``) is stepped by the test from one wave's 08:00 to the
next (the worker runs in this process, on threads); leases, retries and the rate limiter keep
the real clock. ``dispatch`` stands in for the beat's tick, which runs the same code.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.db import session_scope
from newsletter.models import Delivery, IssueStatus, Subscriber
from newsletter.sending import controls, local_time, progress
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import Received, SMTPSink
from tests.conftest import celery_worker, make_issue, make_newsletter, make_subscribers

REDIS_DB = 6  # a database of its own on the shared server, flushed before each test
START = datetime(2026, 3, 28, 20, tzinfo=UTC)  # 23:00 Minsk, 21:00 Warsaw, 16:00 New York
WAVES = {
    "Europe/Minsk": datetime(2026, 3, 29, 5, tzinfo=UTC),
    "Europe/Warsaw": datetime(2026, 3, 29, 6, tzinfo=UTC),  # clocks went forward that night
    "America/New_York": datetime(2026, 3, 29, 12, tzinfo=UTC),
}
QUIET = 1.5  # seconds in which a wave that is not due (or paused) must send nothing


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    stepped = Clock(START)
    monkeypatch.setattr(local_time, "clock", stepped)
    return stepped


@pytest.fixture
def arrivals(clock: Clock) -> dict[str, list[datetime]]:
    """Each recipient's arrivals, stamped with the due times' clock as the sink takes them."""
    return {}


@pytest.fixture
def sink(clock: Clock, arrivals: dict[str, list[datetime]]) -> Iterator[SMTPSink]:
    def stamp(message: Received) -> None:
        for to in message.rcpt_tos:
            arrivals.setdefault(to, []).append(clock.now)

    with SMTPSink(on_message=stamp) as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the real worker runs on PostgreSQL (the fill and claims: both databases)")
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="3") as current:
        yield current


def _wait_for(sink: SMTPSink, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.messages) >= count, f"{len(sink.messages)} of {count} arrived"


def _quiet(sink: SMTPSink, count: int) -> None:
    time.sleep(QUIET)
    assert len(sink.messages) == count


def test_three_zones_three_waves_one_message_each_none_before_its_local_eight(
    session: Session, worker_settings: Settings, sink: SMTPSink, clock: Clock, arrivals: dict
) -> None:
    from worker.tasks import dispatch

    newsletter = make_newsletter(session, time_zone="Europe/Minsk")
    fx = make_issue(session, newsletter=newsletter)
    zone_of: dict[str, str] = {}
    for zone in WAVES:
        for person in make_subscribers(session, newsletter, 3):
            person.time_zone = zone
            session.add(person)
            zone_of[person.email] = zone
    for person in make_subscribers(session, newsletter, 2):  # no zone: the newsletter's
        zone_of[person.email] = "Europe/Minsk"
    session.commit()
    local_time.set_local_time(session, fx.issue, "08:00")
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()

    dispatch.delay(issue_id)  # nobody's 08:00 yet
    _quiet(sink, 0)

    clock.now = WAVES["Europe/Minsk"]
    dispatch.delay(issue_id)
    _wait_for(sink, 5)
    _quiet(sink, 5)

    controls.pause(session, issue_id=issue_id, reason="a correction before Warsaw wakes up")
    session.commit()
    clock.now = WAVES["Europe/Warsaw"]
    dispatch.delay(issue_id)
    _quiet(sink, 5)  # paused: Warsaw's due wave waits
    controls.resume(session, issue_id=issue_id)
    session.commit()
    dispatch.delay(issue_id)
    _wait_for(sink, 8)
    _quiet(sink, 8)  # New York: not yet

    clock.now = WAVES["America/New_York"]
    dispatch.delay(issue_id)
    _wait_for(sink, 11)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(worker_settings.database_url) as s:
            state = progress.progress(s, issue_id=issue_id)
        if state.finished:
            break
        time.sleep(0.1)
    assert (state.status, state.counts) == (IssueStatus.sent, {"sent": 11})
    assert Counter(to for m in sink.messages for to in m.rcpt_tos) == Counter(
        {email: 1 for email in zone_of}
    )
    for email, stamps in arrivals.items():
        assert stamps == [WAVES[zone_of[email]]], email  # in its own wave, not a moment before
    rows = session.exec(
        select(Subscriber.email, Delivery.message_id)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)  # type: ignore[arg-type]
        .where(Delivery.issue_id == issue_id)
    ).all()
    assert len({mid for _, mid in rows}) == 11
