"""Tests for newsletter.content.text_part: Markdown as text, wrapping at 76 columns with URLs
whole, the "-- " footer, no photo credits, placeholders intact, and each layout's order."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from newsletter import seeding
from newsletter.content import issues, rendering
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.content.rendering import PLACEHOLDERS
from newsletter.content.text_part import WIDTH, display_title, markdown_text, wrap
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter

LIMIT = 78  # the issue's promise: no line over 78 characters except URLs
LAYOUTS = ("digest", "alert", "letter")
URLISH = re.compile(r"https?://|mailto:|__NL_[A-Z_]+__")
MARKDOWN_LEFTOVERS = re.compile(r"\*\*|__|\[[^\]]*\]\([^)]*\)|^\s*#", re.M)
PLACEHOLDER = re.compile(r"__NL_[A-Z_]+__")
LONG_URL = "https://news.example.org/2025/10/" + "a-very-long-slug-" * 6 + "end"
CYRILLIC = (
    "Беларускія палітвязні, вызваленыя ў верасні, распавялі пра жыццё ў "
    "эміграцыі: дакументы, лячэнне і жыллё засталіся галоўнымі клопатамі."  # noqa: RUF001
)


def too_long(text: str) -> list[str]:
    """Lines over the limit that are not one URL (or placeholder), standing alone or after its
    list item's marker ("- ", "12. "): the issue allows URLs over the limit."""
    return [
        line
        for line in text.splitlines()
        if len(line) > LIMIT
        and not (
            _MARKER.sub("", line, count=1).split() == [line.split()[-1]]
            and URLISH.search(line.split()[-1])
        )
    ]


_MARKER = re.compile(r"^\s*(?:-|\d+\.)\s+")


def markdown_leftovers(text: str) -> list[str]:
    """Bold and emphasis markers, [text](url) links and heading hashes (placeholders aside)."""
    return MARKDOWN_LEFTOVERS.findall(PLACEHOLDER.sub("", text))


# ---------------------------------------------------------------- in-memory outlines


def newsletter(**overrides: Any) -> Newsletter:
    values: dict[str, Any] = {
        "id": 1,
        "slug": "weekly",
        "name": "Belarus Weekly",
        "from_name": "Belarus Weekly",
        "from_email": "weekly@news.example.org",
        "postal_address": "Example News Ltd, 12 Sample Street, Warsaw",
        "footer_text": "You get this because you signed up at news.example.org.",
        "membership_cta": True,
        "membership_url": "https://news.example.org/membership",
        "membership_text": "Members keep our reporters working.",
    }
    return Newsletter(**(values | overrides))


def article(n: int, **overrides: Any) -> Article:
    values: dict[str, Any] = {
        "id": n,
        "url": f"https://news.example.org/2025/10/story-{n}",
        "title": f"Headline number {n}",
        "summary": f"Opening sentence of story {n}. A second sentence follows.",
        "image_url": f"https://images.example.org/{n}.jpg",
        "image_alt": f"Alt text {n}",
        "image_credit": f"Photo: Agency {n}",
        "author": f"Author {n}",
        "published_at": datetime(2025, 10, 19, 8, 0, tzinfo=UTC),
    }
    return Article(**(values | overrides))


def outline(
    sections: dict[str, list[Article]],
    *,
    nl: Newsletter | None = None,
    blurbs: dict[int, str] | None = None,
    **issue_fields: Any,
) -> IssueOutline:
    fields: dict[str, Any] = {"title": "Belarus Weekly: talks with Kyiv", "number": 7}
    issue = Issue(
        id=1,
        newsletter_id=1,
        created_at=datetime(2025, 10, 20, tzinfo=UTC),
        **(fields | issue_fields),
    )
    built, item_id = [], 0
    for position, (title, articles) in enumerate(sections.items()):
        section = IssueSection(id=position + 1, issue_id=1, title=title, position=position)
        items = []
        for index, art in enumerate(articles):
            item_id, n = item_id + 1, art.id or 0
            blurb = (blurbs or {}).get(n)
            item = IssueItem(
                id=item_id, section_id=position + 1, article_id=n, position=index, blurb=blurb
            )
            items.append(OutlineItem(item, art))
        built.append(OutlineSection(section, items))
    return IssueOutline(nl or newsletter(), issue, built)


