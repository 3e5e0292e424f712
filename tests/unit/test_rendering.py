"""Tests for newsletter.content.rendering: compiled content, escaping, personalising, render
errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content import rendering
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue, Personaliser
from newsletter.exceptions import RenderError
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter
from newsletter.sending import prepare, recipients
from newsletter.sending.start import fill_ledger
from tests.conftest import make_issue, make_subscribers

POSTAL = "Example News Ltd, 12 Sample Street, Warsaw"


def _newsletter() -> Newsletter:
    return Newsletter(
        id=1,
        slug="weekly",
        name="Belarus Weekly",
        from_name="Belarus Weekly",
        from_email="weekly@news.example.org",
        postal_address=POSTAL,
        description="You get this because you signed up.",
        website_url="https://news.example.org",
        membership_url="https://news.example.org/membership",
    )


def _article(n: int, **overrides: Any) -> Article:
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
    values.update(overrides)
    return Article(**values)


def _outline(sections: dict[str, list[Article]], **issue_fields: Any) -> IssueOutline:
    """An in-memory outline: compile_issue needs no database."""
    issue = Issue(
        id=1,
        newsletter_id=1,
        number=7,
        title="This week in Belarus",
        created_at=datetime(2025, 10, 20, tzinfo=UTC),
        **issue_fields,
    )
    outline_sections, item_id = [], 0
    for position, (title, articles) in enumerate(sections.items()):
        section = IssueSection(id=position + 1, issue_id=1, title=title, position=position)
        items = []
        for index, article in enumerate(articles):
            item_id += 1
            item = IssueItem(
                id=item_id, section_id=section.id, article_id=article.id, position=index
            )
            items.append(OutlineItem(item, article))
        outline_sections.append(OutlineSection(section, items))
    return IssueOutline(_newsletter(), issue, outline_sections)


@pytest.fixture(scope="module")
def compiled() -> CompiledIssue:
    return rendering.compile_issue(
        _outline({"Politics": [_article(1), _article(2)], "Culture": [_article(3)]})
    )


# ---------------------------------------------------------------- compiled HTML


@pytest.mark.parametrize("n", [1, 2, 3])
def test_html_contains_each_headline(compiled: CompiledIssue, n: int) -> None:
    assert f">Headline number {n}</a>" in compiled.html


@pytest.mark.parametrize("n", [1, 2, 3])
def test_html_contains_each_image_with_its_alt(compiled: CompiledIssue, n: int) -> None:
    img = re.search(rf'<img [^>]*src="https://images\.example\.org/{n}\.jpg"[^>]*>', compiled.html)
    assert img is not None
    assert f'alt="Alt text {n}"' in img.group(0)


def test_html_credits_the_lead_photo_only(compiled: CompiledIssue) -> None:
    # the hero is the one photo shown large; thumbnails go uncredited, as in most digests
    assert '<span class="m">Photo: Agency 1</span>' in compiled.html
    assert "Photo: Agency 2" not in compiled.html and "Photo: Agency 3" not in compiled.html


@pytest.mark.parametrize("n", [1, 2, 3])
def test_html_contains_each_byline_with_date(compiled: CompiledIssue, n: int) -> None:
    assert f"By Author {n} &middot; Oct. 19, 2025" in compiled.html


@pytest.mark.parametrize("n", [1, 2, 3])
def test_html_has_a_read_more_link_to_each_story_named_for_it(
    compiled: CompiledIssue, n: int
) -> None:
    url = f"https://news.example.org/2025/10/story-{n}"
    named = f'Read more<span class="sr">: Headline number {n}</span></a>'
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>{re.escape(named)}', compiled.html)


def test_html_contains_section_titles_as_h2(compiled: CompiledIssue) -> None:
    # shown in capitals by CSS (text-transform), so a screen reader reads the words
    assert re.search(r"<h2 [^>]*text-transform:uppercase[^>]*>Politics</h2>", compiled.html)
    assert re.search(r"<h2 [^>]*>Culture</h2>", compiled.html)


def test_html_lists_each_summary_bullet_in_order_linked_to_its_story(
    compiled: CompiledIssue,
) -> None:
    linked = r'<li[^>]*><a class="bl" href="([^"]+)"[^>]*>(.*?)</a></li>'
    bullets = re.findall(linked, compiled.html)
    assert bullets == [
        (f"https://news.example.org/2025/10/story-{n}", f"Opening sentence of story {n}.")
        for n in (1, 2, 3)
    ]


def test_html_contains_the_postal_address(compiled: CompiledIssue) -> None:
    assert f"Belarus Weekly &middot; {POSTAL}" in compiled.html


@pytest.mark.parametrize("field", ["unsubscribe_url", "preferences_url", "view_url"])
def test_html_links_to_per_recipient_placeholders(compiled: CompiledIssue, field: str) -> None:
    assert f'href="{PLACEHOLDERS[field]}"' in compiled.html


def test_placeholders_are_not_reported_as_links(compiled: CompiledIssue) -> None:
    assert not any(link.startswith("__NL_") for link in compiled.links())
    assert "https://news.example.org/2025/10/story-1" in compiled.links()


# ---------------------------------------------------------------- compiled text


@pytest.mark.parametrize("n", [1, 2, 3])
def test_text_contains_each_headline_on_its_own_line(compiled: CompiledIssue, n: int) -> None:
    assert f"\nHeadline number {n}\n" in compiled.text


@pytest.mark.parametrize("n", [1, 2, 3])
def test_text_contains_each_story_url(compiled: CompiledIssue, n: int) -> None:
    assert f"Read more: https://news.example.org/2025/10/story-{n}\n" in compiled.text


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("Unsubscribe", "unsubscribe_url"),
        ("Manage preferences", "preferences_url"),
        ("View in browser", "view_url"),
    ],
)
def test_text_has_per_recipient_placeholders(
    compiled: CompiledIssue, label: str, field: str
) -> None:
    assert f"{label}: {PLACEHOLDERS[field]}\n" in compiled.text


def test_text_contains_the_postal_address(compiled: CompiledIssue) -> None:
    assert f"Belarus Weekly, {POSTAL}\n" in compiled.text


def test_text_lists_each_summary_bullet(compiled: CompiledIssue) -> None:
    brief = compiled.text.split("IN BRIEF\n")[1].split("\n\n")[0]
    assert re.findall(r"^- (.*)$", brief, re.M) == [
        f"Opening sentence of story {n}." for n in (1, 2, 3)
    ]


# ---------------------------------------------------------------- escaping

EVIL = "Vote <script>alert(1)</script> & more"


@pytest.fixture(scope="module")
def evil() -> CompiledIssue:
    return rendering.compile_issue(_outline({"Politics": [_article(1, title=EVIL)]}))


def test_html_escapes_markup_in_a_headline(evil: CompiledIssue) -> None:
    assert "Vote &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in evil.html
    assert "<script>" not in evil.html


def test_text_keeps_a_headline_verbatim(evil: CompiledIssue) -> None:
    assert f"\n{EVIL}\n" in evil.text
    assert "&lt;" not in evil.text and "&amp;" not in evil.text


def test_raw_html_in_intro_markdown_is_not_passed_through() -> None:
    compiled = rendering.compile_issue(
        _outline({"Politics": [_article(1)]}, intro_md="Hello <script>alert(1)</script> *all*")
    )
    assert "<script>" not in compiled.html
    assert "<em>all</em>" in compiled.html


def test_article_bullet_is_used_in_the_summary_list() -> None:
    compiled = rendering.compile_issue(
        _outline({"Politics": [_article(1, bullet="Editors' one-line digest."), _article(2)]})
    )
    assert re.findall(r'<li[^>]*><a class="bl"[^>]*>(.*?)</a></li>', compiled.html) == [
        "Editors&#39; one-line digest.",
        "Opening sentence of story 2.",
    ]


# ---------------------------------------------------------------- Personaliser

NAME = '<b>Eve & "Co"</b>'


def test_personaliser_fills_every_placeholder() -> None:
    fill = Personaliser(
        "Hi __NL_NAME__ (__NL_EMAIL__), leave: __NL_UNSUBSCRIBE_URL__", html_escape=False
    )
    out = fill({"name": "Eve", "email": "eve@example.org", "unsubscribe_url": "https://u/1"})
    assert out == "Hi Eve (eve@example.org), leave: https://u/1"


def test_personaliser_html_escapes_values() -> None:
    fill = Personaliser("<p>__NL_NAME__</p>", html_escape=True)
    assert fill({"name": NAME}) == "<p>&lt;b&gt;Eve &amp; &quot;Co&quot;&lt;/b&gt;</p>"


def test_personaliser_leaves_text_values_unescaped() -> None:
    fill = Personaliser("Hi __NL_NAME__!", html_escape=False)
    assert fill({"name": NAME}) == f"Hi {NAME}!"


def test_personaliser_fills_a_missing_value_with_empty_string() -> None:
    assert Personaliser("[__NL_EMAIL__]", html_escape=True)({}) == "[]"


def test_personaliser_refuses_unknown_fields() -> None:
    with pytest.raises(RenderError, match=r"unknown per-recipient fields: \['nope'\]"):
        Personaliser("x __NL_NOPE__ y", html_escape=True)


def test_personalise_escapes_html_part_only(compiled: CompiledIssue) -> None:
    values = dict.fromkeys(PLACEHOLDERS, "")
    values["greeting"] = f"Dear {NAME},"
    html_out, text_out = rendering.personalise(compiled, values)
    assert "Dear &lt;b&gt;Eve &amp; &quot;Co&quot;&lt;/b&gt;," in html_out
    assert f"\nDear {NAME},\n" in text_out
    assert "__NL_" not in html_out and "__NL_" not in text_out


# ---------------------------------------------------------------- compile once


def test_rendering_for_many_recipients_does_not_compile_mjml_again(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real: Callable[..., Any] = rendering.mjml2html

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rendering, "mjml2html", counting)
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 30)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    assert len(calls) == 1  # compiled once, when the send started
    prep = prepare.prepared(session, fx.issue.id, settings)  # type: ignore[arg-type]
    rendered = [
        prep.template.render(
            recipients.recipient(
                settings,
                prep,
                subscriber_id=p.id,
                email=p.email,
                name=p.name,  # type: ignore[arg-type]
            )
        )
        for p in people
    ]
    assert len({mid for mid, _ in rendered}) == 30
    assert len(calls) == 1


# ---------------------------------------------------------------- render errors


def test_broken_mjml_raises_render_error_naming_the_template() -> None:
    with pytest.raises(RenderError, match=r"email/x\.mjml\.j2"):
        rendering.compile_mjml("<mjml><mj-body><mj-sectio></mjml>", template="email/x.mjml.j2")


def test_undefined_template_variable_raises_render_error_naming_the_template() -> None:
    with pytest.raises(RenderError, match=r"email/issue\.mjml\.j2.*undefined"):
        rendering.render_template("email/issue.mjml.j2", {})


# ---------------------------------------------------------------- first sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Talks ended. Both sides left.", "Talks ended."),
        (
            "The U.S. State Department objected. Minsk did not reply.",
            "The U.S. State Department objected.",
        ),
        (
            "Protests are planned for Oct. Police say they are ready. Few believe it.",
            "Protests are planned for Oct. Police say they are ready.",
        ),
        (
            "The trial opens on Oct. 19 in Minsk. Lawyers object.",
            "The trial opens on Oct. 19 in Minsk.",
        ),
        ("Dr. Ivanova spoke. Then she left.", "Dr. Ivanova spoke."),
        ("Is it over? Nobody knows.", "Is it over?"),
        ('He said "No." Then he left.', 'He said "No."'),
        ("No full stop at all", "No full stop at all"),
        ("First paragraph only\n\nSecond. Paragraph.", "First paragraph only"),
        ("", ""),
    ],
)
def test_first_sentence(text: str, expected: str) -> None:
    assert rendering._first_sentence(text) == expected
