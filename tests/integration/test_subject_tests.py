"""Subject tests through the ledger (issue 15, item 4), on SQLite and PostgreSQL: the samples
drawn at the fill, one subject per recipient, the winner by unique human clicks, the rest after
the pick, nobody twice; pause and cancel during a test; the early pick by an editor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.analytics import recording, tokens
from newsletter.analytics.issue_report import issue_report
from newsletter.api.app import create_app
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import Delivery, EngagementEvent, Newsletter, utcnow
from newsletter.sending import batch, controls, ledger, subject_pick, subject_tests
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.tables import D
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import IssueFixture, make_issue, make_newsletter, make_subscribers
from tests.integration.test_tracking import PERSON

A, B = "Minsk talks: what the KGB chief said", "Belarus Weekly: 52 prisoners freed"


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def tracked(session: Session, **flags: bool) -> Newsletter:
    return make_newsletter(session, track_clicks=True, track_opens=True, **flags)


def issue_with_test(session: Session, readers: int = 50, **spec: object) -> IssueFixture:
    fx = make_issue(session, newsletter=tracked(session))
    fx.readers = make_subscribers(session, fx.newsletter, readers)  # type: ignore[attr-defined]
    values: dict[str, object] = {"sample": 20, "wait": "4h", "metric": "clicks", **spec}
    subjects = values.pop("subjects", [A, B])
    test = subject_tests.spec(subjects, **values)  # type: ignore[arg-type]
    subject_tests.configure(session, fx.issue, test)
    session.commit()
    return fx


def rows(session: Session, issue_id: int) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all())


def run_batches(settings: Settings, issue_id: int, sink: SMTPSink) -> None:
    transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=10))
    try:
        for _ in range(20):
            result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
            if result.finished or not result.more:
                break
    finally:
        transport.close()


def subjects_by_recipient(sink: SMTPSink) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for m in sink.messages:
        parsed = message_from_bytes(m.data, policy=default_policy)
        got.setdefault(m.rcpt_tos[0], []).append(str(parsed["Subject"]))
    return got


def click(
    session: Session, issue_id: int, subscriber_id: int, variant: int, verdict: str = "human"
) -> None:
    """An event as recording writes it: with the variant the reader's ledger row has."""
    session.add(
        EngagementEvent(
            issue_id=issue_id,
            subscriber_id=subscriber_id,
            kind="click",
            verdict=verdict,
            variant=variant,
        )
    )


def test_the_fill_draws_each_sample_and_holds_the_rest(session: Session) -> None:
    fx = issue_with_test(session, readers=50)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()

    ledger_rows = rows(session, issue_id)
    assert Counter(r.variant for r in ledger_rows) == {1: 10, 2: 10, None: 30}
    held = [r for r in ledger_rows if r.variant is None]
    assert all(r.next_attempt_at is not None and r.next_attempt_at.year == 9000 for r in held)
    assert ledger.ready_count(session, issue_id=issue_id) == 20
    test = subject_tests.get(session, issue_id)
    assert test is not None and test.decide_at is not None
    assert "testing subjects, winner at" in subject_tests.headline(test)