def text_of(layout: str = "digest", **kwargs: Any) -> str:
    sections = kwargs.pop("sections", None) or {
        "Politics": [article(1), article(2)],
        "Culture": [article(3)],
    }
    nl = kwargs.pop("nl", None) or newsletter(layout=layout)
    return rendering.compile_issue(outline(sections, nl=nl, **kwargs)).text


def positions(text: str, *needles: str) -> list[int]:
    found = [text.find(n) for n in needles]
    assert -1 not in found, dict(zip(needles, found, strict=True))
    return found


# ---------------------------------------------------------------- the seeded issue


def test_the_seeded_issue_reads_clean_in_every_layout(session: Session) -> None:
    seeding.seed(session)
    issue = seeding.draft_sample_issue(session)
    loaded = issues.load_outline(session, issue.id)  # type: ignore[arg-type]
    credits = [i.article.image_credit for i in loaded.items if i.article.image_credit]
    assert "**" in issue.intro_md and "](" in issue.intro_md  # the seed still has Markdown
    assert len(credits) == len(loaded.items)
    for layout in LAYOUTS:
        loaded.newsletter.layout = layout
        text = rendering.compile_issue(loaded).text
        assert markdown_leftovers(text) == [], layout
        assert too_long(text) == [], layout
        assert not [c for c in credits if c in text], layout
        assert "\n-- \n" in text, layout
        assert "dialogue with Kyiv" in text  # was **dialogue with Kyiv**
        assert "Belarus page <https://news.example.org/belarus>" in text, layout
        for field in ("view_url", "greeting", "preferences_url", "unsubscribe_url"):
            assert text.count(PLACEHOLDERS[field]) == 1, (layout, field)
        assert text.count("Belarus Weekly:") == 0  # the title without the name again


# ---------------------------------------------------------------- Markdown as text


def test_emphasis_markers_are_removed() -> None:
    assert markdown_text("Some **bold**, __strong__, *em* and `code`.") == (
        "Some bold, strong, em and code."
    )


def test_a_link_reads_text_then_its_url_in_angle_brackets() -> None:
    text = markdown_text("See [our Belarus page](https://news.example.org/belarus) today.")
    assert text == "See our Belarus page <https://news.example.org/belarus> today."


def test_a_link_whose_text_is_its_address_shows_it_once() -> None:
    assert markdown_text("<https://news.example.org/x> or <desk@example.org>") == (
        "https://news.example.org/x or desk@example.org"
    )


def test_a_link_to_no_web_or_mail_address_keeps_only_its_text() -> None:
    assert markdown_text("[click](javascript:alert(1)) and [here](/relative)") == "click and here"


def test_headings_lose_their_hashes() -> None:
    assert markdown_text("# Top\n\n## Second level\n\nBody.") == "Top\n\nSecond level\n\nBody."


def test_raw_html_is_left_out_but_its_text_stays() -> None:
    text = markdown_text("Inline <b>bold</b> tag.\n\n<div>Block <i>html</i> &amp; more</div>")
    assert text == "Inline bold tag.\n\nBlock html & more"
    assert "alert" not in markdown_text("<script>alert(1)</script>")


def test_bullet_lists_have_dash_items_with_a_hanging_indent() -> None:
    words = " ".join(["word"] * 30)
    lines = markdown_text(f"Before:\n\n- {words}\n- short\n\nAfter.").splitlines()
    assert lines[:2] == ["Before:", ""]
    assert lines[2].startswith("- word") and lines[3].startswith("  word")
    assert lines[4] == "- short"
    assert lines[-2:] == ["", "After."]


def test_ordered_lists_keep_their_numbers_and_nested_lists_indent() -> None:
    assert markdown_text("3. three\n4. four\n   - nested").splitlines() == [
        "3. three",
        "4. four",
        "   - nested",
    ]


def test_a_hard_break_starts_a_new_line() -> None:
    assert markdown_text("first  \nsecond") == "first\nsecond"


