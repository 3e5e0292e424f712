# ruff: noqa: RUF001 - Belarusian text
"""A tracked issue's editions number their links by URL (issue 16 gap), on SQLite and
PostgreSQL: a translation that moves its intro's links and adds one is sent, not blocked; each
link of each edition leads where that edition points and counts for that URL, and for its story,
in the per-article report and the heat view of the issue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter.analytics import heat, recording, tokens
from newsletter.analytics.issue_report import ArticleRow, LinkRow, issue_report
from newsletter.analytics.link_numbers import LinkNumbers
from newsletter.analytics.links import LinkSpec
from newsletter.api.app import create_app
from newsletter.config import Settings
from newsletter.content import editions, issues
from newsletter.models import utcnow
from newsletter.models_analytics import IssueLink
from newsletter.tables import D
from newsletter.transports.sink import SMTPSink
from tests.conftest import IssueFixture, make_subscribers
from tests.integration.editions_support import body, issue_with_editions, received, speaking
from tests.integration.send_support import send_issue

REPORT = "https://news.example.org/report"
INTERVIEW = "https://news.example.org/interview"
PHOTOS = "https://news.example.org/photos"
ENGLISH_INTRO = f"Read [the report]({REPORT}) and [the interview]({INTERVIEW})."
#: the translation names the interview first and adds a photo gallery
BELARUSIAN_INTRO = f"[Інтэрв'ю]({INTERVIEW}), [справаздача]({REPORT}) і [фота]({PHOTOS})."
PERSON = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept": "text/html",
}


@pytest.fixture(autouse=True)
def _fresh_link_cache() -> Iterator[None]:
    recording.forget()
    yield
    recording.forget()


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as http:
        yield http


def tracked_numbers(message: EmailMessage, issue_id: int) -> tuple[list[int], int]:
    """The link numbers of the message's HTML part, in order, and apart the last: the trap link,
    which only a machine follows (and which would mark its follower a machine)."""
    html = body(message, "html")
    found = [int(n) for n in re.findall(rf"/r/{issue_id}/(\d+)/", html)]
    assert 'aria-hidden="true"' in html.split(f"/r/{issue_id}/{found[-1]}/")[1][:80]
    return found[:-1], found[-1]


def total(row: LinkRow | ArticleRow) -> int:
    """Clicks of both verdicts: a reader following every link in a second is a burst, which the
    recorder may judge a machine's; which link the clicks count for is what is checked here."""
    return row.clicks + row.machine_clicks


def reordering_issue(session: Session) -> IssueFixture:
    fx = issue_with_editions(session)
    fx.newsletter.track_clicks = True
    session.add(fx.newsletter)
    issue_id = fx.issue.id
    assert issue_id is not None
    issues.update_issue(session, issue_id=issue_id, intro_md=ENGLISH_INTRO)
    editions.set_fields(
        session, issue_id=issue_id, language="be", values={"intro_md": BELARUSIAN_INTRO}
    )
    session.commit()
    return fx


