"""A tracked issue through the real Celery worker to the real SMTP sink; the received messages'
links followed as a scanner would (at once: HEAD, then every link) and as people would (after a
while, a story or two): exactly the people's clicks are human, per article."""

from __future__ import annotations

import quopri
import re
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.analytics import recording
from newsletter.api.app import create_app
from newsletter.config import Settings
from newsletter.models_analytics import EngagementEvent, IssueLink
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_issue, make_newsletter, make_subscribers
from tests.integration.test_celery_delivery import wait_until_sent

REDIS_DB = 5  # this suite's own database on the test Redis, flushed before it
MACHINE_SECONDS = 2  # NEWSLETTER_TRACK_MACHINE_SECONDS here: people wait a little longer
BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Accept": "text/html,application/xhtml+xml",
}
SCANNER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Accept": "*/*"}


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    recording.forget()
    with celery_worker(
        redis_url, REDIS_DB, sink, monkeypatch, track_machine_seconds=str(MACHINE_SECONDS)
    ) as current:
        yield current


def html_links(raw: bytes) -> tuple[str, list[str]]:
    """(the recipient's address, the HTML part's hrefs in order)."""
    message = message_from_bytes(raw, policy=default_policy)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = quopri.decodestring(html.get_payload().encode()).decode()  # type: ignore[union-attr]
    to = str(message["To"].addresses[0].addr_spec)  # type: ignore[union-attr]
    return to, re.findall(r'<a\b[^>]*?\shref="([^"]*)"', body)


# the worker's path is the same on both databases; the recording's SQL runs on both in
# test_tracking.py, so this one runs on PostgreSQL only (CI time)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_people_and_scanners_through_the_worker(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    from worker.tasks import dispatch

    newsletter = make_newsletter(session, track_clicks=True, track_opens=True)
    fx = make_issue(session, newsletter=newsletter, layout=(2, 2))
    people = make_subscribers(session, newsletter, 6)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=qa_config(worker_settings))
    session.commit()
    dispatch.delay(issue_id)
    assert wait_until_sent(worker_settings, issue_id).counts == {"sent": 6}
    received = dict(html_links(m.data) for m in sink.messages)
    assert sorted(received) == sorted(p.email for p in people)
    base = f"{worker_settings.base_url}/r/{issue_id}/"
    scanned, readers = sorted(received)[:3], sorted(received)[3:]
    links = {
        row.n: row for row in session.exec(select(IssueLink).where(IssueLink.issue_id == issue_id))
    }
    app = create_app(worker_settings)
    with TestClient(app, follow_redirects=False) as http:
        # a scanner at delivery: HEAD on the first link, then GET on every link (the trap too)
        for address in scanned:
            tracked = [h for h in received[address] if h.startswith(base)]
            assert len(tracked) == len(links)  # every link, one token per message
            assert len({h.rsplit("/", 1)[1] for h in tracked}) == 1
            http.head(tracked[0], headers=SCANNER)
            for href in tracked:
                answer = http.get(href, headers=SCANNER)
                assert answer.status_code == 302
        # people, a while after delivery: a headline here, an image and a brief bullet there
        time.sleep(MACHINE_SECONDS + 0.5)
        clicked: Counter[int] = Counter()
        for address, (kind, place) in zip(
            readers, [("headline", 1), ("image", 2), ("brief", 3)], strict=True
        ):
            for href in received[address]:
                if not href.startswith(base):
                    continue
                link = links[int(href.split("/")[-2])]
                if (link.kind, link.position) == (kind, place) or (
                    address == readers[0] and (link.kind, link.position) == ("read_more", 4)
                ):
                    answer = http.get(href, headers=BROWSER)
                    assert answer.status_code == 302 and answer.headers["location"] == link.url
                    assert link.article_id is not None
                    clicked[link.article_id] += 1
        assert sum(clicked.values()) == 4
    session.expire_all()
    recorded = session.exec(
        select(EngagementEvent).where(EngagementEvent.issue_id == issue_id)
    ).all()
    ids = {p.email: p.id for p in people}
    scanner_ids = {ids[a] for a in scanned}
    assert {e.verdict for e in recorded if e.subscriber_id in scanner_ids} == {"machine"}
    rules = {e.rule for e in recorded if e.subscriber_id in scanner_ids}
    assert {"head", "trap"} <= rules <= {"head", "trap", "too_fast", "burst"}
    assert len([e for e in recorded if e.subscriber_id in scanner_ids]) == 3 * (len(links) + 1)
    human = [e for e in recorded if e.verdict == "human"]
    assert all(e.subscriber_id not in scanner_ids for e in human)
    by_link = {row.id: row for row in links.values()}
    per_article = Counter(by_link[e.link_id].article_id for e in human if e.link_id)
    assert per_article == clicked
