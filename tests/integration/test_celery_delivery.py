"""A real Celery worker on the machine's Redis sends an issue through a real SMTP sink."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.models import Delivery, SubscriptionStatus
from newsletter.sending import progress
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_issue, make_subscribers

REDIS_DB = 13  # a database of its own on the shared server, flushed before each test


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    # a batch size of 7: several batches and chains for 50 recipients
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="7") as current:
        yield current


def wait_until_sent(settings: Settings, issue_id: int, timeout: float = 60) -> progress.Progress:
    from newsletter.db import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as s:
            state = progress.progress(s, issue_id=issue_id)
        if state.finished:
            return state
        time.sleep(0.1)
    raise AssertionError(f"issue {issue_id} not sent in {timeout}s: {state}")


def test_worker_on_redis_sends_one_message_per_active_subscriber(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    from worker.tasks import dispatch

    fx = make_issue(session)
    active = make_subscribers(session, fx.newsletter, 50)
    make_subscribers(session, fx.newsletter, 5, status=SubscriptionStatus.unsubscribed)
    issue_id = fx.issue.id
    assert issue_id is not None
    start = fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    assert (start.recipients, start.skipped) == (50, 5)

    dispatch.delay(issue_id)
    state = wait_until_sent(worker_settings, issue_id)

    assert state.counts == {"sent": 50}
    received = [message_from_bytes(m.data, policy=default_policy) for m in sink.messages]
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == sorted(p.email for p in active)
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in received) == sorted(
        p.email for p in active
    )
    ledger = {
        row.message_id
        for row in session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
    }
    assert {str(m["Message-ID"]) for m in received} == ledger
    for message in received:
        assert message.get_body(("plain",)) is not None
        assert message.get_body(("html",)) is not None
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_second_send_of_the_same_issue_sends_nothing_more(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    from worker.tasks import dispatch

    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 10)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    dispatch.delay(issue_id)
    wait_until_sent(worker_settings, issue_id)

    again = fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    dispatch.delay(issue_id)
    dispatch.delay(issue_id)
    time.sleep(1.0)  # give stray batches the chance to (wrongly) send

    assert again.started is False
    assert len(sink.messages) == 10
