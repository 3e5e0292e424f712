"""The public pages in every shipped locale (issue 16, part 4), on SQLite and PostgreSQL: sign-up,
confirm, unsubscribe, preferences and the archive render in each with no English chrome left,
and so does the confirmation email a sign-up in that language brings (HTML and text parts); a
reader's own language wins over the browser's; the archive serves each edition of an issue."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from html import unescape

from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter import i18n
from newsletter.audience import confirmations
from newsletter.audience.links import make_confirm_token
from newsletter.config import Settings
from newsletter.models import Newsletter, Subscriber, SubscriptionStatus
from newsletter.sending.recipients import personal_links
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.editions_support import TEXT, issue_with_editions, speaking
from tests.integration.public_support import Outbox, client, outbox, parse, path_of, text_of
from tests.integration.send_support import send_issue
from tests.unit.test_locales import catalogue, marked_messages

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


def english_fragments_left(text: str, locale: str, source: str) -> list[str]:
    """The English words of the messages with values (``%(names)s``) marked in ``source``
    (a template or module) still in ``text``: each run of words between the values."""
    marked = marked_messages(only=source)
    runs = [run.strip() for m in marked if "%(" in m for run in re.split(r"%\([a-z_]+\)s", m)]
    flat = " ".join(text.split())
    return [run for run in runs if len(run) > 4 and run in flat]


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


CONFIRM_TEMPLATE = "templates/email/confirm.mjml.j2"  # its text twin marks the same messages
SIGNED_UP_AT = datetime(2025, 10, 19, 10, tzinfo=UTC)


def confirmation_email(
    session: Session, settings: Settings, client: TestClient, outbox: Outbox, data: dict[str, str]
) -> EmailMessage:
    """The confirmation email the form's sign-up with ``data`` brings, as the worker builds it."""
    assert client.post("/subscribe", data=data).status_code == 200
    built = confirmations.build(settings, session, outbox.requests[-1], now=SIGNED_UP_AT)
    assert built is not None
    return parse(built.data)


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_the_confirmation_email_speaks_the_language_picked_at_sign_up_with_no_english_left(
    session: Session, settings: Settings, client: TestClient, outbox: Outbox
) -> None:
    nl = make_newsletter(session, name="Belarus Weekly", time_zone="Europe/Vilnius")
    days = settings.confirmation_max_age_seconds // 86400
    for locale in TRANSLATED:
        data = {"email": f"{locale}-{nl.slug}@example.org", "name": "Olga Varabei"}
        message = confirmation_email(
            session, settings, client, outbox, data | {"newsletters": nl.slug, "language": locale}
        )
        words = catalogue(locale)
        html, text = html_of(message), text_of(message)
        assert str(message["Subject"]) == words["Confirm your subscription to %(names)s"] % {
            "names": "Belarus Weekly"
        }
        assert f'lang="{locale}"' in html
        for part in (visible_text(html), text):
            assert english_left(part, locale) == [], (locale, part)
            for source in (CONFIRM_TEMPLATE, "newsletter/audience/confirmations.py"):
                assert english_fragments_left(part, locale, source) == [], (locale, source)
            assert words["Hello %(first)s,"] % {"first": "Olga"} in part
            with i18n.use(locale):  # the link's last day, as the locale writes dates
                assert i18n.long_date(date(2025, 10, 19) + timedelta(days=days)) in part
        assert words["Yes, subscribe me"] in html


def test_the_confirmation_email_falls_back_to_the_newsletters_language_then_english(
    session: Session, settings: Settings, client: TestClient, outbox: Outbox
) -> None:
    polish = make_newsletter(session, name="Tydzień", language="pl")
    german = make_newsletter(session, name="Woche", language="de")
    for nl, subject in (
        (polish, "Potwierdź subskrypcję: Tydzień"),
        (german, "Confirm your subscription to Woche"),  # a language we do not ship: English
    ):
        sent = {"email": f"reader-{nl.slug}@example.org", "newsletters": [nl.slug]}
        assert client.post("/api/subscribe", json=sent).status_code == 202  # no language
        built = confirmations.build(settings, session, outbox.requests[-1], now=SIGNED_UP_AT)
        assert built is not None
        assert str(parse(built.data)["Subject"]) == subject
    english = text_of(parse(built.data))
    assert "The link works until Oct. 26, 2025." in english and "Hello," in english
