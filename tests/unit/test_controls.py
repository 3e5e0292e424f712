"""Operator controls (pause, resume, cancel, resend to failed, schedule), status and the breaker.

Sends go through a real aiosmtpd sink over real SMTP; the database is SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.db import get_engine
from newsletter.exceptions import InvalidInput, InvalidState, QABlocked
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    RenderedIssue,
    utcnow,
)
from newsletter.sending import batch, breaker, controls, hands, ledger, prepare, scheduler
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import FaultPlan, SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_subscribers, reloaded

# an EC (P-256) private key: a valid key that the DKIM signer cannot use (RSA or ed25519 only)
EC_PEM = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyygFmJ2hy+zcJPOx\n"
    b"R823jn4f/MDwrNkeh5Q23x/NYW6hRANCAARC4XflrqHXn3hBIn3F6nkVLat8URCv\n"
    b"c7fPUSp6JVbrIgKyXXDll8hTDNsjekXQyMTngP1FgeRsKs+VbUs+q93h\n"
    b"-----END PRIVATE KEY-----\n"
)


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # ids repeat across test databases: the per-process template cache and breaker start empty
    monkeypatch.setattr(prepare, "_templates", {})
    monkeypatch.setattr(breaker, "_breakers", {})


def _started(session: Session, count: int) -> int:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, count)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    return issue_id


def _counts(session: Session, issue_id: int) -> Counter[str]:
    session.expire_all()
    rows = session.exec(select(Delivery.status).where(Delivery.issue_id == issue_id)).all()
    return Counter(rows)


def _drain(settings: Settings, issue_id: int, port: int, *, limit: int = 50) -> list[int]:
    """Run batches until none has work left; the sent count of each."""
    transport = SMTPTransport(SMTPConfig("127.0.0.1", port, timeout=10))
    sent = []
    try:
        for _ in range(limit):
            result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
            sent.append(result.sent)
            if not result.more:
                break
    finally:
        transport.close()
    return sent


def _recipients(sink: SMTPSink) -> Counter[str]:
    return Counter(to for m in sink.messages for to in m.rcpt_tos)


# ---------------------------------------------------------------- pause and resume


def test_pause_stops_new_sends_within_one_batch_and_resume_finishes(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "100")
    settings = Settings()
    issue_id = _started(session, 80)
    engine = get_engine(settings.database_url)

    def pause_after_the_third() -> None:
        if len(sink.messages) >= 3 and not acted:
            acted.append(True)
            with Session(engine) as other:  # the operator, in another connection
                controls.pause(other, issue_id=issue_id, reason="checking a typo")
                other.commit()

    acted: list[bool] = []
    _when_a_hand_lets_go(monkeypatch, pause_after_the_third)
    with SMTPSink() as sink:
        first = batch.run_batch(
            settings,
            issue_id=issue_id,
            transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port)),
        )
        assert first.stopped and not first.more
        # the batch looks at the status every STATUS_CHECK_EVERY messages
        assert 3 <= first.sent <= batch.STATUS_CHECK_EVERY
        issue = reloaded(session, Issue, issue_id)
        assert (issue.status, issue.status_reason) == (IssueStatus.paused, "checking a typo")
        counts = _counts(session, issue_id)
        assert counts == {"sent": first.sent, "pending": 80 - first.sent}  # released, not leased
        assert _drain(settings, issue_id, sink.port) == [0]  # paused: nothing more goes out

        controls.resume(session, issue_id=issue_id)
        session.commit()
        _drain(settings, issue_id, sink.port)
    assert reloaded(session, Issue, issue_id).status == IssueStatus.sent
    received = _recipients(sink)
    assert len(received) == 80 and set(received.values()) == {1}  # everyone, exactly once


def test_pause_and_resume_refuse_the_wrong_states(session: Session) -> None:
    fx = make_issue(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    with pytest.raises(InvalidState, match=r"cannot pause issue .*: it is draft"):
        controls.pause(session, issue_id=issue_id)
    with pytest.raises(InvalidState, match=r"cannot resume issue .*: it is draft"):
        controls.resume(session, issue_id=issue_id)
    assert reloaded(session, Issue, issue_id).status == IssueStatus.draft


# ---------------------------------------------------------------- cancel


def test_cancel_mid_send_marks_the_rest_cancelled_and_sends_no_more(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "10")
    settings = Settings()
    issue_id = _started(session, 30)
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        assert batch.run_batch(settings, issue_id=issue_id, transport=transport).sent == 10
        assert controls.cancel(session, issue_id=issue_id) == 20
        session.commit()
        assert _drain(settings, issue_id, sink.port) == [0]
    assert _counts(session, issue_id) == {"sent": 10, "cancelled": 20}
    issue = reloaded(session, Issue, issue_id)
    assert issue.status == IssueStatus.cancelled
    assert len(sink.messages) == 10
    state = controls.status(session, issue_id=issue_id)
    assert state.progress.finished and state.progress.done == 30
    with pytest.raises(InvalidState):
        controls.resume(session, issue_id=issue_id)


def _when_a_hand_lets_go(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Run ``act`` (another connection's change) each time a batch's hand lets go of its lock:
    inline during the SMTP exchange it would wait, on SQLite, for the very batch it runs in."""
    finish = hands.Hands._finish

    def finished(self: hands.Hands, hand: hands.Hand) -> None:
        finish(self, hand)
        act()

    monkeypatch.setattr(hands.Hands, "_finish", finished)


