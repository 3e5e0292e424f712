"""Send at 08:00 in each reader's zone: the fill's due times, claims wave by wave, the waves in
the status, pause and resume between waves (SQLite and PostgreSQL, a real SMTP sink)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import Delivery, Issue, IssueStatus, Newsletter, Subscriber
from newsletter.sending import batch, breaker, controls, ledger, local_time, prepare, scheduler
from newsletter.sending.start import fill_ledger
from newsletter.tables import SUB, D
from newsletter.transports.sink import FaultPlan, SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_newsletter, make_subscribers

#: the send starts on Saturday 28 March 2026, 20:00 UTC: 23:00 in Minsk, 16:00 in New York,
#: 21:00 in Warsaw, whose clocks go forward that night
START = datetime(2026, 3, 28, 20, tzinfo=UTC)
MINSK = datetime(2026, 3, 29, 5, tzinfo=UTC)  # Sunday 08:00 +03
WARSAW = datetime(2026, 3, 29, 6, tzinfo=UTC)  # Sunday 08:00 CEST (+02, the new offset)
NEW_YORK = datetime(2026, 3, 29, 12, tzinfo=UTC)  # Sunday 08:00 EDT (-04)


class Clock:
    """The due times' clock, stepped by the test (leases and retries keep the real one)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    stepped = Clock(START)
    monkeypatch.setattr(local_time, "clock", stepped)
    monkeypatch.setattr(prepare, "_templates", {})  # ids repeat across test databases
    monkeypatch.setattr(breaker, "_breakers", {})
    yield stepped


def _readers(session: Session, newsletter: Newsletter) -> dict[str, list[Subscriber]]:
    """Two readers in each of three zones, two with no zone (the newsletter's: Minsk)."""
    by_zone: dict[str, list[Subscriber]] = {}
    for zone in ("Europe/Minsk", "Europe/Warsaw", "America/New_York", ""):
        people = make_subscribers(session, newsletter, 2)
        for person in people:
            person.time_zone = zone or None
            session.add(person)
        by_zone[zone] = people
    session.commit()
    return by_zone


def _local_send(session: Session, *, at: str = "08:00") -> tuple[int, dict[str, list[Subscriber]]]:
    newsletter = make_newsletter(session, time_zone="Europe/Minsk")
    fx = make_issue(session, newsletter=newsletter)
    readers = _readers(session, newsletter)
    local_time.set_local_time(session, fx.issue, at)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    # the fill moved the issue to sending with a Core UPDATE: the Issue this session loaded
    # (kept after the commit: expire_on_commit=False) would read "draft" until reloaded, and
    # whether it was still in the identity map depended on when the cyclic GC last ran
    session.expire_all()
    return issue_id, readers


def _due_by_email(session: Session, issue_id: int) -> dict[str, datetime]:
    rows = session.exec(
        select(Subscriber.email, Delivery.due_at)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)  # type: ignore[arg-type]
        .where(Delivery.issue_id == issue_id)
    ).all()
    return {email: _aware(due) for email, due in rows}


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_the_fill_gives_each_reader_eight_in_their_zone_and_the_newsletters_when_unknown(
    session: Session, clock: Clock
) -> None:
    issue_id, readers = _local_send(session)
    due = _due_by_email(session, issue_id)
    expected = {"Europe/Minsk": MINSK, "Europe/Warsaw": WARSAW, "America/New_York": NEW_YORK}
    expected[""] = MINSK  # no zone of their own: the newsletter's
    for zone, people in readers.items():
        assert {due[p.email] for p in people} == {expected[zone]}, zone


def test_a_zone_stored_before_zones_were_checked_gets_the_newsletters_time(
    session: Session, clock: Clock
) -> None:
    newsletter = make_newsletter(session, time_zone="America/New_York")
    fx = make_issue(session, newsletter=newsletter)
    (person,) = make_subscribers(session, newsletter, 1)
    session.execute(update(SUB).where(SUB.c.id == person.id).values(time_zone="Mars/Olympus"))
    local_time.set_local_time(session, fx.issue, "08:00")
    assert fx.issue.id is not None
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())
    session.commit()
    assert _due_by_email(session, fx.issue.id) == {person.email: NEW_YORK}


def test_a_send_at_once_has_no_due_times(session: Session, clock: Clock) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    assert fx.issue.id is not None
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())
    session.commit()
    rows = session.exec(select(Delivery.due_at).where(Delivery.issue_id == fx.issue.id)).all()
    assert rows == [None, None, None]