def test_the_sample_gets_one_subject_each_and_human_clicks_make_b_win(
    session: Session, settings: Settings, sink: SMTPSink
) -> None:
    fx = issue_with_test(session, readers=50)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    session.commit()
    run_batches(settings, issue_id, sink)

    first = subjects_by_recipient(sink)
    assert len(first) == 20 and all(len(s) == 1 for s in first.values())
    by_variant = {r.subscriber_id: r.variant for r in rows(session, issue_id)}
    emails = {p.id: p.email for p in fx.readers}  # type: ignore[attr-defined]
    for sid, variant in by_variant.items():
        if variant is not None:
            assert first[emails[sid]] == [A if variant == 1 else B]
    a_sample = [s for s, v in by_variant.items() if v == 1]
    b_sample = [s for s, v in by_variant.items() if v == 2]
    # A: many machine clicks (a scanner) and one human; B: three humans, one clicking twice
    for sid in a_sample:
        click(session, issue_id, sid, 1, verdict="machine")
    click(session, issue_id, a_sample[0], 1)
    for sid in [*b_sample[:3], b_sample[0]]:
        click(session, issue_id, sid, 2)
    session.commit()

    assert subject_pick.decide_due(session) == []  # the wait is not over
    later = utcnow() + timedelta(hours=4, minutes=1)
    assert subject_pick.decide_due(session, now=later) == [issue_id]
    test = subject_tests.get(session, issue_id)
    assert test is not None and test.winner == 2 and test.decided_by == "the tick"
    assert test.reason is not None and test.reason.startswith("B won")
    assert "B 3 of 10 delivered (30.0%)" in test.reason and "A 1 of 10" in test.reason
    kept = {f["variant"]: (f["clickers"], f["openers"]) for f in test.figures}
    assert kept == {1: (1, 0), 2: (3, 0)}  # the sending view shows both counts per subject

    run_batches(settings, issue_id, sink)
    every = subjects_by_recipient(sink)
    assert len(every) == 50 and all(len(s) == 1 for s in every.values())  # nobody twice
    rest = set(every) - set(first)
    assert len(rest) == 30 and all(every[e] == [B] for e in rest)
    assert Counter(r.status for r in rows(session, issue_id)) == {"sent": 50}
    assert controls.status(session, issue_id=issue_id).progress.status == "sent"


def test_a_tie_goes_to_more_humans_then_to_the_first_subject() -> None:
    even = [
        {"variant": 1, "recipients": 10, "sent": 10, "uniques": 2},
        {"variant": 2, "recipients": 20, "sent": 20, "uniques": 4},
    ]
    assert subject_pick.choose(even, 2) == 2  # same rate, more humans
    assert subject_pick.choose([{**even[0], "variant": 2}, {**even[0]}], 2) == 1
    assert subject_pick.choose([], 3) == 1  # nobody clicked: the first subject
    reason = subject_pick.reason_text(1, [even[0], {**even[0], "variant": 2}], metric="clicks")
    assert "a tie on the rate" in reason


def test_an_editor_picks_early_and_a_second_pick_is_refused(session: Session) -> None:
    fx = issue_with_test(session, readers=20, subjects=[A, B, "Third subject"], sample=10)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    test = subject_pick.decide(session, issue_id=issue_id, variant=3, by="desk@example.org")
    session.commit()
    assert test is not None and test.winner == 3
    assert test.reason is not None and "picked by desk@example.org" in test.reason
    assert Counter(r.variant for r in rows(session, issue_id)) == {1: 2, 2: 2, 3: 16}
    assert ledger.ready_count(session, issue_id=issue_id) == 20
    with pytest.raises(InvalidState, match="decided already"):
        subject_pick.decide(session, issue_id=issue_id, variant=1, by="desk@example.org")


def test_pause_holds_the_pick_back_from_sending_and_cancel_ends_the_test(
    session: Session,
) -> None:
    fx = issue_with_test(session, readers=20)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    controls.pause(session, issue_id=issue_id)
    session.commit()
    later = utcnow() + timedelta(hours=5)
    assert subject_pick.decide_due(session, now=later) == [issue_id]  # picked while paused
    assert ledger.claim(session, issue_id=issue_id, limit=50, lease_seconds=60) == []
    controls.resume(session, issue_id=issue_id)
    session.commit()
    assert ledger.ready_count(session, issue_id=issue_id) == 20

    other = issue_with_test(session, readers=10)
    other_id = other.issue.id
    assert other_id is not None
    fill_ledger(session, issue_id=other_id, checks=QAConfig())
    controls.cancel(session, issue_id=other_id)
    session.commit()
    assert subject_pick.decide_due(session, now=later) == []
    assert {r.status for r in rows(session, other_id)} == {"cancelled"}


