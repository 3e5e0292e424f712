"""The sign-up box for article pages (issue 14, item 6), through the app, on SQLite and PostgreSQL:
the honeypot and the minimum fill time turn a bot away with a person's answer and store nothing,
the article's address becomes the consent source, the pasted snippet works as a plain form, and
only the box may be framed by other sites.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.api import create_app
from newsletter.api.admin.signup_box import iframe_code, snippet
from newsletter.audience.signup_guard import issue_stamp
from newsletter.config import Settings
from newsletter.models import (
    IssueStatus,
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    utcnow,
)
from tests.conftest import make_issue, make_newsletter
from tests.integration.public_support import Outbox, generous_limiter, outbox, unique_email

__all__ = ["outbox"]  # the fixture, used by name

ARTICLE = "https://news.example.org/2026/11/28/city-hall-budget?utm_source=x"
#: what does not touch the database's own behaviour runs on SQLite only (CI time)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def client(settings: Settings, outbox: Outbox) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.send_confirmation = outbox
    app.state.signup_limiter = generous_limiter()
    with TestClient(app) as c:
        yield c


class Forms(HTMLParser):
    """Every form of a page: its action and the fields a browser would send (no script)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in a:
            self.forms[-1][1][a["name"]] = a.get("value", "")


def form_of(html: str) -> tuple[str, dict[str, str]]:
    parser = Forms()
    parser.feed(html)
    assert len(parser.forms) == 1, parser.forms
    return parser.forms[0]


def box(client: TestClient, slug: str, **query: str) -> tuple[str, dict[str, str]]:
    page = client.get(f"/embed/{slug}", params=query)
    assert page.status_code == 200, page.text
    return form_of(page.text)


def old_stamp(settings: Settings) -> str:
    """A box served ten seconds ago: a person's pace."""
    return issue_stamp(settings.secret_key, now=time.time() - 10)


def stored(session: Session, email: str) -> tuple[Subscriber | None, list[Subscription]]:
    session.expire_all()
    person = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    if person is None:
        return None, []
    subs = session.exec(select(Subscription).where(Subscription.subscriber_id == person.id))
    return person, list(subs.all())


def events_of(session: Session, person: Subscriber) -> list[SubscriberEvent]:
    found = session.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == person.id))
    return list(found.all())


def answer(response: object) -> tuple[int, str]:
    status, text = response.status_code, response.text  # type: ignore[attr-defined]
    return status, re.sub(r'name="issued" value="[^"]*"', "", text)


# ---------------------------------------------------------------- bots


@pytest.mark.parametrize("boxed", [True, False], ids=["box", "form"])
def test_a_filled_honeypot_gets_a_persons_answer_and_nothing_is_stored_or_sent(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings, boxed: bool
) -> None:
    nl = make_newsletter(session)
    _, fields = box(client, nl.slug) if boxed else ("", {"newsletters": nl.slug})
    fields["issued"] = old_stamp(settings) if boxed else ""
    person, bot = unique_email("person"), unique_email("bot")
    human = client.post("/subscribe", data=fields | {"email": person})
    robot = client.post(
        "/subscribe", data=fields | {"email": bot, "website": "http://spam.example"}
    )
    assert answer(robot) == answer(human)
    assert human.status_code == 200 and "Check your inbox" in human.text
    assert stored(session, bot) == (None, [])  # no subscriber, no subscription, no event
    assert stored(session, person)[0] is not None
    assert len(outbox.requests) == 1  # the person's confirmation only
    metrics = client.get("/metrics").text
    assert 'newsletter_signup_bots_total{reason="honeypot"} 1.0' in metrics


