"""The issue email's three layouts (digest, alert, letter): structure a reader and a screen reader
rely on (headings in order, the lead first, links named for their story, bullets that link), the
head a mail app reads (colour scheme, no auto-links, dark-mode styles), a preheader hidden
without low-contrast text, and the HTML size of the seeded issue."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlmodel import Session

from newsletter import seeding
from newsletter.audience.confirmations import compile_confirmation
from newsletter.content import issues, rendering
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter

LAYOUTS = rendering.LAYOUTS
PREHEADER = "Minsk courts Kyiv, sanctions hold."
#: the seeded issue (10 stories) measured 54.3 KB in the digest and 22.5 KB as an alert or a
#: letter (bench/email_design.py); the layout before them measured 62.1 KB
DIGEST_BUDGET, SHORT_BUDGET = 58_000, 25_000


# ---------------------------------------------------------------- building and reading emails


def newsletter(**overrides: Any) -> Newsletter:
    values: dict[str, Any] = {
        "id": 1,
        "slug": "weekly",
        "name": "Belarus Weekly",
        "from_name": "Belarus Weekly",
        "from_email": "weekly@news.example.org",
        "postal_address": "Example News Ltd, Warsaw",
        "brand_color": "#1a5e9a",
        "website_url": "https://news.example.org",
    }
    values.update(overrides)
    return Newsletter(**values)


def article(n: int, **overrides: Any) -> Article:
    values: dict[str, Any] = {
        "id": n,
        "url": f"https://news.example.org/story-{n}",
        "title": f"Headline {n}",
        "summary": f"First paragraph of story {n}. More.\n\nSecond paragraph of story {n}.",
        "bullet": f"Bullet of story {n}.",
        "image_url": f"https://images.example.org/{n}.jpg",
        "image_alt": f"Picture {n}",
        "author": f"Author {n}",
        "published_at": datetime(2025, 10, 19, tzinfo=UTC),
    }
    values.update(overrides)
    return Article(**values)


def outline(
    layout: str = "digest",
    sections: dict[str, list[int]] | None = None,
    *,
    title: str = "Talks with Kyiv",
    preheader: str = PREHEADER,
    **settings: Any,
) -> IssueOutline:
    default = {"Diplomacy": [1, 2], "Sanctions": [3, 4], "Culture": [5]}
    layout_of = default if sections is None else sections
    issue = Issue(
        id=1,
        newsletter_id=1,
        number=4,
        title=title,
        preheader=preheader,
        intro_md="Our **intro**.",
        created_at=datetime(2025, 10, 20, tzinfo=UTC),
    )
    built = []
    for position, (name, numbers) in enumerate(layout_of.items()):
        section = IssueSection(id=position + 1, issue_id=1, title=name, position=position)
        items = [
            OutlineItem(
                IssueItem(id=n, section_id=section.id, article_id=n, position=i), article(n)
            )
            for i, n in enumerate(numbers)
        ]
        built.append(OutlineSection(section, items))
    return IssueOutline(newsletter(layout=layout, **settings), issue, built)


def html_of(layout: str = "digest", **kwargs: Any) -> str:
    return rendering.compile_issue(outline(layout, **kwargs)).html


@dataclass
class Link:
    href: str
    cls: str
    text: str = ""


class Page(HTMLParser):
    """Headings, links (their whole text, hidden parts included) and images, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str]] = []
        self.links: list[Link] = []
        self.images: list[dict[str, str]] = []
        self._open: list[Link | int] = []  # the link, or the heading's index, being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(a)
            self.handle_data(a.get("alt", ""))  # a linked image's alt is the link's name
        elif tag == "a":
            self.links.append(Link(a.get("href", ""), a.get("class", "")))
            self._open.append(self.links[-1])
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append((int(tag[1]), ""))
            self._open.append(len(self.headings) - 1)

    def handle_endtag(self, tag: str) -> None:
        if (tag == "a" and self._open and isinstance(self._open[-1], Link)) or (
            re.fullmatch(r"h[1-6]", tag) and self._open and isinstance(self._open[-1], int)
        ):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for holder in self._open:
            if isinstance(holder, Link):
                holder.text += data
            else:
                level, text = self.headings[holder]
                self.headings[holder] = (level, text + data)


def page(html: str) -> Page:
    parsed = Page()
    parsed.feed(html)
    return parsed


def story_urls(parsed: Page) -> list[str]:
    """Story links in order of first appearance."""
    seen = [link.href for link in parsed.links if "/story-" in link.href]
    return list(dict.fromkeys(seen))


def preheader_div(html: str) -> re.Match[str] | None:
    return re.search(r'<body[^>]*>\s*<div[^>]*>\s*<div style="([^"]*)">(.*?)</div>', html, re.S)


# ---------------------------------------------------------------- every layout