def test_a_test_by_clicks_needs_click_tracking(session: Session) -> None:
    fx = make_issue(session, newsletter=make_newsletter(session, track_opens=True))
    by_clicks = subject_tests.spec([A, B], sample=10, wait="1h", metric="clicks")
    with pytest.raises(InvalidInput, match="does not track clicks"):
        subject_tests.configure(session, fx.issue, by_clicks)
    by_opens = subject_tests.spec([A, B], sample=10, wait="1h", metric="opens")
    assert subject_tests.configure(session, fx.issue, by_opens) is not None


def test_an_issue_without_a_test_is_filled_as_before(session: Session) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 5)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    assert {(r.variant, r.next_attempt_at) for r in rows(session, issue_id)} == {(None, None)}
    assert subject_tests.summary(session, issue_id) is None


def test_a_readers_clicks_and_opens_carry_the_subject_they_got_and_the_report_splits_them(
    session: Session, settings: Settings
) -> None:
    fx = issue_with_test(session, readers=20, sample=25)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    sample = D.c.variant.is_not(None)
    an_hour_ago = utcnow() - timedelta(hours=1)  # read later than a scanner would
    session.execute(
        update(D).where(D.c.issue_id == issue_id, sample).values(status="sent", sent_at=an_hour_ago)
    )
    session.commit()
    got = {r.subscriber_id: r.variant for r in rows(session, issue_id) if r.variant}
    a_sample = sorted(s for s, v in got.items() if v == 1)
    b_sample = sorted(s for s, v in got.items() if v == 2)
    link = min(recording.issue_links(session, issue_id).by_n)

    def token(who: int) -> str:
        return tokens.make_token(settings.secret_key, issue_id, who)

    recording.forget()
    with TestClient(create_app(settings), follow_redirects=False) as http:
        for who in (a_sample[0], b_sample[0], b_sample[1]):
            assert http.get(f"/r/{issue_id}/{link}/{token(who)}", headers=PERSON).status_code == 302
        assert (
            http.get(f"/o/{issue_id}/{token(b_sample[2])}.gif", headers=PERSON).status_code == 200
        )

    session.expire_all()
    recorded = session.exec(select(EngagementEvent).where(EngagementEvent.issue_id == issue_id))
    seen = {(e.subscriber_id, e.kind, e.verdict, e.variant) for e in recorded}
    assert seen == {
        (a_sample[0], "click", "human", 1),
        (b_sample[0], "click", "human", 2),
        (b_sample[1], "click", "human", 2),
        (b_sample[2], "open", "human", 2),
    }
    split = {
        v.letter: (v.recipients, v.delivered, v.human_clickers, v.human_openers)
        for v in issue_report(session, issue_id).variants
    }
    assert split == {"A": (5, 5, 1, 0), "B": (5, 5, 2, 1)}
    found = subject_pick.figures(session, issue_id=issue_id, metric="clicks")
    assert [(f["variant"], f["uniques"]) for f in found] == [(1, 1), (2, 2)]


def test_the_eta_counts_the_sample_being_sent_not_the_rows_held_for_the_winner(
    session: Session,
) -> None:
    fx = issue_with_test(session, readers=50)  # 10 + 10 drawn, 30 held
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    a_sample = [r.id for r in rows(session, issue_id) if r.variant == 1]
    session.execute(update(D).where(D.c.id.in_(a_sample)).values(status="sent", sent_at=utcnow()))
    session.commit()

    state = controls.status(session, issue_id=issue_id)
    assert state.progress.status == "sending" and state.held == 30
    assert state.rate == pytest.approx(10 / controls.RATE_WINDOW.total_seconds())
    assert state.eta_seconds == pytest.approx(10 / state.rate)  # B's 10, not 40
    assert state.as_dict()["held"] == 30

    subject_pick.decide(session, issue_id=issue_id, variant=1, by="desk@example.org")
    session.commit()
    after = controls.status(session, issue_id=issue_id)
    assert after.held == 0 and after.eta_seconds == pytest.approx(40 / after.rate)