# ---------------------------------------------------------------- wrapping


def test_text_wraps_at_76_columns() -> None:
    lines = wrap(" ".join(["newsletter"] * 40))
    assert max(len(line) for line in lines) <= WIDTH and len(lines) > 1


def test_a_long_url_stands_alone_on_its_line_unbroken() -> None:
    lines = wrap(f"Read the story at {LONG_URL} and tell us.")
    assert lines == ["Read the story at", LONG_URL, "and tell us."]


def test_a_long_word_that_is_no_url_is_broken() -> None:
    lines = wrap("x" * 200)
    assert [len(line) for line in lines] == [76, 76, 48]


def test_a_placeholder_is_never_split() -> None:
    lines = wrap("y" * 70 + " " + PLACEHOLDERS["unsubscribe_url"], width=20)
    assert PLACEHOLDERS["unsubscribe_url"] in lines


def test_cyrillic_text_wraps_by_characters_not_bytes() -> None:
    lines = wrap(CYRILLIC * 3)
    assert all(len(line) <= WIDTH for line in lines)
    assert max(len(line) for line in lines) > 60  # bytes would have wrapped near 38


_word = st.one_of(
    st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), min_size=1, max_size=12),
    st.text("abcабв", min_size=60, max_size=120),  # noqa: RUF001 - long words, two scripts
    st.builds(lambda s: f"https://example.org/{s}", st.text("abz-/", max_size=120)),
    st.sampled_from(list(PLACEHOLDERS.values())),
)


@settings(max_examples=100, deadline=None)
@given(words=st.lists(_word, min_size=1, max_size=40), marker=st.sampled_from(["", "- ", "12. "]))
def test_wrapping_keeps_every_character_and_breaks_only_words_that_are_no_url(
    words: list[str], marker: str
) -> None:
    text = " ".join(words)
    lines = wrap(text, marker, " " * len(marker))
    assert "".join("".join(lines).split()) == marker.strip() + "".join(text.split())
    assert too_long("\n".join(lines)) == []
    for url in (w for w in words if URLISH.match(w)):
        assert any(url in line.split() for line in lines)


# ---------------------------------------------------------------- the issue's text


def test_photo_credits_are_left_out() -> None:
    assert "Photo: Agency" not in text_of()


def test_the_footer_follows_a_dash_dash_space_separator() -> None:
    text = text_of()
    body, footer = text.split("\n-- \n")
    assert "You get this because you signed up" in footer and "Unsubscribe:" in footer
    assert "Unsubscribe:" not in body and "Headline number" not in footer


def test_the_separator_survives_the_quoted_printable_message() -> None:
    compiled = rendering.compile_issue(outline({"Politics": [article(1)]}))
    template = MessageTemplate(compiled=compiled, newsletter=newsletter(), issue_id=1, secret="s")
    values = dict.fromkeys(PLACEHOLDERS, "https://news.example.org/p")
    person = Recipient(1, "eve@example.org", "Eve", values, "https://u.example/1", "mailto:u@x")
    parsed = email.message_from_bytes(template.render(person)[1], policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text_part = next(iter(parsed.iter_parts()))
    assert "\r\n-- \r\n" in str(text_part.get_content())


def test_the_title_does_not_repeat_the_newsletter_name() -> None:
    head = text_of().split(PLACEHOLDERS["greeting"])[0]
    assert head.lower().count("belarus weekly") == 1
    assert "\ntalks with Kyiv\n" in head


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Belarus Weekly: talks", "talks"),
        ("belarus weekly - talks", "talks"),
        ("Belarus Weekly", ""),
        ("Talks in Belarus Weekly", "Talks in Belarus Weekly"),
        ("Belarus Weeklyish: no", "Belarus Weeklyish: no"),
    ],
)
def test_display_title(title: str, shown: str) -> None:
    assert display_title("Belarus Weekly", title) == shown


def test_stories_are_apart_by_a_blank_line() -> None:
    text = text_of(sections={"Politics": [article(1), article(2), article(3)]})
    assert "story-2\n\nHeadline number 3\n" in text


