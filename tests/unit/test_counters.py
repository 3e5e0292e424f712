"""The issue counters (``sending.counters``, kept by the triggers of migration 0020) equal a
``GROUP BY`` of the ledger after every kind of ledger change, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlmodel import Session

from newsletter.content.qa import QAConfig
from newsletter.db import insert_ignore
from newsletter.models import DeliveryStatus, utcnow
from newsletter.sending import controls, counters, ledger, progress
from newsletter.sending.start import fill_ledger
from newsletter.tables import IC, D
from tests.conftest import make_issue, make_subscribers

LEASE = 300


def _same(session: Session, issue_id: int) -> dict[str, int]:
    kept, scanned = counters.check(session, issue_id)
    assert kept == scanned
    return kept


def _started(session: Session, active: int) -> tuple[int, list[int]]:
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, active)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    return issue_id, [p.id for p in people if p.id is not None]


def test_every_ledger_change_moves_the_counters(session: Session) -> None:
    issue_id, _ = _started(session, 8)
    assert _same(session, issue_id) == {"pending": 8}
    assert progress.progress(session, issue_id=issue_id).counts == {"pending": 8}

    claimed = ledger.claim(session, issue_id=issue_id, limit=5, lease_seconds=LEASE)
    session.commit()
    assert _same(session, issue_id) == {"pending": 3, "sending": 5}

    sent, failed, retried, skipped, kept = claimed
    assert ledger.record_sent(
        session, delivery_id=sent.delivery_id, message_id="<m>", response="250", lease=sent.lease
    )
    assert ledger.record_failed(
        session, delivery_id=failed.delivery_id, response="550 no", lease=failed.lease
    )
    assert ledger.record_retry(
        session,
        delivery_id=retried.delivery_id,
        attempts=retried.attempts,
        response="451 later",
        max_attempts=5,
        base_seconds=30,
        lease=retried.lease,
    )
    assert ledger.record_skipped(session, delivery_id=skipped.delivery_id, reason="left")
    # a second result for a row already recorded changes nothing
    assert not ledger.record_sent(
        session, delivery_id=sent.delivery_id, message_id="<m>", response="250", lease=sent.lease
    )
    session.commit()
    assert _same(session, issue_id) == {
        "pending": 4,
        "sending": 1,
        "sent": 1,
        "failed": 1,
        "skipped": 1,
    }

    # a worker killed mid-batch: its lease runs out and the tick requeues the row
    assert ledger.requeue_expired(session, now=utcnow() + timedelta(seconds=LEASE + 1)) == 1
    session.commit()
    assert _same(session, issue_id)["pending"] == 5
    # ... and the dead claim can no longer record it
    assert not ledger.record_sent(
        session, delivery_id=kept.delivery_id, message_id="<k>", response="250", lease=kept.lease
    )

    # a rolled-back claim rolls its counts back with it (same transaction)
    ledger.claim(session, issue_id=issue_id, limit=2, lease_seconds=LEASE)
    assert counters.counts(session, issue_id)["sending"] == 2  # seen inside the transaction
    session.rollback()
    assert _same(session, issue_id)["pending"] == 5

    again = ledger.claim(session, issue_id=issue_id, limit=2, lease_seconds=LEASE)
    ledger.release(session, delivery_ids=[c.delivery_id for c in again], lease=again[0].lease)
    session.commit()
    assert "sending" not in _same(session, issue_id)

    controls.pause(session, issue_id=issue_id)
    controls.resume(session, issue_id=issue_id)
    assert controls.resend_failed(session, issue_id=issue_id) == 1
    session.commit()
    assert _same(session, issue_id) == {"pending": 6, "sent": 1, "skipped": 1}

    ledger.claim(session, issue_id=issue_id, limit=1, lease_seconds=LEASE)
    session.commit()
    assert controls.cancel(session, issue_id=issue_id) == 6
    session.commit()
    assert _same(session, issue_id) == {"cancelled": 6, "sent": 1, "skipped": 1}
    assert progress.progress(session, issue_id=issue_id).done == 8


def test_an_ignored_insert_and_a_delete_count_right(session: Session) -> None:
    issue_id, people = _started(session, 3)
    other = make_subscribers(session, make_issue(session).newsletter, 1)[0]
    rows = [
        {"issue_id": issue_id, "subscriber_id": sid, "status": "pending", "attempts": 0}
        for sid in (people[0], other.id)
    ]
    insert_ignore(session, D, rows)  # the first is already there: ON CONFLICT DO NOTHING
    session.commit()
    assert _same(session, issue_id) == {"pending": 4}
    session.execute(delete(D).where(D.c.subscriber_id == people[1]))
    session.commit()
    assert _same(session, issue_id) == {"pending": 3}


def test_counters_spread_over_shards_stay_summed(session: Session) -> None:
    """Many small statements: on PostgreSQL they land on several shard rows, read as one."""
    issue_id, _ = _started(session, 40)
    for _ in range(20):
        for c in ledger.claim(session, issue_id=issue_id, limit=2, lease_seconds=LEASE):
            ledger.record_sent(
                session, delivery_id=c.delivery_id, message_id="<m>", response="250", lease=c.lease
            )
        session.commit()
    assert _same(session, issue_id) == {"sent": 40}
    shards = session.execute(
        select(func.count(func.distinct(IC.c.shard))).where(IC.c.issue_id == issue_id)
    ).scalar_one()
    if session.get_bind().dialect.name == "postgresql":
        assert shards > 1
    assert counters.totals(session)["sent"] >= 40


@pytest.mark.parametrize("seed", range(4))
def test_random_walks_never_drift(session: Session, seed: int) -> None:
    """Random interleavings of claims, results, lease expiries, releases, resends, pauses;
    the counters equal the ledger after every step, and at the end after a cancel."""
    rng = random.Random(seed)
    issue_id, _ = _started(session, 12)
    held: list[ledger.Claimed] = []
    for _ in range(40):
        step = rng.choice(
            ["claim", "sent", "failed", "retry", "skip", "expire", "release", "resend"]
        )
        if step == "claim":
            held += ledger.claim(
                session, issue_id=issue_id, limit=rng.randint(1, 4), lease_seconds=LEASE,
                now=utcnow() + timedelta(hours=1),  # retried rows are due too
            )  # fmt: skip
        elif step == "expire":
            ledger.requeue_expired(session, now=utcnow() + timedelta(seconds=LEASE + 1))
        elif step == "release" and held:
            c = held.pop(rng.randrange(len(held)))
            ledger.release(session, delivery_ids=[c.delivery_id], lease=c.lease)
        elif step == "resend":
            status = progress.progress(session, issue_id=issue_id).status
            if status in ("sending", "paused", "sent"):
                controls.resend_failed(session, issue_id=issue_id)
        elif held:
            c = held.pop(rng.randrange(len(held)))
            if step == "sent":
                ledger.record_sent(
                    session, delivery_id=c.delivery_id, message_id="<m>", response="250",
                    lease=c.lease,
                )  # fmt: skip
            elif step == "failed":
                ledger.record_failed(
                    session, delivery_id=c.delivery_id, response="550", lease=c.lease
                )
            elif step == "retry":
                ledger.record_retry(
                    session, delivery_id=c.delivery_id, attempts=c.attempts, response="451",
                    max_attempts=3, base_seconds=1, lease=c.lease,
                )  # fmt: skip
            else:
                ledger.record_skipped(session, delivery_id=c.delivery_id, reason="left")
        session.commit()
        counts = _same(session, issue_id)
        assert sum(counts.values()) == 12
    controls.cancel(session, issue_id=issue_id)
    session.commit()
    counts = _same(session, issue_id)
    assert counts.get(DeliveryStatus.pending, 0) == counts.get(DeliveryStatus.sending, 0) == 0