def test_a_box_sent_back_sooner_than_the_minimum_fill_time_is_a_bots(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    assert settings.signup_min_fill_seconds == 3
    nl = make_newsletter(session)
    _, fields = box(client, nl.slug)  # served now: sent back at once, well under 3 s
    fast, slow = unique_email("fast"), unique_email("slow")
    robot = client.post("/subscribe", data=fields | {"email": fast})
    human = client.post("/subscribe", data=fields | {"email": slow, "issued": old_stamp(settings)})
    assert answer(robot) == answer(human)
    assert stored(session, fast) == (None, [])
    person, subs = stored(session, slow)
    assert person is not None and [s.status for s in subs] == ["pending"]
    assert [r.subscriber_id for r in outbox.requests] == [person.id]
    metrics = client.get("/metrics").text
    assert 'newsletter_signup_bots_total{reason="too_fast"} 1.0' in metrics


@SQLITE_ONLY
def test_a_forged_stamp_is_a_bots_and_a_missing_one_is_judged_by_the_honeypot(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    _, fields = box(client, nl.slug)
    forged = issue_stamp("another secret", now=time.time() - 60)
    made_up, plain = unique_email("forged"), unique_email("no-stamp")
    assert client.post("/subscribe", data=fields | {"email": made_up, "issued": forged}).is_success
    assert client.post("/subscribe", data=fields | {"email": plain, "issued": ""}).is_success
    assert stored(session, made_up) == (None, [])
    assert stored(session, plain)[0] is not None  # the static snippet has no stamp


@SQLITE_ONLY
def test_a_bot_gets_the_same_refusal_as_a_person_for_bad_input(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    bad = {"newsletters": nl.slug, "email": "not an address", "embed": "1"}
    human = client.post("/subscribe", data=bad)
    robot = client.post("/subscribe", data=bad | {"website": "x"})
    assert human.status_code == robot.status_code == 422
    assert answer(human) == answer(robot)


@SQLITE_ONLY
def test_a_box_refused_for_a_typo_keeps_its_first_serving_time(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    _, fields = box(client, nl.slug)
    fields["issued"] = old_stamp(settings)  # the reader took their time the first time round
    typo = client.post("/subscribe", data=fields | {"email": "reader@example"})
    assert typo.status_code == 422
    _, again = form_of(typo.text)
    assert again["issued"] == fields["issued"]
    email = unique_email()
    client.post("/subscribe", data=again | {"email": email})  # fixed at once: still a person
    assert stored(session, email)[0] is not None


# ---------------------------------------------------------------- the consent source


def test_the_boxs_source_parameter_becomes_the_consent_source(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    nl = make_newsletter(session)
    action, fields = box(client, nl.slug, source=ARTICLE)
    assert action == "/subscribe" and fields["source"] == ARTICLE
    email = unique_email()
    done = client.post(action, data=fields | {"email": email, "issued": old_stamp(settings)})
    assert done.status_code == 200 and "Check your inbox" in done.text
    person, subs = stored(session, email)
    assert person is not None and [s.consent_source for s in subs] == [ARTICLE]
    assert [e.source for e in events_of(session, person)] == [ARTICLE]
    assert outbox.requests[0].source == ARTICLE  # the confirmation carries it to the consent


def test_without_a_source_the_referer_of_the_box_is_used(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    page = client.get(f"/embed/{nl.slug}", headers={"Referer": ARTICLE})
    _, fields = form_of(page.text)
    assert fields["source"] == ARTICLE
    bare = client.get(f"/embed/{nl.slug}")  # no address at all: the plain "embed" source
    _, none = form_of(bare.text)
    email = unique_email()
    client.post("/subscribe", data=none | {"email": email, "issued": old_stamp(settings)})
    assert [s.consent_source for s in stored(session, email)[1]] == ["embed"]


@SQLITE_ONLY
def test_a_plain_form_without_a_source_records_the_referer_of_its_post(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    email = unique_email()
    fields = {"newsletters": nl.slug, "email": email, "source": "ARTICLE_URL"}  # left as pasted
    done = client.post("/subscribe", data=fields, headers={"Referer": ARTICLE})
    assert done.status_code == 200 and ARTICLE.replace("&", "&amp;") in done.text  # a way back
    assert [s.consent_source for s in stored(session, email)[1]] == [ARTICLE]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "given",
    ["javascript:alert(1)", "https://news.example.org/subscribe"],  # no page; our own form
)
def test_an_address_that_is_not_a_page_is_not_recorded(
    client: TestClient, session: Session, given: str
) -> None:
    nl = make_newsletter(session)
    email = unique_email()
    done = client.post("/subscribe", data={"newsletters": nl.slug, "email": email, "source": given})
    assert done.status_code == 200  # the reader's sign-up goes on
    person, subs = stored(session, email)
    assert person is not None and [s.consent_source for s in subs] == ["form"]
    assert [e.source for e in events_of(session, person)] == ["form"]


# ---------------------------------------------------------------- the code to paste


def test_the_pasted_snippet_signs_up_as_a_plain_form(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session, signup_pitch="Minsk, every Friday, in five minutes")
    code = snippet(settings, nl).replace("ARTICLE_URL", ARTICLE)
    assert "<script" not in code
    assert 'name="website"' in code and 'tabindex="-1"' in code and 'autocomplete="off"' in code
    assert 'aria-hidden="true"' in code and nl.signup_pitch in code
    action, fields = form_of(code)
    assert action == f"{settings.base_url}/subscribe"
    email = unique_email()
    fields["email"] = email  # what a reader types; the honeypot stays empty
    done = client.post(urlsplit(action).path, data=fields)
    assert done.status_code == 200 and "Check your inbox" in done.text
    person, subs = stored(session, email)
    assert person is not None
    assert [(s.consent_source, s.consent_text_version) for s in subs] == [
        (ARTICLE, settings.consent_text_version)
    ]


@SQLITE_ONLY
def test_the_iframe_code_points_at_the_box(settings: Settings, session: Session) -> None:
    nl = make_newsletter(session)
    code = iframe_code(settings, nl)
    assert f'src="{settings.base_url}/embed/{nl.slug}?source=ARTICLE_URL"' in code
    assert 'referrerpolicy="no-referrer-when-downgrade"' in code and "<script" not in code
    assert quote(ARTICLE, safe="") not in code  # the newsroom's template fills that in


# ---------------------------------------------------------------- the box itself


def test_the_box_shows_the_branding_the_pitch_and_the_latest_lead_headline(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(
        session, brand_color="#1a5e9a", signup_pitch="The week in Belarus, every Friday"
    )
    before = client.get(f"/embed/{nl.slug}").text
    assert "Latest issue" not in before and "The week in Belarus, every Friday" in before
    older, newer = make_issue(session, newsletter=nl), make_issue(session, newsletter=nl)
    draft = make_issue(session, newsletter=nl)  # not sent: never shown
    for fixture, days_ago in ((older, 7), (newer, 0)):
        fixture.issue.status = IssueStatus.sent
        fixture.issue.sent_at = utcnow() - timedelta(days=days_ago)
        session.add(fixture.issue)
    session.commit()
    page = client.get(f"/embed/{nl.slug}").text
    lead = newer.articles[0].title  # the first item of the first section
    assert f">{lead}</a>" in page and older.articles[0].title not in page
    assert draft.articles[0].title not in page
    assert f"/archive/{nl.slug}/{newer.issue.number}" in page
    assert "#1a5e9a" in page and nl.name in page


@SQLITE_ONLY
def test_only_the_box_may_be_framed_by_other_sites(client: TestClient, session: Session) -> None:
    nl = make_newsletter(session)
    framed = client.get(f"/embed/{nl.slug}")
    assert "frame-ancestors *" in framed.headers["content-security-policy"]
    assert "x-frame-options" not in framed.headers
    boxed = {"newsletters": nl.slug, "email": unique_email(), "embed": "1"}
    done = client.post("/subscribe", data=boxed)
    assert "frame-ancestors *" in done.headers["content-security-policy"]
    assert "x-frame-options" not in done.headers
    for path in ("/subscribe", "/archive"):
        page = client.get(path)
        assert page.headers.get("x-frame-options", "DENY") == "DENY"
        assert "frame-ancestors *" not in page.headers.get("content-security-policy", "")
    plain = client.post("/subscribe", data={"newsletters": nl.slug, "email": unique_email()})
    assert plain.headers["x-frame-options"] == "DENY"
    assert client.get("/embed/no-such-newsletter").status_code == 404


@SQLITE_ONLY
def test_the_pitch_is_a_checked_setting(session: Session) -> None:
    from newsletter import newsletters
    from newsletter.exceptions import InvalidInput

    nl = make_newsletter(session)
    newsletters.update_newsletter(session, nl.slug, {"signup_pitch": "  Five minutes a week  "})
    assert session.get(Newsletter, nl.id).signup_pitch == "Five minutes a week"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="line break"):
        newsletters.update_newsletter(session, nl.slug, {"signup_pitch": "one\ntwo"})
    with pytest.raises(InvalidInput, match="at most 200"):
        newsletters.update_newsletter(session, nl.slug, {"signup_pitch": "x" * 201})