def test_a_translation_that_reorders_and_adds_links_is_sent_and_each_click_counts_for_its_url(
    session: Session, settings: Settings, sink: SMTPSink, client: TestClient
) -> None:
    fx = reordering_issue(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    english, belarusian = make_subscribers(session, fx.newsletter, 2)
    speaking(session, [english, belarusian], [None, "be"])

    assert send_issue(session, settings, issue_id, sink) == 2  # nothing blocked
    session.execute(  # delivered a minute ago: the clicks below are a person's, not a scanner's
        update(D).where(D.c.issue_id == issue_id).values(sent_at=utcnow() - timedelta(minutes=1))
    )
    session.commit()
    got = received(sink)
    en, trap = tracked_numbers(got[english.email][0], issue_id)
    be, be_trap = tracked_numbers(got[belarusian.email][0], issue_id)

    def follow(numbers: list[int], reader: int) -> list[str]:
        token = tokens.make_token(settings.secret_key, issue_id, reader)
        answers = [client.get(f"/r/{issue_id}/{n}/{token}", headers=PERSON) for n in numbers]
        assert {a.status_code for a in answers} == {302}
        return [a.headers["location"] for a in answers]

    en_urls = follow(en, english.id)  # type: ignore[arg-type]
    be_urls = follow(be, belarusian.id)  # type: ignore[arg-type]
    at = en_urls.index(REPORT)
    assert en_urls[at : at + 2] == [REPORT, INTERVIEW]
    # the Belarusian message leads where its own text points, every other link as in English
    assert be_urls == [*en_urls[:at], INTERVIEW, REPORT, PHOTOS, *en_urls[at + 2 :]]
    # one number per URL in both editions; the photos, only in Belarusian, have their own
    assert trap == max(en) + 1 == be_trap
    assert be == [*en[:at], en[at + 1], en[at], trap + 1, *en[at + 2 :]]

    session.expire_all()
    report = issue_report(session, issue_id)
    by_url = {row.url: row for row in report.links if row.kind == "intro"}
    assert {url: total(row) for url, row in by_url.items()} == {
        REPORT: 2,
        INTERVIEW: 2,
        PHOTOS: 1,
    }
    lead = fx.articles[0]
    (lead_row,) = [a for a in report.articles if a.article_id == lead.id]
    on_lead = [u for u in en_urls if u == lead.url]
    assert on_lead and total(lead_row) == 2 * len(on_lead)  # both readers' clicks on its links
    # the heat view of the issue puts the two readers' clicks on the interview beside its link
    page = heat.heat_html(session, issue_id, report.links)
    row = by_url[INTERVIEW]
    badge = (
        f'<span data-link="{row.n}" title="link {row.n}: {row.clicks} human clicks '
        f'({row.clickers} readers), {row.machine_clicks} machine clicks"'
    )
    assert re.search(
        re.escape(badge) + rf'[^>]*>[^<]*</span><a href="[^"]*/r/{issue_id}/{row.n}/', page
    )


def test_a_url_only_editions_share_gets_one_number_and_a_repeated_story_link_keeps_its_kind(
    session: Session,
) -> None:
    issue = [
        LinkSpec(1, REPORT, "intro"),
        LinkSpec(2, "https://x.example/a", "headline", 7, "News", 1),
        LinkSpec(3, "https://x.example/a", "read_more", 7, "News", 1),
        LinkSpec(4, "https://news.example.org/", "trap"),
    ]
    numbers = LinkNumbers(list(issue))
    be = [
        LinkSpec(1, PHOTOS, "intro"),
        LinkSpec(2, "https://x.example/a", "headline", 7, "News", 1),
        LinkSpec(3, REPORT, "intro"),
        LinkSpec(4, "https://x.example/a", "read_more", 7, "News", 1),
        LinkSpec(5, "https://news.example.org/", "trap"),
    ]
    assert numbers.number(be) == {1: 5, 2: 2, 3: 1, 4: 3, 5: 4}
    ru = [LinkSpec(1, "https://x.example/a", "intro"), LinkSpec(2, PHOTOS, "intro")]
    assert numbers.number(ru) == {1: 2, 2: 5}  # an address known as a headline; the photos
    assert [(s.n, s.url) for s in numbers.specs[4:]] == [(5, PHOTOS)]


def test_the_issue_links_are_stored_once_per_url(
    session: Session, settings: Settings, sink: SMTPSink
) -> None:
    fx = reordering_issue(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    make_subscribers(session, fx.newsletter, 1)
    send_issue(session, settings, issue_id, sink)
    session.expire_all()
    rows = session.exec(select(IssueLink).where(IssueLink.issue_id == issue_id)).all()
    intro = sorted((row.url, row.kind) for row in rows if row.kind == "intro")
    assert intro == [(INTERVIEW, "intro"), (PHOTOS, "intro"), (REPORT, "intro")]
