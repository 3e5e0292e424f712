"""An item's ``<media:description>`` is its image's caption, not its blurb: a real feed file
served by a local HTTP server, fetched by the autopilot (both databases).

feedparser reads ``media:description`` as a second description: the first of the two becomes
the entry's summary and the second its content, so the caption replaced either the blurb or
the body depending on their order. The importer keeps it apart, as the image's alt text.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from sqlmodel import Session, select

from newsletter.autopilot import sources
from newsletter.config import Settings
from newsletter.models import Article, Issue
from newsletter.statuses import IssueStatus
from newsletter.transports.sink import SMTPSink
from tests.integration.autopilot_support import FeedState
from tests.integration.test_autopilot import feed, next_run, outline_of, sink, the_beat, weekly

__all__ = ["feed", "sink"]  # the autopilot tests' fixtures, used by name

FEED = Path(__file__).parents[1] / "fixtures" / "feed_media_description.xml"
PUB_DATE = re.compile(rb"<pubDate>[^<]*</pubDate>")


def the_feed(run: datetime) -> bytes:
    """The fixture, its items dated the days before ``run`` (newest first)."""
    days = iter(range(1, 10))
    return PUB_DATE.sub(
        lambda _m: (
            f"<pubDate>{format_datetime(run - timedelta(days=next(days)))}</pubDate>".encode()
        ),
        FEED.read_bytes(),
    )


def article(session: Session, slug: str) -> Article:
    return session.exec(
        select(Article).where(Article.url == f"https://news.example.org/2026/{slug}")
    ).one()


def test_the_media_description_is_the_alt_text_and_the_description_the_blurb(
    session: Session, settings: Settings, feed: tuple[str, FeedState]
) -> None:
    url, state = feed
    nl = weekly(session, url)
    state.serve(the_feed(next_run()))
    source = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    fetched = sources.fetch(
        session, source, sources.outbound.OutboundPolicy.from_settings(settings)
    )
    session.commit()
    assert (fetched.created, fetched.errors) == (3, ())

    tertel = article(session, "tertel-dialogue")  # <description> before the media caption
    assert tertel.summary == "Ivan Tertel said on Oct. 19 his agency was open to talks."
    assert tertel.body_html == f"<p>{tertel.summary}</p>"  # not the caption either
    assert tertel.image_alt == "Ivan Tertel at a briefing in Minsk"
    assert tertel.image_credit == "Photo: Example Agency"

    belavia = article(session, "belavia")  # the caption first: it used to become the blurb
    assert belavia.summary == "The state airline flies again after the U.S. lifted sanctions."
    assert belavia.body_html == f"<p>{belavia.summary}</p>"
    assert belavia.image_alt == "A Belavia airliner at Minsk National Airport"

    zapad = article(session, "zapad")  # no media at all: as before
    assert zapad.summary == "Moscow claimed about 100,000 troops took part."
    assert zapad.image_alt is None and zapad.image_url is None


def test_a_draft_from_such_a_feed_passes_qa_and_is_scheduled(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    weekly(session, url, auto_schedule=True)  # QA refuses an image with no alt text
    run = next_run()
    state.serve(the_feed(run))
    drafted = the_beat(settings, sink, run - timedelta(hours=11)).drafted[0]
    issue = session.get(Issue, drafted.issue_id)
    assert issue is not None and issue.status == IssueStatus.scheduled
    assert outline_of(session, issue.id) == [  # type: ignore[arg-type]
        ("Politics", ["KGB chief says ready for dialogue with Kyiv", "Zapad exercises end"]),
        ("Economy", ["Belavia resumes flights after sanctions lifted"]),
    ]