def test_markdown_in_the_intro_and_a_blurb_is_rendered_as_text() -> None:
    text = text_of(
        intro_md="We **mean** it: see [the page](https://news.example.org/p).",
        blurbs={
            2: "A *quoted* claim, [sourced](https://example.org/s).\n\n- one\n- two",
            3: "**Talks ended. Both sides left.**",  # its first sentence cuts the bold span
        },
    )
    assert "We mean it: see the page <https://news.example.org/p>." in text
    brief = text.split("IN BRIEF\n")[1].split("\n\n")[0]
    assert brief.splitlines()[1:] == [
        "- A quoted claim, sourced <https://example.org/s>.",
        "- Talks ended.",
    ]
    assert "A quoted claim, sourced <https://example.org/s>.\n\n- one\n- two\n" in text
    assert markdown_leftovers(text) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_long_words_long_urls_and_cyrillic_stay_within_the_limit(layout: str) -> None:
    sections = {
        "Палітыка": [
            article(1, title=CYRILLIC, summary=f"**{CYRILLIC}** {'ы' * 120}"),
            article(2, url=LONG_URL, bullet=CYRILLIC, title="Short"),
        ]
    }
    text = text_of(layout, sections=sections, intro_md=f"[{CYRILLIC}]({LONG_URL})")
    assert too_long(text) == []
    assert markdown_leftovers(text) == []
    assert LONG_URL in text.splitlines() or f"<{LONG_URL}>" in text.splitlines()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_placeholders_survive_intact_and_personalise(layout: str) -> None:
    text = text_of(layout)
    shown = {"view_url", "greeting", "preferences_url", "unsubscribe_url"}
    for field, token in PLACEHOLDERS.items():
        assert text.count(token) == (1 if field in shown else 0), field
    filled = rendering.Personaliser(text, html_escape=False)({"view_url": LONG_URL})
    assert f"View in browser: {LONG_URL}\n" in filled and "__NL_" not in filled


def test_digest_has_the_lead_story_then_the_brief_then_the_sections() -> None:
    """The HTML's order: the lead story, the brief, then each section's other stories."""
    text = text_of("digest")
    order = positions(
        text,
        "TOP STORY",
        "Headline number 1",
        "IN BRIEF",
        "POLITICS",
        "Headline number 2",
        "CULTURE",
        "Headline number 3",
    )
    assert order == sorted(order)
    assert text.count("Headline number 1") == 1  # not again in its section
    assert "Opening sentence of story 3. A second sentence follows." in text


def test_digest_leaves_out_a_section_the_lead_story_emptied() -> None:
    text = text_of("digest", sections={"Top": [article(1)], "Culture": [article(2)]})
    assert "\nTOP\n" not in text and "\nCULTURE\n" in text


def test_alert_is_the_one_story_with_the_others_as_an_also_list() -> None:
    text = text_of("alert")
    assert "Opening sentence of story 1." in text
    assert "Opening sentence of story 2." not in text and "IN BRIEF" not in text
    also = text.split("\nALSO\n")[1].split("\n\n")[0]
    assert also.splitlines() == [
        "- Headline number 2 <https://news.example.org/2025/10/story-2>",
        "- Headline number 3 <https://news.example.org/2025/10/story-3>",
    ]
    lead_first = positions(text, "Headline number 1", "ALSO")
    assert lead_first == sorted(lead_first)


def test_letter_has_the_intro_as_its_body_then_the_stories_listed() -> None:
    text = text_of("letter", intro_md="Dear readers,\n\nThis week I went to *Vilnius*.")
    body = positions(text, PLACEHOLDERS["greeting"], "This week I went to Vilnius.", "ALSO")
    assert body == sorted(body)
    assert "- Headline number 1 <https://news.example.org/2025/10/story-1>" in text
    assert "Opening sentence of story" not in text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_welcome_issue_has_no_number_or_date_and_needs_no_story(layout: str) -> None:
    text = text_of(
        layout, sections={"Welcome": []}, kind="welcome", title="Welcome!", intro_md="Hi **you**."
    )
    assert text.startswith("BELARUS WEEKLY - Welcome\n")
    assert "Hi you." in text and "\n-- \n" in text and "Oct." not in text