def test_claims_take_only_the_rows_whose_local_time_came(session: Session, clock: Clock) -> None:
    issue_id, readers = _local_send(session)
    emails = {
        "minsk": {p.email for p in readers["Europe/Minsk"] + readers[""]},
        "warsaw": {p.email for p in readers["Europe/Warsaw"]},
    }
    for moment in (START, MINSK - timedelta(seconds=1)):
        early = ledger.claim(session, issue_id=issue_id, limit=50, lease_seconds=60, now=moment)
        assert early == []
        assert not ledger.has_ready(session, issue_id=issue_id, now=moment)
    first = ledger.claim(session, issue_id=issue_id, limit=50, lease_seconds=60, now=MINSK)
    assert {c.email for c in first} == emails["minsk"]
    assert ledger.ready_count(session, issue_id=issue_id, now=WARSAW) == 2
    second = ledger.claim(session, issue_id=issue_id, limit=50, lease_seconds=60, now=WARSAW)
    assert {c.email for c in second} == emails["warsaw"]
    session.rollback()


def test_the_status_shows_the_waves_and_the_eta_waits_for_the_last(
    session: Session, clock: Clock
) -> None:
    issue_id, _ = _local_send(session)
    state = controls.status(session, issue_id=issue_id)
    assert state.local_time == "08:00"
    assert [(w.due_at, w.total, w.sent, w.waiting) for w in state.waves] == [
        (MINSK, 4, 0, 4),
        (WARSAW, 2, 0, 2),
        (NEW_YORK, 2, 0, 2),
    ]
    assert state.eta_seconds == (NEW_YORK - START).total_seconds()
    waves = state.as_dict()["waves"]
    assert isinstance(waves, list) and waves[0]["due_at"] == MINSK.isoformat()


def test_the_local_time_is_fixed_once_the_send_started_and_must_be_a_time(
    session: Session, clock: Clock
) -> None:
    issue_id, _ = _local_send(session)
    issue = session.get(Issue, issue_id)
    assert issue is not None
    with pytest.raises(InvalidState, match="send time is fixed"):
        local_time.set_local_time(session, issue, "09:00")
    draft = make_issue(session).issue
    with pytest.raises(InvalidInput, match="not a time of day"):
        local_time.set_local_time(session, draft, "8 am")


def _run(settings: Settings, issue_id: int, port: int) -> int:
    """Batches until none has work left (as the chains would); the messages sent."""
    transport = SMTPTransport(SMTPConfig("127.0.0.1", port, timeout=10))
    sent = 0
    try:
        for _ in range(20):
            result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
            sent += result.sent
            if not result.more:
                break
    finally:
        transport.close()
    return sent


def test_pause_between_waves_holds_the_next_wave_and_resume_sends_it(
    session: Session, settings: Settings, clock: Clock
) -> None:
    issue_id, readers = _local_send(session)
    with SMTPSink() as sink:
        clock.now = MINSK
        assert _run(settings, issue_id, sink.port) == 4
        controls.pause(session, issue_id=issue_id, reason="a correction before Warsaw wakes up")
        session.commit()
        clock.now = WARSAW
        assert _run(settings, issue_id, sink.port) == 0  # paused: the due wave waits
        assert scheduler.tick(settings, parallelism=2).batches == {}
        controls.resume(session, issue_id=issue_id)
        session.commit()
        assert scheduler.tick(settings, parallelism=2).batches == {issue_id: 1}
        assert _run(settings, issue_id, sink.port) == 2
        assert scheduler.tick(settings, parallelism=2).batches == {}  # New York: not yet
        clock.now = NEW_YORK
        assert scheduler.tick(settings, parallelism=2).batches == {issue_id: 1}
        assert _run(settings, issue_id, sink.port) == 2
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None and issue.status == IssueStatus.sent
    received = Counter(to for m in sink.messages for to in m.rcpt_tos)
    everyone = {p.email for people in readers.values() for p in people}
    assert set(received) == everyone and set(received.values()) == {1}


def test_a_retry_in_a_wave_goes_again_after_its_backoff_and_the_next_wave_still_waits(
    session: Session, settings: Settings, clock: Clock
) -> None:
    issue_id, readers = _local_send(session)
    minsk = {p.email for p in readers["Europe/Minsk"] + readers[""]}
    clock.now = MINSK
    with SMTPSink(faults=FaultPlan(temp_fail_ratio=1.0)) as refusing:
        assert _run(settings, issue_id, refusing.port) == 0  # every reply a 451
    retried = session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
    assert sorted((d.status, d.attempts) for d in retried if d.attempts) == [("pending", 1)] * 4
    session.execute(  # the backoff has run out
        update(D).where(D.c.issue_id == issue_id).values(next_attempt_at=START)
    )
    session.commit()
    with SMTPSink() as sink:
        assert _run(settings, issue_id, sink.port) == 4
    assert sorted(to for m in sink.messages for to in m.rcpt_tos) == sorted(minsk)
    assert controls.status(session, issue_id=issue_id).waves[1].waiting == 2  # Warsaw's