@pytest.mark.parametrize("layout", LAYOUTS)
def test_headings_are_one_h1_then_no_skipped_level(layout: str) -> None:
    levels = [level for level, _ in page(html_of(layout)).headings]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    assert 2 in levels


@pytest.mark.parametrize("layout", LAYOUTS)
def test_headings_reset_their_margins_and_set_a_font_size(layout: str) -> None:
    html = html_of(layout)
    tags = re.findall(r"<h[1-3] style=\"([^\"]*)\"", html)
    assert tags and all("margin:0" in s and re.search(r"font-size:\d+px", s) for s in tags)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_lead_story_comes_first_and_the_rest_in_issue_order(layout: str) -> None:
    urls = story_urls(page(html_of(layout, sections={"A": [3, 1], "B": [5, 2]})))
    assert urls == [f"https://news.example.org/story-{n}" for n in (3, 1, 5, 2)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_links_with_the_same_text_go_to_the_same_place(layout: str) -> None:
    targets: dict[str, set[str]] = {}
    for link in page(html_of(layout)).links:
        name = " ".join(link.text.split())
        assert name, f"a link without text to {link.href}"
        targets.setdefault(name, set()).add(link.href)
    assert {name: hrefs for name, hrefs in targets.items() if len(hrefs) > 1} == {}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_image_has_alt_text(layout: str) -> None:
    images = page(html_of(layout, logo_url="https://news.example.org/logo.png")).images
    assert images and all(img.get("alt", "").strip() for img in images)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_head_tells_mail_apps_the_colour_schemes_and_to_leave_text_alone(layout: str) -> None:
    head = html_of(layout).split("<body", 1)[0]
    for meta in (
        '<meta name="color-scheme" content="light dark"',
        '<meta name="supported-color-schemes" content="light dark"',
        '<meta name="x-apple-disable-message-reformatting"',
        '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no"',
    ):
        assert meta in head


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dark_mode_styles_switch_page_card_text_and_links(layout: str) -> None:
    head = html_of(layout).split("<body", 1)[0]
    dark = re.search(r"@media \(prefers-color-scheme: dark\) \{(.*?)\n\s*\}\n", head, re.S)
    assert dark is not None
    for selector in (".pg", ".cd", ".t div", ".t a"):
        assert selector in dark.group(1)
    assert "[data-ogsc] .t a" in head and "[data-ogsb] .cd" in head  # Outlook.com


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_preheader_is_hidden_without_colour_and_followed_by_filler(layout: str) -> None:
    html = html_of(layout)
    found = preheader_div(html)
    assert found is not None
    style, content = found.groups()
    assert content.startswith(PREHEADER)
    assert content.count("&#847;&zwnj;&nbsp;") >= 50
    for rule in ("display:none", "max-height:0", "overflow:hidden", "mso-hide:all"):
        assert rule in style
    assert "color" not in style  # hidden by size and display, not white on white
    assert "color:#ffffff;line-height:1px" not in html  # mj-preview's low-contrast kind


def test_no_preheader_means_no_hidden_block() -> None:
    found = preheader_div(html_of(preheader=""))
    assert found is None or "display:none" not in found.group(1)


@pytest.mark.parametrize(("font", "stack"), [("serif", "Georgia"), ("sans", "Helvetica")])
def test_body_text_uses_the_newsletters_font(font: str, stack: str) -> None:
    html = html_of(font=font)
    h1_block = html[: html.index("<h1")].rsplit("<div style=", 1)[1]
    assert f"font-family:{stack}" in h1_block


def test_the_brand_colour_marks_section_headings_and_buttons() -> None:
    html = html_of(brand_color="#0b7a3e", membership_cta=True, membership_url="https://x.example")
    assert re.search(r'<h2 style="[^"]*color:#0b7a3e;">Diplomacy</h2>', html)
    assert 'bgcolor="#0b7a3e"' in html


def test_the_confirmation_email_shares_the_head_and_preheader() -> None:
    html = compile_confirmation([newsletter()], valid_days=7).html
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "prefers-color-scheme: dark" in html
    found = preheader_div(html)
    assert found is not None and "color" not in found.group(1)


# ---------------------------------------------------------------- digest


@pytest.mark.parametrize(
    ("title", "h1"),
    [
        ("Belarus Weekly: Talks with Kyiv", "Talks with Kyiv"),
        ("belarus weekly:Talks", "Talks"),
        ("Talks with Kyiv", "Talks with Kyiv"),
        ("Belarus Weekly:", "Belarus Weekly:"),  # nothing would be left
        ("Belarus Weekly special", "Belarus Weekly special"),
    ],
)
def test_the_h1_is_the_title_without_the_newsletter_name(title: str, h1: str) -> None:
    assert page(html_of(title=title)).headings[0] == (1, h1)


def test_digest_shows_the_lead_in_its_block_with_a_full_width_hero() -> None:
    html = html_of()
    lead_block = html[html.index('class="cd lead"') :]
    lead_block = lead_block[: lead_block.index('class="cd"')]
    parsed = page(lead_block)
    assert parsed.headings == [(2, "Top story"), (3, "Headline 1")]
    assert [(img["src"], img["width"]) for img in parsed.images] == [
        ("https://images.example.org/1.jpg", "640")
    ]


def test_digest_brief_bullets_link_to_their_stories_in_order() -> None:
    bullets = [link for link in page(html_of()).links if link.cls == "bl"]
    assert [(b.href, b.text) for b in bullets] == [
        (f"https://news.example.org/story-{n}", f"Bullet of story {n}.") for n in range(1, 6)
    ]


def test_digest_read_more_links_are_named_for_their_story_and_unique() -> None:
    texts = [link.text for link in page(html_of()).links if link.text.startswith("Read more")]
    assert texts == [f"Read more: Headline {n}" for n in range(1, 6)]
    assert '<span class="sr">: Headline 1</span>' in html_of()


def test_digest_compact_stories_have_a_thumbnail_beside_them() -> None:
    images = page(html_of()).images
    assert [(img["src"], img["width"]) for img in images[1:]] == [
        (f"https://images.example.org/{n}.jpg", "150") for n in range(2, 6)
    ]
    assert html_of().count("mj-column-per-30") > 4  # a thumbnail column per compact story


def test_digest_without_story_images_shows_only_the_hero() -> None:
    images = page(html_of(story_images="none")).images
    assert [img["src"] for img in images] == ["https://images.example.org/1.jpg"]
    assert "mj-column-per-30" not in html_of(story_images="none")


def test_digest_has_one_mj_section_per_issue_section_not_per_story() -> None:
    def sections(html: str) -> int:
        return len(re.findall(r'<div class="cd[" ]', html))

    few = html_of(sections={"A": [1, 2], "B": [3]})
    many = html_of(sections={"A": [1, 2, 4, 5], "B": [3, 6, 7]})
    assert sections(few) == sections(many)


def test_digest_columns_of_one_section_start_new_rows_in_outlook() -> None:
    html = html_of(sections={"A": [1, 2, 3]})
    assert html.count("<!--[if mso | IE]></tr><tr><![endif]-->") == 2  # before stories 2, 3
    assert rendering.ROW_BREAK not in html


def test_digest_without_items_is_the_title_and_intro() -> None:
    parsed = page(html_of(sections={}))
    assert parsed.headings == [(1, "Talks with Kyiv")]
    assert story_urls(parsed) == []


# ---------------------------------------------------------------- alert


def test_alert_is_the_lead_with_a_button_and_the_rest_as_links() -> None:
    html = html_of("alert")
    parsed = page(html)
    assert parsed.headings == [(1, "Headline 1"), (2, "Also")]
    assert "Second paragraph of story 1." in html
    assert "Second paragraph of story 2." not in html
    [button] = [link for link in parsed.links if link.text.startswith("Read the full story")]
    assert (button.href, button.text) == (
        "https://news.example.org/story-1",
        "Read the full story: Headline 1",
    )
    also = [(link.href, link.text) for link in parsed.links if link.cls == "bl"]
    assert also == [(f"https://news.example.org/story-{n}", f"Headline {n}") for n in range(2, 6)]
    assert [img["src"] for img in parsed.images] == ["https://images.example.org/1.jpg"]


def test_alert_of_one_story_has_no_also_list() -> None:
    assert page(html_of("alert", sections={"A": [1]})).headings == [(1, "Headline 1")]


# ---------------------------------------------------------------- letter


def test_letter_is_text_first_with_headlines_as_links_and_no_images() -> None:
    html = html_of("letter")
    parsed = page(html)
    assert parsed.images == []
    assert [level for level, _ in parsed.headings] == [1, 2, 2, 2]
    assert "Our <strong>intro</strong>." in html
    named = [(link.href, link.text) for link in parsed.links if "/story-" in link.href]
    assert named == [(f"https://news.example.org/story-{n}", f"Headline {n}") for n in range(1, 6)]


# ---------------------------------------------------------------- the seeded issue's size


def test_the_seeded_issue_stays_within_its_html_budget_in_each_layout(session: Session) -> None:
    result = seeding.seed(session)
    issue_id = seeding.draft_sample_issue(session).id
    assert issue_id is not None
    sizes = {}
    for layout in LAYOUTS:
        result.newsletter.layout = layout
        seeded = issues.load_outline(session, issue_id)
        assert len(seeded.items) == 10
        sizes[layout] = rendering.compile_issue(seeded).html_size
    assert sizes["digest"] < DIGEST_BUDGET
    assert sizes["alert"] < SHORT_BUDGET and sizes["letter"] < SHORT_BUDGET
