"""The chrome's catalogues (``templates/locales/*.po``): every message the localised templates
and modules mark is translated in every shipped locale, keeping its placeholders and markup;
an email compiles in each locale with its chrome translated and its dates in the locale's form."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from newsletter import i18n
from newsletter.content import rendering
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter

ROOT = Path(__file__).resolve().parents[2]
#: the public pages the issue localises (the editors' admin pages stay English)
PAGES = ("layout", "subscribe", "confirm", "unsubscribe", "preferences", "archive", "message")
MODULES = (
    "newsletter/content/text_part.py",
    "newsletter/content/archive_editions.py",
    "newsletter/sending/edition_freeze.py",
    "newsletter/sending/edition_pick.py",
    "newsletter/api/links.py",
    "newsletter/audience/consent.py",
    "newsletter/api/signup.py",
    "newsletter/api/archive.py",
    "newsletter/audience/confirmations.py",
)
TRANSLATED = [locale for locale in i18n.LOCALES if locale != i18n.SOURCE]
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|</?[a-z]+>")


def _sources() -> list[tuple[Path, str]]:
    email = [
        (p, "jinja2.ext:babel_extract") for p in sorted((ROOT / "templates/email").glob("*.j2"))
    ]
    web = [(ROOT / f"templates/web/{n}.html.j2", "jinja2.ext:babel_extract") for n in PAGES]
    web.append((ROOT / "templates/web/bad_link.html.j2", "jinja2.ext:babel_extract"))
    return email + web + [(ROOT / m, "python") for m in MODULES]


def marked_messages(only: str | None = None) -> set[str]:
    """Every message id marked in the localised sources (as ``pybabel extract`` finds them);
    ``only``: in that one source (a path from the repository's root)."""
    found: set[str] = set()
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    for path, method in _sources():
        if only is not None and path != ROOT / only:
            continue
        with path.open("rb") as source:
            for _line, message, _comments, _context in extract(
                method,
                source,
                keywords={"_": None, "N_": None, "gettext": None},
                options=options if method != "python" else {},
            ):
                found.add(str(message))
    return found


def catalogue(locale: str) -> dict[str, str]:
    with (i18n.LOCALES_DIR / f"{locale}.po").open("rb") as po:
        return {str(m.id): str(m.string) for m in read_po(po) if m.id}


def test_the_sources_mark_the_chrome_for_translation() -> None:
    marked = marked_messages()
    assert {"Read more", "View in browser", "Unsubscribe", "Manage preferences"} <= marked
    assert len(marked) > 50


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_catalogue_translates_every_message_and_no_other(locale: str) -> None:
    marked, translated = marked_messages(), catalogue(locale)
    assert sorted(marked - set(translated)) == [], f"{locale}: messages not in the catalogue"
    assert sorted(set(translated) - marked) == [], f"{locale}: catalogue messages no source marks"
    assert [m for m, s in translated.items() if not s.strip()] == []
    assert [m for m, s in translated.items() if s == m and len(m) > 8] == []  # not copied over


@pytest.mark.parametrize("locale", TRANSLATED)
def test_a_translation_keeps_its_placeholders_and_markup(locale: str) -> None:
    for message, text in catalogue(locale).items():
        assert sorted(_PLACEHOLDER.findall(text)) == sorted(_PLACEHOLDER.findall(message)), (
            f"{locale}: {message!r} -> {text!r}"
        )


def outline(language: str) -> IssueOutline:
    nl = Newsletter(
        id=1,
        slug="weekly",
        name="Belarus Weekly",
        from_name="BW",
        from_email="w@example.org",
        postal_address="12 Sample Street, Warsaw",
        language="en",
        membership_cta=True,
        membership_url="https://news.example.org/join",
    )
    issue = Issue(
        id=1,
        newsletter_id=1,
        number=7,
        title="This week",
        subject="Minsk talks",
        created_at=datetime(2025, 10, 19, 8, tzinfo=UTC),
    )
    section = IssueSection(id=1, issue_id=1, title="News", position=0)
    items = [
        OutlineItem(
            IssueItem(id=n, section_id=1, article_id=n, position=n),
            Article(
                id=n,
                url=f"https://news.example.org/{n}",
                title=f"Story {n}",
                summary="One. Two.",
                author="Olga Varabei",
                published_at=datetime(2025, 10, 19, tzinfo=UTC),
            ),
        )
        for n in (1, 2)
    ]
    return IssueOutline(nl, issue, [OutlineSection(section, items)], language=language)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_an_email_compiles_with_its_chrome_in_each_locale(locale: str) -> None:
    compiled = rendering.compile_issue(outline(locale))
    words = catalogue(locale)
    for message in (
        "Read more",
        "View in browser",
        "Unsubscribe",
        "Manage preferences",
        "Top story",
        "In brief",
        "Become a member",
    ):
        assert words[message] in compiled.html, f"{locale}: {message}"
        assert message not in compiled.html.replace("Belarus Weekly", "")
    for message in ("Read more", "View in browser", "Unsubscribe", "Manage preferences"):
        assert words[message] in compiled.text
    with i18n.use(locale):
        assert i18n.long_date(datetime(2025, 10, 19)) in compiled.html  # the locale's date
    assert "Oct. 19, 2025" not in compiled.html
    assert f'lang="{locale}"' in compiled.html


def test_english_keeps_its_wire_service_dates_and_words() -> None:
    compiled = rendering.compile_issue(outline("en"))
    assert "Oct. 19, 2025" in compiled.html and "Read more" in compiled.html
