"""The batching recorder (``analytics.recorder``) on both databases: hits added from many
threads end in exactly as many events, with the verdicts one-at-a-time ``record`` gives; a
burst split across two flushes is still a burst; ``stop`` and the app's shutdown flush."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter.analytics import recording, tokens
from newsletter.analytics.recorder import Recorder
from newsletter.analytics.recording import Hit
from newsletter.analytics.verdicts import Limits
from newsletter.api.app import create_app
from newsletter.config import Settings, get_settings
from newsletter.models import Issue, IssueStatus, utcnow
from newsletter.models_analytics import EngagementEvent, IssueLink, LinkKind
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.tables import D
from tests.conftest import make_issue, make_newsletter, make_subscribers

LIMITS = Limits(machine_seconds=10, burst_seconds=5, burst_links=4, burst_share=0.1)
PERSON = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "accept": "text/html"}
READERS = 12


@pytest.fixture(autouse=True)
def _fresh_link_cache() -> Iterator[None]:
    recording.forget()
    yield
    recording.forget()


def tracked_issue(session: Session, settings: Settings, readers: int, sent: datetime) -> int:
    """A tracked issue of ``readers`` subscribers, its ledger filled and marked sent at ``sent``."""
    newsletter = make_newsletter(session, track_clicks=True, track_opens=True)
    issue_id = make_issue(session, newsletter=newsletter, layout=(3, 3)).issue.id
    assert issue_id is not None
    make_subscribers(session, newsletter, readers)
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    session.execute(update(D).where(D.c.issue_id == issue_id).values(status="sent", sent_at=sent))
    session.execute(
        update(Issue).where(col(Issue.id) == issue_id).values(status=IssueStatus.sent, sent_at=sent)
    )
    session.commit()
    return issue_id


def issue_links(session: Session, issue_id: int) -> list[IssueLink]:
    rows = session.exec(select(IssueLink).where(IssueLink.issue_id == issue_id)).all()
    return sorted(rows, key=lambda row: row.n)


def readers_of(session: Session, issue_id: int) -> list[int]:
    rows = session.execute(select(D.c.subscriber_id).where(D.c.issue_id == issue_id))
    return sorted(r.subscriber_id for r in rows)


def hits_for(session: Session, issue_id: int, start: datetime) -> dict[int, list[Hit]]:
    """Each reader's requests, in order: the i-th reader has a pattern of its own: a person's
    one or two clicks, a scanner's burst of every link, a HEAD probe, opens, repeated clicks,
    and a burst slower than the window (people). The dict's key is the reader's place."""
    links = [
        recording.Target(row.id or 0, row.url, row.kind)
        for row in issue_links(session, issue_id)
        if row.kind != LinkKind.trap
    ]
    trap = next(row for row in issue_links(session, issue_id) if row.kind == LinkKind.trap)

    def hit(who: int, link: recording.Target | None, second: float, **kw: object) -> Hit:
        values: dict[str, object] = {
            "issue_id": issue_id,
            "subscriber_id": who,
            "kind": "click" if link else "open",
            "method": "GET",
            "headers": PERSON,
            "ip": "198.51.100.7",
            "at": start + timedelta(seconds=second),
            "link": link,
        }
        values.update(kw)
        return Hit(**values)  # type: ignore[arg-type]

    plans: dict[int, list[Hit]] = {}
    for place, who in enumerate(readers_of(session, issue_id)):
        pattern = place % 6
        if pattern == 0:  # a person: an open, two stories
            plan = [hit(who, None, 0), hit(who, links[0], 20), hit(who, links[3], 40)]
        elif pattern == 1:  # a scanner: HEAD, then every link within a second
            plan = [hit(who, links[0], 0, method="HEAD")]
            plan += [hit(who, link, 0.1 * i) for i, link in enumerate(links)]
        elif pattern == 2:  # the same story three times, then the trap
            plan = [hit(who, links[1], s) for s in (1, 2, 3)]
            plan += [hit(who, recording.Target(trap.id or 0, trap.url, trap.kind), 4)]
        elif pattern == 3:  # five stories, 2 s apart: at most three in any 5 s window
            plan = [hit(who, links[i], 2.0 * i) for i in range(5)]
        elif pattern == 4:  # a burst of three, then a fourth link at the window's edge
            plan = [hit(who, links[i], 0.5 * i) for i in range(3)] + [hit(who, links[5], 4.9)]
        else:  # a prefetch and nobody's token
            plan = [hit(who, links[2], 1, headers={**PERSON, "sec-purpose": "prefetch"})]
            plan += [hit(tokens.NOBODY, links[2], 2)]
        plans[place] = plan
    return plans


def outcome(session: Session, issue_id: int) -> Counter[tuple[int, int | None, str, str, str]]:
    """(reader's place, link n, kind, verdict, rule) of the issue's events."""
    session.expire_all()
    place = {who: i for i, who in enumerate(readers_of(session, issue_id))}
    n_of = {row.id: row.n for row in issue_links(session, issue_id)}
    rows = session.exec(select(EngagementEvent).where(EngagementEvent.issue_id == issue_id)).all()
    return Counter(
        (place[e.subscriber_id], n_of.get(e.link_id), e.kind, e.verdict, e.rule) for e in rows
    )


def add_all(buffer: Recorder, plan: list[Hit]) -> None:
    for hit in plan:
        buffer.add(hit)


def recorder(settings: Settings, *, interval: float = 0.01, batch: int = 7) -> Recorder:
    return Recorder(
        settings.database_url, limits=LIMITS, retention_days=30, interval=interval, batch=batch
    )


def test_hits_from_many_threads_end_as_the_events_one_at_a_time_recording_gives(
    session: Session, settings: Settings
) -> None:
    sent = utcnow() - timedelta(minutes=5)
    one_by_one = tracked_issue(session, settings, READERS, sent)
    batched = tracked_issue(session, settings, READERS, sent)
    for plan in hits_for(session, one_by_one, utcnow()).values():
        for hit in plan:
            recording.record(session, hit, limits=LIMITS, retention_days=30)
            session.commit()
    expected = outcome(session, one_by_one)

    buffer = recorder(settings)
    plans = hits_for(session, batched, utcnow())
    threads = [threading.Thread(target=add_all, args=(buffer, plan)) for plan in plans.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.stop()

    recordable = sum(1 for plan in plans.values() for h in plan if h.subscriber_id)
    assert sum(expected.values()) == recordable  # every reader's hit, nobody's none
    assert outcome(session, batched) == expected
    rules = {rule for (_, _, _, _, rule) in expected}
    assert {"burst", "head", "trap", "prefetch", "human"} <= rules  # the patterns did their job


def test_a_burst_split_across_two_flushes_is_still_a_burst(
    session: Session, settings: Settings
) -> None:
    issue_id = tracked_issue(session, settings, 1, utcnow() - timedelta(minutes=5))
    [who], now = readers_of(session, issue_id), utcnow()
    four = [row for row in issue_links(session, issue_id) if row.kind != LinkKind.trap][:4]
    clicks = [
        Hit(issue_id, who, "click", "GET", PERSON, None, now + timedelta(seconds=0.5 * i), link)
        for i, link in enumerate(recording.Target(r.id or 0, r.url, r.kind) for r in four)
    ]
    buffer = recorder(settings, interval=60)
    for hit in clicks[:2]:
        buffer.add(hit)
    assert buffer.flush() == 2
    assert {rule for (*_, rule) in outcome(session, issue_id)} == {"human"}
    for hit in clicks[2:]:
        buffer.add(hit)
    buffer.stop()
    assert outcome(session, issue_id) == Counter(
        {(0, row.n, "click", "machine", "burst"): 1 for row in four}
    )


def test_stop_records_what_is_still_buffered(session: Session, settings: Settings) -> None:
    issue_id = tracked_issue(session, settings, 3, utcnow() - timedelta(minutes=5))
    plans = hits_for(session, issue_id, utcnow())
    buffer = recorder(settings, interval=60, batch=10_000)  # no flush before stop
    for plan in plans.values():
        for hit in plan:
            buffer.add(hit)
    assert buffer.pending() == sum(len(p) for p in plans.values())
    assert sum(outcome(session, issue_id).values()) == 0
    buffer.stop()
    assert buffer.pending() == 0
    assert sum(outcome(session, issue_id).values()) == sum(len(p) for p in plans.values())


def test_the_apps_shutdown_records_the_buffered_clicks(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_id = tracked_issue(session, settings, 1, utcnow() - timedelta(minutes=5))
    [who] = readers_of(session, issue_id)
    token = tokens.make_token(settings.secret_key, issue_id, who)
    two = [row.n for row in issue_links(session, issue_id) if row.kind != LinkKind.trap][:2]
    monkeypatch.setenv("NEWSLETTER_TRACK_FLUSH_SECONDS", "5")  # the default path: buffered
    get_settings.cache_clear()
    app = create_app(get_settings())
    with TestClient(app, follow_redirects=False) as client:
        for n in two:
            answer = client.get(f"/r/{issue_id}/{n}/{token}", headers=PERSON)
            assert answer.status_code == 302
        assert app.state.recorder.pending() == 2  # answered; not yet recorded
    assert outcome(session, issue_id) == Counter(
        {(0, n, "click", "human", "human"): 1 for n in two}
    )