def test_a_batch_that_sees_the_cancel_releases_its_rows_as_cancelled(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_id = _started(session, 40)
    engine = get_engine(settings.database_url)

    def cancel_after_the_second() -> None:
        if len(sink.messages) >= 2 and not acted:
            acted.append(True)
            with Session(engine) as other:
                controls.cancel(other, issue_id=issue_id)
                other.commit()

    acted: list[bool] = []
    _when_a_hand_lets_go(monkeypatch, cancel_after_the_second)
    with SMTPSink() as sink:
        result = batch.run_batch(
            settings, issue_id=issue_id, transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        )
    assert result.stopped
    counts = _counts(session, issue_id)
    assert counts["sent"] == result.sent == len(sink.messages)
    assert counts["cancelled"] == 40 - result.sent and "pending" not in counts


# ---------------------------------------------------------------- resend to failed


def test_resend_failed_sends_again_only_to_failed_rows(
    session: Session, settings: Settings
) -> None:
    issue_id = _started(session, 6)
    with SMTPSink() as sink:
        _drain(settings, issue_id, sink.port)
        assert reloaded(session, Issue, issue_id).status == IssueStatus.sent
        rows = session.exec(
            select(Delivery).where(Delivery.issue_id == issue_id).order_by(col(Delivery.id))
        ).all()
        failed = [r.id for r in rows[:2]]
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(failed))
            .values(status=DeliveryStatus.failed, smtp_response="554 5.7.1 policy", attempts=2)
        )
        session.commit()
        before = len(sink.messages)

        assert controls.resend_failed(session, issue_id=issue_id) == 2
        session.commit()
        assert reloaded(session, Issue, issue_id).status == IssueStatus.sending
        _drain(settings, issue_id, sink.port)
        again = sink.messages[before:]
    assert len(again) == 2
    assert reloaded(session, Issue, issue_id).status == IssueStatus.sent
    assert _counts(session, issue_id) == {"sent": 6}


def test_resend_failed_with_nothing_failed_changes_nothing(
    session: Session, settings: Settings
) -> None:
    issue_id = _started(session, 2)
    with SMTPSink() as sink:
        _drain(settings, issue_id, sink.port)
    # the batches sent it in their own sessions: forget the draft Issue that make_issue left in
    # this one (expire_on_commit=False), which is still there until the garbage collector runs
    session.expire_all()
    assert controls.resend_failed(session, issue_id=issue_id) == 0
    assert reloaded(session, Issue, issue_id).status == IssueStatus.sent


def test_resend_failed_refuses_a_draft(session: Session) -> None:
    fx = make_issue(session)
    with pytest.raises(InvalidState, match="cannot resend"):
        controls.resend_failed(session, issue_id=fx.issue.id)  # type: ignore[arg-type]


# ---------------------------------------------------------------- scheduling


def test_schedule_then_tick_starts_the_issue_when_due(session: Session, settings: Settings) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    issue_id = fx.issue.id
    assert issue_id is not None
    later = utcnow() + timedelta(hours=1)
    controls.schedule(session, issue_id=issue_id, at=later, checks=QAConfig())
    session.commit()
    assert scheduler.tick(settings, parallelism=2).started == []
    assert reloaded(session, Issue, issue_id).status == IssueStatus.scheduled

    session.execute(update(Issue).where(col(Issue.id) == issue_id).values(scheduled_at=utcnow()))
    session.commit()
    tick = scheduler.tick(settings, parallelism=2)
    assert tick.started == [issue_id]
    assert tick.batches == {issue_id: 1}  # and its batches are asked for in the same tick
    assert reloaded(session, Issue, issue_id).status == IssueStatus.sending
    assert _counts(session, issue_id) == {"pending": 3}
    assert scheduler.tick(settings, parallelism=2).started == []  # started once


