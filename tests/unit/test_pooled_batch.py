"""A batch with several messages in flight (``transports.pool`` + ``sending.pooled``): the same
outcomes as one connection, each row handed over once, and a pause that releases only the rows
never handed over. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from newsletter import db
from newsletter.config import Settings
from newsletter.models import Subscription, SubscriptionStatus
from newsletter.sending import controls, hands, prepare
from newsletter.sending.batch import run_batch
from newsletter.transports import PermanentFailure, TemporaryFailure, Transport, TransportError
from newsletter.transports.memory import MemoryTransport
from newsletter.transports.pool import TransportPool
from tests.unit.test_ledger import _rows, _start, _statuses


@pytest.fixture(autouse=True)
def _fresh_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "_templates", {})


class Shared:
    """What every connection of a pool saw, and how many sends overlapped at most."""

    def __init__(self, failures: dict[str, TransportError], on_send: Callable[[], None]) -> None:
        self.failures = failures
        self.on_send = on_send
        self.lock = threading.Lock()
        self.tried: list[str] = []
        self.busy = self.most_busy = 0

    def connection(self) -> Transport:
        shared = self

        class Connection(MemoryTransport):
            def send(self, envelope_from: str, to: str, data: bytes) -> str:
                with shared.lock:
                    shared.tried.append(to)
                    shared.busy += 1
                    shared.most_busy = max(shared.most_busy, shared.busy)
                try:
                    shared.on_send()
                    return super().send(envelope_from, to, data)
                finally:
                    with shared.lock:
                        shared.busy -= 1

        return Connection(self.failures)


def test_a_pooled_batch_records_what_one_connection_would(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one hand for the whole batch: on SQLite a hand past its time (50 ms, easily spent building
    # the first messages on a loaded machine) waits for every message in flight before the next
    # is handed over, so the three held sends could never overlap and the test timed out
    monkeypatch.setattr(hands, "HAND_SECONDS", 60.0)
    st = _start(session, active=12)
    busy, gone, left, *ok = st.active
    subscription = session.exec(
        select(Subscription).where(Subscription.subscriber_id == left.id)
    ).one()
    subscription.status = SubscriptionStatus.unsubscribed  # after the fill: skipped at sending
    session.add(subscription)
    session.commit()
    failures: dict[str, TransportError] = {
        busy.email: TemporaryFailure("451", code=451, response="451 4.3.0 busy"),
        gone.email: PermanentFailure("550", code=550, response="550 5.1.1 no such user"),
    }
    arrivals = threading.Semaphore(0)
    release = threading.Event()

    def hold_the_first_three() -> None:
        # the first three sends wait until all three are in flight at once: with one message
        # in flight at a time this would never happen (and the timeout would fail the test)
        arrivals.release()
        release.wait(10)

    shared = Shared(failures, hold_the_first_three)
    pool = TransportPool(shared.connection, 3)

    def opener() -> None:
        for _ in range(3):
            assert arrivals.acquire(timeout=10), "three sends were never in flight together"
        release.set()

    watcher = threading.Thread(target=opener)
    watcher.start()
    try:
        result = run_batch(settings, issue_id=st.issue_id, transport=MemoryTransport(), pool=pool)
    finally:
        pool.close()
        watcher.join(15)
    assert release.is_set()
    assert shared.most_busy == 3
    statuses = _statuses(session, st.issue_id)
    assert statuses[busy.id] == "pending"  # type: ignore[index]
    assert statuses[gone.id] == "failed"  # type: ignore[index]
    assert {statuses[p.id] for p in ok} == {"sent"}  # type: ignore[index]
    assert statuses[left.id] == "skipped"  # type: ignore[index]
    # each handed over once, the one who left never
    assert sorted(shared.tried) == sorted(p.email for p in st.active if p is not left)
    assert (result.sent, result.retried, result.failed, result.skipped) == (9, 1, 1, 1)
    sent_rows = [r for r in _rows(session, st.issue_id) if r.status == "sent"]
    assert all(r.message_id and r.smtp_response == "250 2.0.0 OK queued" for r in sent_rows)


def test_a_pause_mid_batch_records_the_messages_in_flight_and_releases_the_rest(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = _start(session, active=60)
    issue_id = st.issue_id
    count = 0

    def counting() -> None:
        nonlocal count
        count += 1

    finish = hands.Hands._finish

    def pause_after_the_30th(self: hands.Hands, hand: hands.Hand) -> None:
        finish(self, hand)
        if count >= 30 and not paused:
            # an editor pauses (once the hand lets go: on SQLite it holds the write lock)
            with db.session_scope(settings.database_url) as other:
                paused.append(controls.pause(other, issue_id=issue_id))

    paused: list[object] = []
    monkeypatch.setattr(hands.Hands, "_finish", pause_after_the_30th)
    shared = Shared({}, counting)
    pool = TransportPool(shared.connection, 4)
    try:
        result = run_batch(settings, issue_id=issue_id, transport=MemoryTransport(), pool=pool)
    finally:
        pool.close()
    assert result.stopped
    rows = _rows(session, issue_id)
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    handed_over = len(shared.tried)
    # every message handed over is recorded sent; every other active row is back to pending,
    # none left leased ("sending") and none handed over twice
    assert 30 <= handed_over < 60
    assert len(set(shared.tried)) == handed_over
    assert by_status.get("sent") == handed_over
    assert by_status.get("pending") == 60 - handed_over
    assert "sending" not in by_status
