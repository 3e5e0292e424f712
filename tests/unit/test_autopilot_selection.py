"""The drafting rules as plain data: sections from tags or categories, order, cap, lead story;
bylines without e-mail addresses; JSON Feed items as records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.autopilot.selection import plan
from newsletter.content import importers, jsonfeed
from newsletter.content.sanitize import byline
from newsletter.exceptions import InvalidInput
from newsletter.models import Article, Autopilot

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def story(n: int, hours_ago: int, *tags: str, section: str | None = None) -> Article:
    return Article(
        id=n,
        url=f"https://news.example.org/{n}",
        title=f"Story {n}",
        tags=list(tags),
        section=section,
        published_at=T0 - timedelta(hours=hours_ago),
    )


def titles(result: object) -> list[tuple[str, list[str]]]:
    return [(t, [a.title for a in group]) for t, group in result.sections]  # type: ignore[attr-defined]


PILOT = {"sections": [["politics", "Politics"], ["economy", "Economy"]], "per_section": 5}


def test_stories_go_to_the_section_of_their_tag_or_category_newest_first() -> None:
    stories = [
        story(1, 30, "Politics"),  # tags match ignoring case
        story(2, 10, "economy"),
        story(3, 5, section="Politics"),  # the category (section) counts too
        story(4, 1, "culture"),  # mapped nowhere, no "rest" section: left out
    ]
    result = plan(stories, Autopilot(newsletter_id=1, **PILOT))
    assert titles(result) == [
        ("Politics", ["Story 3", "Story 1"]),
        ("Economy", ["Story 2"]),
    ]
    assert result.lead is not None and result.lead.title == "Story 3"


def test_the_rest_go_to_the_other_section_when_there_is_one() -> None:
    result = plan(
        [story(1, 3, "culture")], Autopilot(newsletter_id=1, other_section="More", **PILOT)
    )
    assert titles(result) == [("More", ["Story 1"])]


def test_each_section_is_capped_at_n() -> None:
    stories = [story(n, n, "politics") for n in range(1, 8)]
    result = plan(stories, Autopilot(newsletter_id=1, sections=PILOT["sections"], per_section=3))
    assert titles(result) == [("Politics", ["Story 1", "Story 2", "Story 3"])]


def test_the_priority_order_puts_the_tagged_first_and_the_lead_section_first() -> None:
    stories = [
        story(1, 1, "politics"),
        story(2, 50, "economy", "exclusive"),
        story(3, 40, "politics", "exclusive"),
        story(4, 2, "economy"),
    ]
    pilot = Autopilot(
        newsletter_id=1, ordering="priority", lead="priority", priority_tag="Exclusive", **PILOT
    )
    result = plan(stories, pilot)
    # the lead is the newest story with the priority tag; its section comes first
    assert result.lead is not None and result.lead.title == "Story 3"
    assert titles(result) == [
        ("Politics", ["Story 3", "Story 1"]),
        ("Economy", ["Story 2", "Story 4"]),
    ]


def test_the_newest_lead_with_priority_order_inside_sections() -> None:
    stories = [
        story(1, 1, "economy"),
        story(2, 9, "politics", "exclusive"),
        story(3, 2, "politics"),
    ]
    pilot = Autopilot(newsletter_id=1, ordering="priority", priority_tag="exclusive", **PILOT)
    result = plan(stories, pilot)
    assert result.lead is not None and result.lead.title == "Story 1"
    assert titles(result) == [("Economy", ["Story 1"]), ("Politics", ["Story 2", "Story 3"])]


def test_nothing_new_is_an_empty_plan() -> None:
    result = plan([story(1, 1, "sport")], Autopilot(newsletter_id=1, **PILOT))
    assert result.sections == [] and result.lead is None and result.stories == 0


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("jane@example.org (Jane Doe)", "Jane Doe"),
        ("Jane Doe <jane@example.org>", "Jane Doe"),
        ("jane@example.org", None),
        ("Jane Doe", "Jane Doe"),
        ("", None),
        (None, None),
    ],
)
def test_a_byline_never_shows_an_email_address(given: str | None, shown: str | None) -> None:
    assert byline(given) == shown


def test_a_json_feed_item_maps_to_an_article_record() -> None:
    data = (
        b'{"version": "https://jsonfeed.org/version/1", "author": {"name": "Desk"}, "items": ['
        b'{"id": "a", "url": "https://n.example.org/a", "title": "A", "content_text": "Body",'
        b' "date_modified": "2026-11-20T08:00:00Z", "banner_image": "https://i.example.org/a.jpg"}]}'
    )
    assert jsonfeed.looks_like(data)
    assert jsonfeed.read(data, "feed") == [
        {
            "url": "https://n.example.org/a",
            "title": "A",
            "body_html": "Body",
            "author": "Desk",  # the feed's author (JSON Feed 1.0) when the item has none
            "published_at": "2026-11-20T08:00:00Z",
            "image_url": "https://i.example.org/a.jpg",
        }
    ]


@pytest.mark.parametrize(
    "data", [b"{not json", b'{"items": []}', b'{"version": "https://jsonfeed.org/version/1.1"}']
)
def test_what_is_not_a_json_feed_is_one_line(data: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"^feed: "):
        jsonfeed.read(data, "feed")


def test_an_uploaded_json_feed_file_is_read_as_one() -> None:
    data = (
        b'{"version": "https://jsonfeed.org/version/1.1",'
        b' "items": [{"url": "https://a.org/x", "title": "T"}]}'
    )
    assert importers.read_upload(data, "feed.json") == [{"url": "https://a.org/x", "title": "T"}]