def test_a_scheduled_issue_that_fails_qa_at_its_time_goes_back_to_draft(
    session: Session, settings: Settings
) -> None:
    fx = make_issue(session, layout=(1,))
    issue_id = fx.issue.id
    assert issue_id is not None
    controls.schedule(session, issue_id=issue_id, at=utcnow(), checks=QAConfig())
    session.commit()
    session.delete(fx.items[0])  # an editor empties the section after scheduling
    session.commit()
    assert scheduler.tick(settings, parallelism=1).started == []
    issue = reloaded(session, Issue, issue_id)
    assert issue.status == IssueStatus.draft
    assert issue.status_reason and "blocked by QA" in issue.status_reason


def test_schedule_refuses_a_naive_time_and_an_issue_qa_blocks(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    issue_id = fx.issue.id
    assert issue_id is not None
    with pytest.raises(InvalidInput, match="time zone"):
        controls.schedule(
            session, issue_id=issue_id, at=utcnow().replace(tzinfo=None), checks=QAConfig()
        )
    session.delete(fx.items[0])
    session.commit()
    with pytest.raises(QABlocked):
        controls.schedule(session, issue_id=issue_id, at=utcnow(), checks=QAConfig())
    assert reloaded(session, Issue, issue_id).status == IssueStatus.draft


def test_unschedule_goes_back_to_draft(session: Session) -> None:
    fx = make_issue(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    controls.schedule(
        session, issue_id=issue_id, at=utcnow() + timedelta(days=1), checks=QAConfig()
    )
    issue = controls.unschedule(session, issue_id=issue_id)
    assert (issue.status, issue.scheduled_at) == (IssueStatus.draft, None)


# ---------------------------------------------------------------- status


def test_status_shows_rate_eta_and_last_errors(session: Session, settings: Settings) -> None:
    issue_id = _started(session, 20)
    with SMTPSink(faults=FaultPlan(temp_fail_ratio=0.3, seed=7)) as sink:
        result = batch.run_batch(
            settings,
            issue_id=issue_id,
            transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port)),
        )
    assert result.retried > 0
    state = controls.status(session, issue_id=issue_id)
    assert state.progress.counts["sent"] == result.sent
    assert state.rate == pytest.approx(result.sent / controls.RATE_WINDOW.total_seconds())
    assert state.eta_seconds is not None and state.eta_seconds > 0  # retries remain
    assert len(state.last_errors) == min(5, result.retried)
    assert all("451" in e.response for e in state.last_errors)
    data = state.as_dict()
    assert data["counts"]["pending"] == result.retried  # type: ignore[index]
    assert data["status"] == "sending"


# ---------------------------------------------------------------- circuit breaker


def test_circuit_breaker_pauses_the_issue_and_says_why(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_BREAKER_WINDOW", "20")
    monkeypatch.setenv("NEWSLETTER_BREAKER_MIN_RESULTS", "10")
    monkeypatch.setenv("NEWSLETTER_BREAKER_THRESHOLD", "0.5")
    settings = Settings()
    issue_id = _started(session, 60)
    with SMTPSink(faults=FaultPlan(temp_fail_ratio=1.0)) as sink:
        result = batch.run_batch(
            settings,
            issue_id=issue_id,
            transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port)),
        )
    assert result.stopped and result.retried == 10  # tripped at the tenth failure
    issue = reloaded(session, Issue, issue_id)
    assert issue.status == IssueStatus.paused
    assert issue.status_reason is not None
    assert issue.status_reason.startswith("circuit breaker: 10 of the last 10 sends failed")
    assert "451" in issue.status_reason
    counts = _counts(session, issue_id)
    assert counts == {"pending": 60}  # ten to retry later, fifty released unsent
    assert not sink.messages


