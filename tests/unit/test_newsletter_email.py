"""The issue email uses the newsletter's settings: logo, masthead, "why you get this" footer,
the membership call-to-action only when on, ``<html lang>``, and the date in its time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from newsletter.content import rendering
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter

LOGO = "https://news.example.org/static/evening-logo.png"


def newsletter(**overrides: Any) -> Newsletter:
    values: dict[str, Any] = {
        "id": 1,
        "slug": "evening",
        "name": "Minsk Evening",
        "from_name": "Minsk Evening",
        "from_email": "evening@news.example.org",
        "postal_address": "Example News Ltd, Warsaw",
        "description": "About: a weekday briefing on the capital.",
        "footer_text": "You get this because you asked for it at news.example.org.",
        "website_url": "https://news.example.org",
        "membership_url": "https://news.example.org/join",
        "membership_text": "Members keep our reporters working.",
        "membership_button": "Join the members",
    }
    values.update(overrides)
    return Newsletter(**values)


def compiled(nl: Newsletter, *, created: datetime | None = None) -> rendering.CompiledIssue:
    issue = Issue(
        id=1,
        newsletter_id=1,
        number=3,
        title="Evening news",
        created_at=created or datetime(2025, 10, 20, 12, 0, tzinfo=UTC),
    )
    article = Article(
        id=1,
        url="https://news.example.org/2025/10/story",
        title="A story",
        summary="One sentence. Another.",
    )
    section = IssueSection(id=1, issue_id=1, title="Top", position=0)
    item = IssueItem(id=1, section_id=1, article_id=1, position=0)
    outline = IssueOutline(nl, issue, [OutlineSection(section, [OutlineItem(item, article)])])
    return rendering.compile_issue(outline)


def test_the_logo_replaces_the_name_in_the_header_and_links_to_the_website() -> None:
    html = compiled(newsletter(logo_url=LOGO)).html
    img = re.search(rf'<img [^>]*src="{re.escape(LOGO)}"[^>]*>', html)
    assert img is not None and 'alt="Minsk Evening"' in img.group(0)
    assert 'href="https://news.example.org"' in html
    without = compiled(newsletter()).html
    assert LOGO not in without
    assert ">Minsk Evening</a>" in without


def test_the_masthead_is_under_the_name_in_html_and_text() -> None:
    email = compiled(newsletter(masthead="Minsk after dark, every weekday"))
    assert "Minsk after dark, every weekday" in email.html
    assert "Minsk after dark, every weekday" in email.text.splitlines()[1]
    plain = compiled(newsletter(masthead=""))
    assert plain.text.splitlines()[1].startswith("View in browser")


def test_the_footer_says_why_you_get_this_and_not_the_about_text() -> None:
    email = compiled(newsletter())
    for part in (email.html, email.text):
        assert "You get this because you asked for it at news.example.org." in part
        assert "About: a weekday briefing" not in part


def test_the_membership_call_to_action_shows_only_when_on() -> None:
    on = compiled(newsletter(membership_cta=True))
    assert "Members keep our reporters working." in on.html
    assert re.search(r'href="https://news.example.org/join"[^>]*>\s*Join the members', on.html)
    assert "Join the members: https://news.example.org/join" in on.text

    off = compiled(newsletter(membership_cta=False))
    for part in (off.html, off.text):
        assert "Members keep our reporters working." not in part
        assert "https://news.example.org/join" not in part


def test_html_lang_is_the_newsletter_language() -> None:
    assert re.search(r'<html[^>]* lang="be"', compiled(newsletter(language="be")).html)
    assert re.search(r'<html[^>]* lang="en"', compiled(newsletter()).html)


def test_the_issue_date_is_in_the_newsletter_time_zone() -> None:
    late = datetime(2025, 10, 19, 22, 30, tzinfo=UTC)  # already the 20th in Minsk (UTC+3)
    assert "Oct. 20, 2025" in compiled(newsletter(time_zone="Europe/Minsk"), created=late).text
    assert "Oct. 19, 2025" in compiled(newsletter(time_zone="UTC"), created=late).text
