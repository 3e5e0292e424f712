"""Tests for the delivery ledger (newsletter.sending.ledger) and one batch of sender.run_batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from newsletter.audience import suppression
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import PermanentFailure, TemporaryFailure
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from newsletter.sending import hands, ledger, prepare
from newsletter.sending.batch import BatchResult, run_batch
from newsletter.sending.start import SendStart, fill_ledger
from newsletter.transports.memory import MemoryTransport
from tests.conftest import IssueFixture, make_issue, make_subscribers


@pytest.fixture(autouse=True)
def _fresh_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """sender.prepared caches per issue id for the process; ids repeat across test databases."""
    monkeypatch.setattr(prepare, "_templates", {})


def _aware(value: datetime | None) -> datetime:
    """SQLite gives naive UTC datetimes back, PostgreSQL aware ones."""
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _rows(session: Session, issue_id: int) -> list[Delivery]:
    session.expire_all()
    return list(
        session.exec(
            select(Delivery).where(Delivery.issue_id == issue_id).order_by(col(Delivery.id))
        ).all()
    )


def _statuses(session: Session, issue_id: int) -> dict[int, str]:
    """subscriber id -> delivery status"""
    return {row.subscriber_id: row.status for row in _rows(session, issue_id)}


def _issue(session: Session, issue_id: int) -> Issue:
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue


def _subscription_status(session: Session, subscriber: Subscriber, newsletter_id: int) -> str:
    session.expire_all()
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.newsletter_id == newsletter_id,
        )
    ).one()
    return sub.status


@dataclass
class Started:
    fx: IssueFixture
    active: list[Subscriber]
    inactive: list[Subscriber]
    start: SendStart

    @property
    def issue_id(self) -> int:
        assert self.fx.issue.id is not None
        return self.fx.issue.id


def _start(session: Session, *, active: int = 3) -> Started:
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, active)
    gone = make_subscribers(session, fx.newsletter, 1, status=SubscriptionStatus.unsubscribed)
    gone += make_subscribers(session, fx.newsletter, 1, status=SubscriptionStatus.bounced)
    start = fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    return Started(fx, people, gone, start)


@pytest.fixture
def started(session: Session) -> Started:
    return _start(session)


def _claim(
    session: Session, issue_id: int, *, limit: int = 100, now: datetime | None = None
) -> list[ledger.Claimed]:
    claimed = ledger.claim(session, issue_id=issue_id, limit=limit, lease_seconds=300, now=now)
    session.commit()
    return claimed


# ---------------------------------------------------------------- start_send


def test_start_send_marks_the_issue_sending(session: Session, started: Started) -> None:
    issue = _issue(session, started.issue_id)
    assert issue.status == IssueStatus.sending
    assert issue.send_started_at is not None


def test_start_send_makes_one_pending_row_per_active_subscriber(
    session: Session, started: Started
) -> None:
    rows = _rows(session, started.issue_id)
    assert sorted(r.subscriber_id for r in rows) == sorted(p.id for p in started.active)  # type: ignore[misc]
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.pending, 0)}
    assert started.start.recipients == 3


def test_start_send_leaves_the_sessions_issue_sending(session: Session) -> None:
    """The move to sending is a Core UPDATE: the session's own copy of the issue (held here, so
    it stays in the identity map) must not go on saying draft."""
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 2)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    assert fx.issue.status == IssueStatus.sending
    assert fx.issue.send_started_at is not None


def test_start_send_counts_non_active_subscribers_as_skipped(started: Started) -> None:
    assert (started.start.started, started.start.skipped) == (True, 2)


def test_second_start_send_is_a_no_op(session: Session, started: Started) -> None:
    make_subscribers(session, started.fx.newsletter, 2)  # joined after the first start
    again = fill_ledger(session, issue_id=started.issue_id, checks=QAConfig())
    session.commit()
    assert (again.started, again.recipients, again.skipped) == (False, 3, 0)
    assert len(_rows(session, started.issue_id)) == 3


# ---------------------------------------------------------------- claim


def test_claim_takes_at_most_limit_rows(session: Session) -> None:
    st = _start(session, active=5)
    claimed = _claim(session, st.issue_id, limit=2)
    assert len(claimed) == 2
    assert sorted(_statuses(session, st.issue_id).values()) == [
        DeliveryStatus.pending,
        DeliveryStatus.pending,
        DeliveryStatus.pending,
        DeliveryStatus.sending,
        DeliveryStatus.sending,
    ]


def test_claims_with_a_limit_take_disjoint_rows(session: Session) -> None:
    st = _start(session, active=5)
    batches = [_claim(session, st.issue_id, limit=2) for _ in range(3)]
    ids = [[c.delivery_id for c in batch] for batch in batches]
    assert [len(batch) for batch in ids] == [2, 2, 1]
    assert len({i for batch in ids for i in batch}) == 5


def test_claim_without_a_binding_limit_takes_every_due_row_once(
    session: Session, started: Started
) -> None:
    first = _claim(session, started.issue_id)
    second = _claim(session, started.issue_id)
    assert sorted(c.subscriber_id for c in first) == sorted(p.id for p in started.active)  # type: ignore[misc]
    assert second == []


def test_claim_returns_the_recipients_address_and_name(session: Session, started: Started) -> None:
    claimed = _claim(session, started.issue_id)
    by_id = {p.id: p for p in started.active}
    assert {(c.email, c.name, c.active) for c in claimed} == {
        (by_id[c.subscriber_id].email, by_id[c.subscriber_id].name, True) for c in claimed
    }
    assert len(claimed) == 3


def test_claim_reads_each_readers_subscription_and_language_now(
    session: Session, started: Started
) -> None:
    """A reader who left after the start is claimed inactive (skipped, not mailed); a reader's
    language comes with the row; both from the subscription and subscriber as they are now."""
    left, french, plain = started.active
    session.execute(
        text("UPDATE subscription SET status = 'unsubscribed' WHERE subscriber_id = :id"),
        {"id": left.id},
    )
    session.execute(text("UPDATE subscriber SET language = 'fr' WHERE id = :id"), {"id": french.id})
    session.commit()
    claimed = {c.subscriber_id: c for c in _claim(session, started.issue_id)}
    assert {i: (c.active, c.language) for i, c in claimed.items()} == {
        left.id: (False, None),
        french.id: (True, "fr"),
        plain.id: (True, None),
    }


def test_claim_leases_rows_and_counts_the_attempt(session: Session, started: Started) -> None:
    now = utcnow()
    claimed = _claim(session, started.issue_id, now=now)
    rows = {r.id: r for r in _rows(session, started.issue_id)}
    assert sorted(rows) == sorted(c.delivery_id for c in claimed)
    for c in claimed:
        row = rows[c.delivery_id]
        assert (row.status, row.attempts, c.attempts) == (DeliveryStatus.sending, 1, 1)
        assert _aware(row.lease_until) == now + timedelta(seconds=300)


def test_claim_after_a_requeue_counts_a_second_attempt(session: Session, started: Started) -> None:
    _claim(session, started.issue_id)
    ledger.requeue_expired(session, now=utcnow() + timedelta(days=1))
    session.commit()
    again = _claim(session, started.issue_id)
    assert [c.attempts for c in again] == [2, 2, 2]


def test_claim_on_a_paused_issue_returns_nothing(session: Session, started: Started) -> None:
    issue = _issue(session, started.issue_id)
    issue.status = IssueStatus.paused
    session.add(issue)
    session.commit()
    assert _claim(session, started.issue_id) == []
    assert set(_statuses(session, started.issue_id).values()) == {DeliveryStatus.pending}


def _retry_one_later(session: Session, started: Started) -> ledger.Claimed:
    """Claim every row, finish all but one as sent, and put that one back for a later retry."""
    first, *rest = _claim(session, started.issue_id)
    for c in rest:
        ledger.record_sent(session, delivery_id=c.delivery_id, message_id="<m>", response="250")
    ledger.record_retry(
        session,
        delivery_id=first.delivery_id,
        attempts=first.attempts,
        response="451 busy",
        max_attempts=5,
        base_seconds=60,
    )
    session.commit()
    return first


def test_claim_skips_a_row_whose_retry_is_not_due(session: Session, started: Started) -> None:
    _retry_one_later(session, started)
    assert _claim(session, started.issue_id, now=utcnow()) == []


def test_claim_takes_a_retried_row_once_it_is_due(session: Session, started: Started) -> None:
    retried = _retry_one_later(session, started)
    later = _claim(session, started.issue_id, now=utcnow() + timedelta(days=1))
    assert [(c.delivery_id, c.attempts) for c in later] == [(retried.delivery_id, 2)]


# ---------------------------------------------------------------- leases


def test_requeue_expired_puts_leased_rows_back_to_pending(
    session: Session, started: Started
) -> None:
    _claim(session, started.issue_id)
    requeued = ledger.requeue_expired(session, now=utcnow() + timedelta(days=1))
    session.commit()
    rows = _rows(session, started.issue_id)
    assert requeued == 3
    assert {(r.status, r.lease_until) for r in rows} == {(DeliveryStatus.pending, None)}


def test_requeue_expired_leaves_live_leases_alone(session: Session, started: Started) -> None:
    _claim(session, started.issue_id)
    requeued = ledger.requeue_expired(session, now=utcnow())
    session.commit()
    assert requeued == 0
    assert set(_statuses(session, started.issue_id).values()) == {DeliveryStatus.sending}


# ---------------------------------------------------------------- recording results


def _one_claimed(session: Session, started: Started) -> ledger.Claimed:
    [c] = _claim(session, started.issue_id, limit=1)
    return c


def _row(session: Session, started: Started, delivery_id: int) -> Delivery:
    return next(r for r in _rows(session, started.issue_id) if r.id == delivery_id)


def test_record_sent_stores_message_id_and_reply(session: Session, started: Started) -> None:
    c = _one_claimed(session, started)
    assert ledger.record_sent(
        session, delivery_id=c.delivery_id, message_id="<1.2.x@ex>", response="250 OK"
    )
    session.commit()
    row = _row(session, started, c.delivery_id)
    assert (row.status, row.message_id, row.smtp_response) == ("sent", "<1.2.x@ex>", "250 OK")
    assert row.lease_until is None and row.sent_at is not None


def test_record_sent_on_a_row_not_in_flight_does_nothing(
    session: Session, started: Started
) -> None:
    c = _one_claimed(session, started)
    ledger.record_failed(session, delivery_id=c.delivery_id, response="550 gone")
    again = ledger.record_sent(session, delivery_id=c.delivery_id, message_id="<m>", response="")
    session.commit()
    assert again is False
    assert _row(session, started, c.delivery_id).status == DeliveryStatus.failed


def test_record_retry_below_max_attempts_schedules_a_later_try(
    session: Session, started: Started
) -> None:
    c = _one_claimed(session, started)
    before = utcnow()
    ledger.record_retry(
        session,
        delivery_id=c.delivery_id,
        attempts=c.attempts,
        response="451 4.3.0 busy",
        max_attempts=3,
        base_seconds=60,
    )
    session.commit()
    row = _row(session, started, c.delivery_id)
    assert (row.status, row.smtp_response, row.lease_until) == ("pending", "451 4.3.0 busy", None)
    assert _aware(row.next_attempt_at) >= before + timedelta(seconds=30)


def test_record_retry_at_max_attempts_fails_the_row(session: Session, started: Started) -> None:
    c = _one_claimed(session, started)
    ledger.record_retry(
        session,
        delivery_id=c.delivery_id,
        attempts=3,
        response="451 4.3.0 busy",
        max_attempts=3,
        base_seconds=60,
    )
    session.commit()
    row = _row(session, started, c.delivery_id)
    assert (row.status, row.smtp_response) == ("failed", "gave up: 451 4.3.0 busy")


def test_a_retry_no_server_was_reached_for_gives_its_try_back(
    session: Session, started: Started
) -> None:
    c = _one_claimed(session, started)
    assert c.attempts == 1  # the claim counted one
    ledger.record_retry(
        session,
        delivery_id=c.delivery_id,
        attempts=3,  # at the limit: a counted retry would give up (above)
        response="no relay to send through: default out until 12:00:00 UTC",
        max_attempts=3,
        base_seconds=60,
        counted=False,
    )
    session.commit()
    row = _row(session, started, c.delivery_id)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.smtp_response.startswith("no relay to send through")


def test_record_failed_fails_the_row(session: Session, started: Started) -> None:
    c = _one_claimed(session, started)
    ledger.record_failed(session, delivery_id=c.delivery_id, response="550 5.1.1 no such user")
    session.commit()
    row = _row(session, started, c.delivery_id)
    assert (row.status, row.smtp_response, row.lease_until) == (
        "failed",
        "550 5.1.1 no such user",
        None,
    )


# ---------------------------------------------------------------- finishing


def test_finish_if_done_refuses_while_a_row_is_pending(session: Session, started: Started) -> None:
    retried = _retry_one_later(session, started)  # the others are sent; this one is pending
    finished = ledger.finish_if_done(session, issue_id=started.issue_id)
    session.commit()
    assert _row(session, started, retried.delivery_id).status == DeliveryStatus.pending
    assert finished is False
    assert _issue(session, started.issue_id).status == IssueStatus.sending


def test_finish_if_done_refuses_while_only_in_flight_rows_remain(
    session: Session, started: Started
) -> None:
    claimed = _claim(session, started.issue_id)
    for c in claimed[:-1]:
        ledger.record_sent(session, delivery_id=c.delivery_id, message_id="<m>", response="250")
    assert ledger.finish_if_done(session, issue_id=started.issue_id) is False


def test_finish_if_done_marks_the_issue_sent_when_every_row_is_final(
    session: Session, started: Started
) -> None:
    a, b, c = _claim(session, started.issue_id)
    ledger.record_sent(session, delivery_id=a.delivery_id, message_id="<m>", response="250")
    ledger.record_failed(session, delivery_id=b.delivery_id, response="550")
    ledger.record_skipped(session, delivery_id=c.delivery_id, reason="left")
    finished = ledger.finish_if_done(session, issue_id=started.issue_id)
    session.commit()
    issue = _issue(session, started.issue_id)
    assert finished is True
    assert issue.status == IssueStatus.sent and issue.sent_at is not None


# ---------------------------------------------------------------- run_batch


class FakeTransport(MemoryTransport):
    """The in-memory transport, its messages as (envelope sender, recipient, bytes) tuples."""

    @property
    def messages(self) -> list[tuple[str, str, bytes]]:
        return [(m.envelope_from, m.to, m.data) for m in self.sent]


@dataclass
class Batch:
    started: Started
    transport: FakeTransport
    result: BatchResult
    busy: Subscriber  # answered 451
    gone: Subscriber  # answered 550 5.1.1
    ok: list[Subscriber]


@pytest.fixture
def batch(session: Session, settings: Settings) -> Batch:
    st = _start(session, active=4)
    busy, gone, *ok = st.active
    transport = FakeTransport(
        {
            busy.email: TemporaryFailure("451 ...", code=451, response="451 4.3.0 busy"),
            gone.email: PermanentFailure(
                "550 5.1.1 no such user", code=550, response="550 5.1.1 no such user"
            ),
        }
    )
    result = run_batch(settings, issue_id=st.issue_id, transport=transport)
    return Batch(st, transport, result, busy, gone, ok)


def test_run_batch_sends_to_the_accepted_recipients(session: Session, batch: Batch) -> None:
    statuses = _statuses(session, batch.started.issue_id)
    assert [statuses[p.id] for p in batch.ok] == ["sent", "sent"]  # type: ignore[index]
    assert sorted(to for _, to, _ in batch.transport.messages) == sorted(p.email for p in batch.ok)


def test_run_batch_records_message_ids_of_sent_rows(session: Session, batch: Batch) -> None:
    sent = [r for r in _rows(session, batch.started.issue_id) if r.status == "sent"]
    assert len(sent) == 2
    for row in sent:
        assert row.message_id is not None
        assert row.message_id.startswith(f"<{batch.started.issue_id}.{row.subscriber_id}.")
        assert row.smtp_response == "250 2.0.0 OK queued"


def test_run_batch_uses_the_bounce_address_as_envelope_sender(
    settings: Settings, batch: Batch
) -> None:
    assert {sender_ for sender_, _, _ in batch.transport.messages} == {settings.bounce_address}


def test_run_batch_puts_a_temporary_failure_back_for_later(session: Session, batch: Batch) -> None:
    row = next(
        r for r in _rows(session, batch.started.issue_id) if r.subscriber_id == batch.busy.id
    )
    assert (row.status, row.attempts) == (DeliveryStatus.pending, 1)
    assert _aware(row.next_attempt_at) > utcnow()


def test_run_batch_fails_a_permanent_failure_and_marks_the_mailbox_bounced(
    session: Session, batch: Batch
) -> None:
    row = next(
        r for r in _rows(session, batch.started.issue_id) if r.subscriber_id == batch.gone.id
    )
    newsletter_id: int = batch.started.fx.newsletter.id  # type: ignore[assignment]
    assert (row.status, row.smtp_response) == ("failed", "550 5.1.1 no such user")
    assert _subscription_status(session, batch.gone, newsletter_id) == "bounced"
    # and on the suppression list, so an import cannot bring the address back silently
    assert suppression.reason_for(session, batch.gone.email) == "bounced"
    assert suppression.reason_for(session, batch.ok[0].email) is None


def test_run_batch_counts_each_outcome(batch: Batch) -> None:
    r = batch.result
    assert (r.claimed, r.sent, r.retried, r.failed, r.skipped) == (4, 2, 1, 1, 0)
    assert (r.finished, r.more, r.stopped) == (False, False, False)


def test_run_batch_leaves_the_issue_sending_while_a_retry_is_pending(
    session: Session, batch: Batch
) -> None:
    assert _issue(session, batch.started.issue_id).status == IssueStatus.sending


def test_permanent_failure_that_is_not_a_bad_mailbox_does_not_bounce(
    session: Session, settings: Settings
) -> None:
    st = _start(session, active=1)
    [person] = st.active
    transport = FakeTransport(
        {
            person.email: PermanentFailure(
                "554 5.6.0 bad formatting", code=554, response="554 5.6.0 bad formatting"
            )
        }
    )
    run_batch(settings, issue_id=st.issue_id, transport=transport)
    newsletter_id: int = st.fx.newsletter.id  # type: ignore[assignment]
    assert _statuses(session, st.issue_id) == {person.id: DeliveryStatus.failed}
    assert _subscription_status(session, person, newsletter_id) == "active"


def test_policy_rejection_550_5_7_1_does_not_bounce(session: Session, settings: Settings) -> None:
    st = _start(session, active=1)
    [person] = st.active
    reply = "550 5.7.1 Service unavailable; client host blocked using a blocklist"
    transport = FakeTransport({person.email: PermanentFailure(reply, code=550, response=reply)})
    run_batch(settings, issue_id=st.issue_id, transport=transport)
    newsletter_id: int = st.fx.newsletter.id  # type: ignore[assignment]
    assert _statuses(session, st.issue_id) == {person.id: DeliveryStatus.failed}
    assert _subscription_status(session, person, newsletter_id) == "active"


def test_subscriber_who_left_after_the_start_is_skipped_and_not_mailed(
    session: Session, settings: Settings
) -> None:
    st = _start(session, active=2)
    leaver, stayer = st.active
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == leaver.id,
            Subscription.newsletter_id == st.fx.newsletter.id,
        )
    ).one()
    sub.status = SubscriptionStatus.unsubscribed
    session.add(sub)
    session.commit()
    transport = FakeTransport()
    result = run_batch(settings, issue_id=st.issue_id, transport=transport)
    assert _statuses(session, st.issue_id) == {
        leaver.id: DeliveryStatus.skipped,
        stayer.id: DeliveryStatus.sent,
    }
    assert transport.tried == [stayer.email]
    assert result.skipped == 1


def test_run_batch_that_sends_everything_finishes_the_issue(
    session: Session, settings: Settings
) -> None:
    st = _start(session, active=3)
    result = run_batch(settings, issue_id=st.issue_id, transport=FakeTransport())
    assert (result.sent, result.finished) == (3, True)
    assert _issue(session, st.issue_id).status == IssueStatus.sent


# ---------------------------------------------------------------- leases that run out mid-batch


def test_a_claim_that_lost_its_lease_can_no_longer_record_or_release(
    session: Session, started: Started
) -> None:
    first = _claim(session, started.issue_id, limit=2)
    later = utcnow() + timedelta(seconds=301)
    assert ledger.requeue_expired(session, now=later) == 2
    second = _claim(session, started.issue_id, limit=1, now=later)
    session.commit()
    assert second[0].delivery_id == first[0].delivery_id and second[0].lease != first[0].lease

    # the first batch, still running, reports on a row the second one now holds: refused
    assert not ledger.record_sent(
        session,
        delivery_id=first[0].delivery_id,
        message_id="<a>",
        response="250",
        lease=first[0].lease,
    )
    assert not ledger.release(session, delivery_ids=[first[0].delivery_id], lease=first[0].lease)
    assert ledger.record_sent(
        session,
        delivery_id=second[0].delivery_id,
        message_id="<b>",
        response="250",
        lease=second[0].lease,
    )
    # and a row that went back to pending and was not re-claimed is not the first batch's either
    assert (
        ledger.renew(
            session,
            delivery_ids=[r.delivery_id for r in first],
            lease=first[0].lease,
            lease_seconds=300,
        )
        == set()
    )
    session.commit()
    rows = {r.id: r for r in _rows(session, started.issue_id)}
    assert rows[first[0].delivery_id].message_id == "<b>"
    assert rows[first[1].delivery_id].status == DeliveryStatus.pending


def test_renew_extends_the_lease_of_rows_still_held(session: Session, started: Started) -> None:
    claimed = _claim(session, started.issue_id, limit=3)
    before = {r.id: _aware(r.lease_until) for r in _rows(session, started.issue_id)}
    held = ledger.renew(
        session,
        delivery_ids=[r.delivery_id for r in claimed],
        lease=claimed[0].lease,
        lease_seconds=900,
    )
    session.commit()
    assert held == {r.delivery_id for r in claimed}
    for row in _rows(session, started.issue_id):
        assert _aware(row.lease_until) > before[row.id] + timedelta(seconds=500)


def test_a_slow_batch_does_not_send_rows_another_batch_took_over(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch slower than its lease (rate limit, slow server) must not double-send."""
    monkeypatch.setenv("NEWSLETTER_LEASE_SECONDS", "6")
    monkeypatch.setenv("NEWSLETTER_SMTP_TIMEOUT", "1")
    settings = Settings()
    st = _start(session, active=5)
    taken: list[ledger.Claimed] = []

    class SlowFirst(FakeTransport):
        def send(self, envelope_from: str, to: str, data: bytes) -> str:
            reply = super().send(envelope_from, to, data)
            if len(self.sent) == 1:
                import time

                time.sleep(2.1)  # the server stalls past a third of the lease
            return reply

    transport = SlowFirst()
    finish = hands.Hands._finish

    def take_over(self: hands.Hands, hand: hands.Hand) -> None:
        finish(self, hand)
        if len(transport.sent) == 1 and not taken:
            # meanwhile the lease ran out and another worker's batch takes the rows over (as
            # soon as the first message's hand lets go: on SQLite it holds the write lock)
            with Session(session.get_bind()) as other:
                ledger.requeue_expired(other, now=utcnow() + timedelta(seconds=10))
                taken.extend(ledger.claim(other, issue_id=st.issue_id, limit=10, lease_seconds=300))
                other.commit()

    monkeypatch.setattr(hands.Hands, "_finish", take_over)
    result = run_batch(settings, issue_id=st.issue_id, transport=transport)
    assert len(transport.sent) == 1  # the other four were not sent from here
    assert result.lost == 4 and result.sent == 1
    assert {c.delivery_id for c in taken} >= {
        r.id for r in _rows(session, st.issue_id) if r.status == DeliveryStatus.sending
    }