def test_the_breaker_ignores_bad_mailboxes_and_a_resumed_issue_starts_afresh(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_BREAKER_MIN_RESULTS", "5")
    monkeypatch.setenv("NEWSLETTER_BREAKER_THRESHOLD", "0.5")
    settings = Settings()
    tripper = breaker.breaker_for(settings)
    generation = utcnow()
    for _ in range(4):
        assert not tripper.record(1, generation, failed=True, reply="451").tripped
    assert tripper.record(1, generation, failed=True, reply="451").tripped
    for _ in range(4):  # after a resume the issue has a new generation: a fresh window
        assert not tripper.record(1, utcnow(), failed=True).tripped

    # 5.1.1 replies are the subscribers' problem: a list full of dead addresses sends on
    issue_id = _started(session, 12)

    class Rejecting(SMTPTransport):
        def send(self, envelope_from: str, to: str, data: bytes) -> str:
            from newsletter.exceptions import PermanentFailure

            raise PermanentFailure("550", code=550, response="550 5.1.1 no such user")

    result = batch.run_batch(
        settings, issue_id=issue_id, transport=Rejecting(SMTPConfig("127.0.0.1", 1))
    )
    assert result.failed == 12 and not result.stopped
    assert reloaded(session, Issue, issue_id).status == IssueStatus.sent


def test_cancel_settles_rows_in_sending_at_once(session: Session, settings: Settings) -> None:
    issue_id = _started(session, 5)
    claimed = ledger.claim(session, issue_id=issue_id, limit=3, lease_seconds=300)
    session.commit()  # a batch holds 3 rows (it may have died holding them)
    controls.cancel(session, issue_id=issue_id)
    session.commit()
    assert _counts(session, issue_id) == {"cancelled": 5}
    # a message the live batch hands over after the cancel is still recorded as what it is
    first = claimed[0]
    assert ledger.record_sent(
        session,
        delivery_id=first.delivery_id,
        message_id="<m@x>",
        response="250",
        lease=first.lease,
    )
    session.commit()
    assert _counts(session, issue_id) == {"cancelled": 4, "sent": 1}


def test_a_retry_on_a_row_cancelled_in_flight_leaves_it_cancelled(
    session: Session, settings: Settings
) -> None:
    issue_id = _started(session, 1)
    [row] = ledger.claim(session, issue_id=issue_id, limit=1, lease_seconds=300)
    controls.cancel(session, issue_id=issue_id)
    assert ledger.record_retry(
        session,
        delivery_id=row.delivery_id,
        attempts=row.attempts,
        response="451 later",
        max_attempts=5,
        base_seconds=30,
        lease=row.lease,
    )
    session.commit()
    assert _counts(session, issue_id) == {"cancelled": 1}


# ---------------------------------------------------------------- a message that cannot be built


def test_a_batch_that_cannot_build_the_message_pauses_the_issue_with_the_reason(
    session: Session, settings: Settings
) -> None:
    issue_id = _started(session, 4)
    # a subject stored before line breaks were refused on save (the frozen copy is what is sent)
    session.execute(
        update(RenderedIssue)
        .where(col(RenderedIssue.issue_id) == issue_id)
        .values(subject="Hello\r\nBcc: everyone@example.org")
    )
    session.commit()
    with SMTPSink() as sink:
        result = batch.run_batch(
            settings, issue_id=issue_id, transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        )
    assert result.stopped and result.sent == 0 and not sink.messages
    issue = reloaded(session, Issue, issue_id)
    assert issue.status == IssueStatus.paused
    assert issue.status_reason is not None
    assert "cannot build the message" in issue.status_reason
    assert "line break" in issue.status_reason
    assert _counts(session, issue_id) == {"pending": 4}  # nothing left in "sending"
    assert controls.status(session, issue_id=issue_id).as_dict()["reason"] == issue.status_reason


def test_a_dkim_key_that_cannot_sign_pauses_the_send_instead_of_crashing_batches(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    issue_id = _started(session, 2)
    key = tmp_path / "ec.pem"
    key.write_bytes(EC_PEM)
    monkeypatch.setenv("NEWSLETTER_DKIM_SELECTOR", "s1")
    monkeypatch.setenv("NEWSLETTER_DKIM_DOMAIN", "news.example.org")
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(key))
    signing = Settings()
    with SMTPSink() as sink:
        result = batch.run_batch(
            signing, issue_id=issue_id, transport=SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        )
    assert result.stopped and not sink.messages
    issue = reloaded(session, Issue, issue_id)
    assert issue.status == IssueStatus.paused
    assert "DKIM" in (issue.status_reason or "")
    assert _counts(session, issue_id) == {"pending": 2}


def test_a_non_ascii_address_fails_its_row_clearly_without_tripping_the_breaker(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_BREAKER_MIN_RESULTS", "1")
    monkeypatch.setenv("NEWSLETTER_BREAKER_THRESHOLD", "0.1")
    strict = Settings()
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 3)
    people[0].email = "pelé@example.org"
    session.add(people[0])
    session.commit()
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    with SMTPSink(smtputf8=False) as plain:
        _drain(strict, fx.issue.id, plain.port)  # type: ignore[arg-type]
    assert _counts(session, fx.issue.id) == {"sent": 2, "failed": 1}  # type: ignore[arg-type]
    failed = session.exec(select(Delivery).where(Delivery.status == "failed")).one()
    assert "SMTPUTF8" in (failed.smtp_response or "")
    assert reloaded(session, Issue, fx.issue.id).status == IssueStatus.sent  # type: ignore[arg-type]
