"""A reader's language at sign-up (issue 16: each reader gets the edition of their language): the
form offers the shipped languages with the page's own chosen, a new reader's choice is stored,
an existing subscriber's is never changed by a sign-up (a stranger could type the address), and
a language we do not ship is a 422 with the reason (the JSON API alike)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.models import Subscriber
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import Outbox, client, outbox, unique_email

__all__ = ["client", "outbox"]  # fixtures


def _language(session: Session, email: str) -> str | None:
    session.expire_all()
    found = session.exec(select(Subscriber).where(Subscriber.email == email)).one()
    return found.language


def test_the_form_offers_the_languages_with_the_pages_own_chosen(
    client: TestClient, session: Session
) -> None:
    make_newsletter(session)
    english = client.get("/subscribe").text
    assert '<option value="en" selected>English</option>' in english
    assert '<option value="be">Беларуская</option>' in english
    belarusian = client.get("/subscribe?lang=be").text
    assert '<option value="be" selected>Беларуская</option>' in belarusian


def test_a_new_readers_language_is_stored_and_an_existing_ones_is_not_changed(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    (known,) = make_subscribers(session, nl, 1)
    known.language = "lt"
    session.add(known)
    session.commit()
    new = unique_email("reader")

    for email in (new, known.email):
        answer = client.post(
            "/subscribe", data={"email": email, "newsletters": nl.slug, "language": "ru"}
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text

    assert _language(session, new) == "ru"
    assert _language(session, known.email) == "lt"  # a sign-up never changes a known reader's
    api = unique_email("api")
    sent = {"email": api, "newsletters": [nl.slug], "language": "pl"}
    assert client.post("/api/subscribe", json=sent).status_code == 202
    assert _language(session, api) == "pl"
    nameless = unique_email("nobody-chose")
    sent = {"email": nameless, "newsletters": [nl.slug]}
    assert client.post("/api/subscribe", json=sent).status_code == 202
    assert _language(session, nameless) is None  # the newsletter's


def test_a_language_we_do_not_ship_is_422_with_the_reason_and_nothing_is_stored(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email("klingon")
    form = client.post(
        "/subscribe", data={"email": email, "newsletters": nl.slug, "language": "tlh"}
    )
    assert form.status_code == 422
    assert "unknown language &#39;tlh&#39;: one of en, be, ru, uk, pl, lt" in form.text
    sent = {"email": email, "newsletters": [nl.slug], "language": "tlh"}
    api = client.post("/api/subscribe", json=sent)
    assert api.status_code == 422 and "unknown language 'tlh'" in api.text
    session.expire_all()
    assert session.exec(select(Subscriber).where(Subscriber.email == email)).first() is None
    assert outbox.requests == []
