"""The issue counters against the ledger through real sends: a Celery worker on Redis, an SMTP
sink answering 451 to a share of messages and hanging up on some (retries, and failures once the
attempts run out), a pause and a resume, a cancel mid-send. At every poll and at the end the
counters equal a ``GROUP BY`` of the ledger (one statement, one snapshot), on SQLite and
PostgreSQL. (The SIGKILLed workers whose leases expire are the chaos test's: tests/chaos.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.db import session_scope
from newsletter.models import IssueStatus
from newsletter.sending import controls, counters
from newsletter.sending.start import fill_ledger, start_send
from newsletter.transports.sink import FaultPlan, SMTPSink
from tests.conftest import celery_worker, make_issue, make_subscribers

REDIS_DB = 12  # a database of its own on the test Redis, flushed before each test


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink(faults=FaultPlan(temp_fail_ratio=0.4, drop_ratio=0.03, seed=17)) as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    # small batches, two attempts, retries due within a few hundredths of a second. The sink
    # fails 43% of its messages on purpose; at the default thresholds (half of the last 20 for
    # the relay, half of the last 100 for the issue) a window that happened to reach half would
    # take the only relay out or pause the issue, to wait for a probe (test_relays.py,
    # test_breaker_recovery.py and the chaos run cover that). Here the counters are looked at:
    # the breakers trip only when every one of their last results failed
    with celery_worker(
        redis_url,
        REDIS_DB,
        sink,
        monkeypatch,
        batch_size="4",
        max_attempts="2",
        retry_base_seconds="0.05",
        relay_breaker_threshold="1.0",
        breaker_threshold="1.0",
    ) as current:
        yield current


class Watch:
    """Polls one issue: checks the counters against the ledger each time, re-dispatches it now
    and then (as the beat's tick would: retries whose time came, leases run out)."""

    def __init__(self, settings: Settings, issue_id: int) -> None:
        self.settings, self.issue_id = settings, issue_id
        self.polls = 0
        self.drifts: list[tuple[dict[str, int], dict[str, int]]] = []
        self.counts: dict[str, int] = {}
        self.status = ""

    def poll(self) -> dict[str, int]:
        with session_scope(self.settings.database_url) as s:
            kept, scanned = counters.check(s, self.issue_id)
            self.status = str(controls.status(s, issue_id=self.issue_id).progress.status)
        self.polls += 1
        if kept != scanned:
            self.drifts.append((kept, scanned))
        self.counts = kept
        return kept

    def until(self, done: Callable[[dict[str, int]], bool], timeout: float = 60) -> None:
        from worker.tasks import dispatch

        deadline = time.monotonic() + timeout
        last_dispatch = time.monotonic()
        while time.monotonic() < deadline:
            if done(self.poll()):
                return
            if time.monotonic() - last_dispatch > 0.5 and self.status == IssueStatus.sending:
                dispatch.delay(self.issue_id)
                last_dispatch = time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"issue {self.issue_id}: not done in {timeout}s: {self.counts}")


def _start(session: Session, people: int) -> int:
    from worker.tasks import dispatch

    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, people)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    dispatch.delay(issue_id)
    return issue_id


def test_counters_follow_a_send_with_retries_failures_a_pause_and_a_resume(
    session: Session, worker_settings: Settings
) -> None:
    from worker.tasks import dispatch

    issue_id = _start(session, 60)
    watch = Watch(worker_settings, issue_id)
    watch.until(lambda c: c.get("sent", 0) >= 12)
    controls.pause(session, issue_id=issue_id)
    session.commit()
    # batches stop within one: their claimed rows are recorded or released; then nothing moves
    # (a claim that began before the pause committed may still take rows: wait for calm)
    deadline = time.monotonic() + 30
    before = watch.poll()
    while True:
        time.sleep(0.5)
        now = watch.poll()
        if now == before and now.get("sending", 0) == 0:
            break
        assert time.monotonic() < deadline, f"still moving while paused: {now}"
        before = now

    controls.resume(session, issue_id=issue_id)
    session.commit()
    dispatch.delay(issue_id)
    watch.until(lambda _: watch.status == IssueStatus.sent)

    final = watch.poll()
    assert watch.drifts == []
    assert sum(final.values()) == 60
    assert set(final) == {"sent", "failed"}  # 451s twice in a row gave up
    assert final["failed"] > 0
    assert watch.polls >= 5  # looked during the send, not only at the end


def test_counters_follow_a_send_cancelled_midway(
    session: Session, worker_settings: Settings
) -> None:
    issue_id = _start(session, 40)
    watch = Watch(worker_settings, issue_id)
    watch.until(lambda c: c.get("sent", 0) >= 6)
    cancelled = controls.cancel(session, issue_id=issue_id)
    session.commit()
    assert cancelled > 0
    watch.until(lambda c: c.get("pending", 0) == c.get("sending", 0) == 0)
    time.sleep(1.0)  # a message in flight at the cancel is still recorded, as sent or failed
    final = watch.poll()
    assert watch.drifts == []
    assert sum(final.values()) == 40
    assert final.get("cancelled", 0) > 0 and final.get("sent", 0) >= 6


def test_send_now_is_filled_once_by_the_worker_even_when_dispatched_thrice(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    """``start_send`` answers with the issue preparing; the worker's dispatch fills the ledger
    (exactly once, whatever the number of dispatches) and sends."""
    from worker.tasks import dispatch

    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 30)
    issue_id = fx.issue.id
    assert issue_id is not None
    started = start_send(worker_settings, session, issue_id=issue_id, dispatch=None)
    assert (started.started, started.recipients) == (True, 30)
    assert counters.counts(session, issue_id) == {}  # nothing filled in the "request"
    for _ in range(3):
        dispatch.delay(issue_id)
    watch = Watch(worker_settings, issue_id)
    watch.until(lambda _: watch.status in (IssueStatus.sent, IssueStatus.paused), timeout=90)
    final = watch.poll()
    assert watch.drifts == []
    assert sum(final.values()) == 30  # one ledger row per recipient, filled once
    assert len({m.rcpt_tos[0] for m in sink.messages}) == final.get("sent", 0)
