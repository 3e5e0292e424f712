"""``/api/newsletters``: list, create, show, change; a bad value is a 422 naming it and stores
nothing. Also the public archive showing the "about" text. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.models import Newsletter
from tests.conftest import make_newsletter

NEW = {
    "slug": "minsk-evening",
    "name": "Minsk Evening",
    "from_email": "evening@news.example.org",
    "postal_address": "Example News Ltd, 12 Sample Street, Warsaw",
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def snapshot(session: Session) -> list[dict[str, Any]]:
    session.expire_all()
    rows = session.exec(select(Newsletter).order_by(Newsletter.id)).all()  # type: ignore[arg-type]
    return [r.model_dump() for r in rows]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/newsletters"),
        ("POST", "/api/newsletters"),
        ("GET", "/api/newsletters/1"),
        ("PATCH", "/api/newsletters/1"),
    ],
)
def test_every_route_wants_a_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert "token is required" in response.json()["error"]


def test_create_show_list_and_patch(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    created = client.post(
        "/api/newsletters",
        json={
            **NEW,
            "language": "ru",
            "time_zone": "Europe/Minsk",
            "brand_color": "#1A5E9A",
            "logo_url": "https://news.example.org/evening.png",
            "masthead": "Minsk after dark",
            "default_sections": ["Top stories", "Culture"],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["slug"] == "minsk-evening" and body["brand_color"] == "#1a5e9a"
    assert body["from_name"] == "Minsk Evening"
    assert body["default_sections"] == ["Top stories", "Culture"]
    assert body["requires_review"] is False and body["membership_cta"] is False

    by_slug = client.get("/api/newsletters/minsk-evening", headers=auth).json()
    by_id = client.get(f"/api/newsletters/{body['id']}", headers=auth).json()
    assert by_slug == by_id == body

    listed = client.get("/api/newsletters", headers=auth).json()
    assert [n["slug"] for n in listed] == ["minsk-evening"]

    changed = client.patch(
        "/api/newsletters/minsk-evening",
        json={
            "footer_text": "You signed up at news.example.org.",
            "membership_url": "https://news.example.org/join",
            "membership_cta": True,
            "requires_review": True,
            "reply_to": None,
        },
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["membership_cta"] is True and after["requires_review"] is True
    assert after["footer_text"] == "You signed up at news.example.org."
    assert after["masthead"] == "Minsk after dark"  # not sent: unchanged
    assert after["reply_to"] is None
    session.expire_all()
    stored = session.exec(select(Newsletter).where(Newsletter.slug == "minsk-evening")).one()
    assert stored.requires_review is True


BAD_PATCHES = [
    ({"from_email": "not-an-address"}, "invalid email address"),
    ({"reply_to": "also not"}, "invalid email address"),
    ({"logo_url": "http://news.example.org/logo.png"}, "logo_url must be an absolute https"),
    ({"website_url": "javascript:alert(1)"}, "website_url must be an absolute https"),
    ({"brand_color": "#12345g"}, "is not a #rrggbb colour"),
    ({"slug": "taken"}, "slug 'taken' is taken"),
    ({"time_zone": "Moon/Base"}, "is not an IANA time zone"),
    ({"language": "klingon"}, "is not a BCP 47 tag"),
    ({"name": "Evening\u0007"}, "name contains a control character"),
    ({"from_name": "Evil\r\nBcc: x@example.org"}, "from_name contains a line break"),
    ({"membership_cta": True, "membership_url": ""}, "needs a membership_url"),
    ({"requires_review": None}, "must be true or false"),
    ({"colour": "#ffffff"}, "colour"),
]


@pytest.mark.parametrize(("patch", "message"), BAD_PATCHES, ids=[m for _, m in BAD_PATCHES])
def test_a_bad_value_is_a_422_with_the_reason_and_changes_nothing(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    patch: dict[str, Any],
    message: str,
) -> None:
    make_newsletter(session, slug="taken")
    evening = make_newsletter(session, slug="evening")
    before = snapshot(session)

    answer = client.patch(f"/api/newsletters/{evening.id}", json=patch, headers=auth)

    assert answer.status_code == 422, answer.text
    assert message in answer.text
    assert snapshot(session) == before


def test_create_refuses_a_taken_slug_and_missing_fields(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    make_newsletter(session, slug="minsk-evening")
    before = snapshot(session)
    taken = client.post("/api/newsletters", json=NEW, headers=auth)
    assert taken.status_code == 422
    assert "slug 'minsk-evening' is taken by newsletter" in taken.json()["error"]
    missing = client.post("/api/newsletters", json={"slug": "x"}, headers=auth)
    assert missing.status_code == 422
    blank = client.post("/api/newsletters", json={**NEW, "slug": "new", "name": " "}, headers=auth)
    assert blank.status_code == 422 and "needs name" in blank.json()["error"]
    assert snapshot(session) == before


def test_an_unknown_newsletter_is_a_404(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/api/newsletters/nowhere", headers=auth).status_code == 404
    answer = client.patch("/api/newsletters/99999", json={"name": "X"}, headers=auth)
    assert answer.status_code == 404


def test_the_archive_shows_the_about_text_not_the_footer_text(
    client: TestClient, session: Session
) -> None:
    make_newsletter(
        session,
        slug="evening",
        name="Minsk Evening",
        description="A weekday briefing on the Belarusian capital.",
        footer_text="You get this because you signed up.",
    )
    for path in ("/archive", "/archive/evening"):
        page = client.get(path)
        assert page.status_code == 200
        assert "A weekday briefing on the Belarusian capital." in page.text
        assert "You get this because you signed up." not in page.text
