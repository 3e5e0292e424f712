"""A subject test through a real Celery worker and the real SMTP sink (PostgreSQL only: the
domain tests run both databases): 2 subjects to 20% each, B made the winner by crafted human
clicks, the worker's tick picks it when the wait is over, the rest get B, nobody twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.models import Delivery, EngagementEvent, utcnow
from newsletter.sending import progress, subject_tests
from newsletter.sending.start import start_send
from newsletter.tables import ST
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_issue, make_newsletter, make_subscribers

REDIS_DB = 11  # a database of its own on the shared server, flushed before the test
A, B = "Minsk talks: what the KGB chief said", "Belarus Weekly: 52 prisoners freed"


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="7") as current:
        yield current


def wait_for(
    settings: Settings,
    issue_id: int,
    done: Callable[[progress.Progress], bool],
    timeout: float = 60,
) -> progress.Progress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as s:
            state = progress.progress(s, issue_id=issue_id)
        if done(state):
            return state
        time.sleep(0.1)
    raise AssertionError(f"issue {issue_id}: not there in {timeout}s: {state}")


def samples_sent(state: progress.Progress) -> bool:
    return state.counts.get("sent") == 20 and state.counts.get("pending") == 30


def click(session: Session, issue_id: int, subscriber_id: int, verdict: str, variant: int) -> None:
    """An event as recording writes it: with the variant of the reader's ledger row."""
    session.add(
        EngagementEvent(
            issue_id=issue_id,
            subscriber_id=subscriber_id,
            kind="click",
            verdict=verdict,
            variant=variant,
        )
    )


def subjects_by_recipient(sink: SMTPSink) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for m in sink.messages:
        parsed = message_from_bytes(m.data, policy=default_policy)
        got.setdefault(m.rcpt_tos[0], []).append(str(parsed["Subject"]))
    return got


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_worker_sends_the_samples_then_the_winner_to_the_rest(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    from worker.tasks import dispatch

    newsletter = make_newsletter(session, track_clicks=True)
    fx = make_issue(session, newsletter=newsletter)
    people = {p.id: p.email for p in make_subscribers(session, newsletter, 50)}
    issue_id = fx.issue.id
    assert issue_id is not None
    test = subject_tests.spec([A, B], sample=20, wait="4h", metric="clicks")
    subject_tests.configure(session, fx.issue, test)
    start_send(worker_settings, session, issue_id=issue_id, dispatch=dispatch.delay)

    # the worker fills the ledger, draws the samples and sends them; the rest wait
    wait_for(worker_settings, issue_id, samples_sent)
    time.sleep(0.5)  # a stray batch would (wrongly) send held rows now
    first = subjects_by_recipient(sink)
    assert len(first) == 20 and all(len(s) == 1 for s in first.values())
    session.expire_all()
    ledger = session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
    variant = {r.subscriber_id: r.variant for r in ledger}
    assert Counter(variant.values()) == {1: 10, 2: 10, None: 30}
    for sid, v in variant.items():
        if v is not None:
            assert first[people[sid]] == [A if v == 1 else B]

    b_sample = [sid for sid, v in variant.items() if v == 2]
    a_sample = [sid for sid, v in variant.items() if v == 1]
    for sid in [*b_sample[:4], a_sample[0]]:
        click(session, issue_id, sid, "human", variant[sid] or 0)
    for sid in a_sample:  # a link scanner clicking everything of A counts for nothing
        click(session, issue_id, sid, "machine", 1)
    session.execute(update(ST).where(ST.c.issue_id == issue_id).values(decide_at=utcnow()))
    session.commit()

    dispatch.delay(issue_id)  # the worker's tick: the wait is over, B wins, the rest go out
    wait_for(worker_settings, issue_id, lambda state: state.status == "sent")

    every = subjects_by_recipient(sink)
    assert sorted(every) == sorted(people.values())
    assert all(len(s) == 1 for s in every.values())  # nobody twice
    assert all(every[e] == [B] for e in set(every) - set(first))
    shown = subject_tests.summary(session, issue_id)
    assert shown is not None and shown["winner"] == 2 and shown["decided_by"] == "the tick"
    assert shown["headline"].startswith("B won")
