"""The public pages in every shipped locale (issue 16, part 4), on SQLite and PostgreSQL: sign-up,
confirm, unsubscribe, preferences and the archive render in each with no English chrome left;
a reader's own language wins over the browser's; the archive serves each edition of an issue."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter import i18n
from newsletter.audience.links import make_confirm_token
from newsletter.config import Settings
from newsletter.models import Newsletter, Subscriber, SubscriptionStatus
from newsletter.sending.recipients import personal_links
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.editions_support import TEXT, issue_with_editions, speaking
from tests.integration.public_support import client, outbox, path_of
from tests.integration.send_support import send_issue
from tests.unit.test_locales import catalogue

__all__ = ["client", "outbox"]  # fixtures
TRANSLATED = [locale for locale in i18n.LOCALES if locale != i18n.SOURCE]


def visible_text(html: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", body))


def english_left(html: str, locale: str) -> list[str]:
    """The catalogue's English messages (the ones without values) still on the page."""
    text = " ".join(visible_text(html).split())
    messages = [m for m in catalogue(locale) if "%(" not in m and "<" not in m and len(m) > 4]
    return [m for m in messages if re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text)]


def reader_pages(settings: Settings, nl: Newsletter, reader: Subscriber) -> dict[str, str]:
    links = personal_links(settings, subscriber_id=reader.id, newsletter_id=nl.id)  # type: ignore[arg-type]
    confirm = make_confirm_token(
        settings.secret_key,
        subscriber_id=reader.id,  # type: ignore[arg-type]
        newsletter_ids=[nl.id],  # type: ignore[list-item]
        source="form",
        consent_text_version=settings.consent_text_version,
    )
    return {
        "confirm": f"/confirm/{confirm}",
        "unsubscribe": path_of(links["unsubscribe_url"]),
        "preferences": path_of(links["preferences_url"]),
    }


def test_every_page_renders_in_every_locale_with_no_english_left(
    session: Session,
    settings: Settings,
    client: TestClient,
) -> None:
    nl = make_newsletter(session)
    reader = make_subscribers(session, nl, 1, status=SubscriptionStatus.pending)[0]
    for locale in TRANSLATED:
        speaking(session, [reader], [locale])
        paths = reader_pages(settings, nl, reader)
        paths |= {"subscribe": f"/subscribe?lang={locale}", "archive": f"/archive?lang={locale}"}
        paths["archive of one"] = f"/archive/{nl.slug}?lang={locale}"
        for name, path in paths.items():
            response = client.get(path)
            assert response.status_code == 200, (locale, name)
            assert f'<html lang="{locale}">' in response.text, (locale, name)
            assert english_left(response.text, locale) == [], (locale, name)
        done = client.post(paths["unsubscribe"])  # a form's answer too
        assert f'<html lang="{locale}">' in done.text and english_left(done.text, locale) == []


def test_a_readers_language_wins_over_the_browsers(
    session: Session,
    settings: Settings,
    client: TestClient,
) -> None:
    nl = make_newsletter(session)
    reader = make_subscribers(session, nl, 1)[0]
    paths = reader_pages(settings, nl, reader)
    browser = {"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}
    assert '<html lang="pl">' in client.get(paths["preferences"], headers=browser).text
    speaking(session, [reader], ["be-BY"])
    page = client.get(paths["preferences"], headers=browser).text
    assert '<html lang="be">' in page and catalogue("be")["Your newsletters"] in page
    assert '<html lang="en">' in client.get("/subscribe").text  # nothing asked: English


def test_the_archive_serves_each_edition_with_a_switch(
    session: Session,
    settings: Settings,
    client: TestClient,
) -> None:
    fx = issue_with_editions(session)
    make_subscribers(session, fx.newsletter, 1)
    with SMTPSink() as sink:
        send_issue(session, settings, fx.issue.id, sink)  # type: ignore[arg-type]
    url = f"/archive/{fx.newsletter.slug}/{fx.issue.number}"
    for lang in ("en", "be", "ru"):
        page = client.get(f"{url}?lang={lang}")
        assert page.status_code == 200
        _subject, intro, _title = TEXT[lang]
        assert intro in page.text
        others = [x for x in ("en", "be", "ru") if x != lang]
        for other in others:
            assert f'{url}?lang={other}"' in page.text
    assert "Беларуская" in client.get(url).text and "Русский" in client.get(url).text
    assert TEXT["en"][1] in client.get(f"{url}?lang=de").text  # no such edition: the default
