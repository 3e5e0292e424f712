"""The admin API for subscribers, imports/exports, GDPR and bounces, through HTTP (TestClient)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.models import Newsletter, Subscriber, SubscriberEvent, Subscription
from tests.conftest import make_newsletter, make_subscribers
from tests.integration import mail_reports


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def weekly(session: Session) -> Newsletter:
    return make_newsletter(session)


ROUTES = [
    ("GET", "/api/subscribers"),
    ("POST", "/api/subscribers"),
    ("GET", "/api/subscribers/export"),
    ("POST", "/api/subscribers/import"),
    ("GET", "/api/subscribers/1"),
    ("PATCH", "/api/subscribers/1"),
    ("DELETE", "/api/subscribers/1"),
    ("GET", "/api/subscribers/1/export"),
    ("POST", "/api/bounces"),
]


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_wants_a_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "token is required" in response.json()["error"]


def test_a_revoked_token_is_403_everywhere(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    assert client.get("/api/subscribers", headers=auth).status_code == 200
    api_tokens.revoke(session, "tests")
    session.commit()
    for method, path in ROUTES:
        response = client.request(method, path, headers=auth)
        assert response.status_code == 403, path
        assert response.json() == {"error": "API token 'tests' was revoked"}


def test_a_wrong_token_is_401(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/api/subscribers", headers={"Authorization": "Bearer nl_forged"})
    assert response.status_code == 401
    assert response.json() == {"error": "unknown API token"}


# ---------------------------------------------------------------- list, get


def test_the_list_is_paginated_and_filtered(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    daily = make_newsletter(session)
    readers = make_subscribers(session, weekly, 5)
    make_subscribers(session, weekly, 2, status="unsubscribed")  # type: ignore[arg-type]
    make_subscribers(session, daily, 3, domain="daily.example.net")

    page = client.get("/api/subscribers?per_page=4&page=2", headers=auth).json()
    assert (page["total"], page["page"], page["per_page"], len(page["items"])) == (10, 2, 4, 4)

    first = client.get(f"/api/subscribers?newsletter={weekly.slug}&per_page=3", headers=auth)
    body = first.json()
    assert body["total"] == 7
    assert [i["id"] for i in body["items"]] == [r.id for r in readers[:3]]
    item = body["items"][0]
    assert item["email"] == readers[0].email
    assert item["subscriptions"][0]["newsletter"] == weekly.slug
    assert item["subscriptions"][0]["status"] == "active"

    def total(query: str) -> int:
        response = client.get(f"/api/subscribers?{query}", headers=auth)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total("status=unsubscribed") == 2
    assert total(f"status=active&newsletter={daily.slug}") == 3
    assert total("email=daily.example") == 3
    assert total("email=%25") == 0  # a LIKE wildcard is a character here
    assert client.get("/api/subscribers?status=gone", headers=auth).status_code == 422
    assert client.get("/api/subscribers?per_page=501", headers=auth).status_code == 422
    assert client.get("/api/subscribers?newsletter=nope", headers=auth).status_code == 404


def test_an_unknown_subscriber_is_404(client: TestClient, auth: dict[str, str]) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/api/subscribers/999999", headers=auth, json={})
        assert response.status_code == 404, method
        assert response.json() == {"error": "no subscriber with id 999999"}


# ---------------------------------------------------------------- create, update, delete


def test_create_cleans_line_breaks_out_of_the_name(
    client: TestClient, auth: dict[str, str], weekly: Newsletter
) -> None:
    response = client.post(
        "/api/subscribers",
        headers=auth,
        json={
            "email": "New@Example.ORG",
            "name": "Eve\r\nBcc: victim@example.org",
            "newsletters": [weekly.slug],
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "New@example.org"
    assert body["name"] == "Eve Bcc: victim@example.org"
    assert [(s["newsletter"], s["status"]) for s in body["subscriptions"]] == [
        (weekly.slug, "active")
    ]
    assert body["subscriptions"][0]["consent_source"] == "admin"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"email": "not-an-address", "newsletters": ["W"]}, "invalid email address"),
        ({"email": "a@example.org", "newsletters": []}, "newsletters"),
        ({"email": "a@example.org", "newsletters": ["nope"]}, "no newsletter 'nope'"),
        ({"email": "a@example.org", "newsletters": ["W"], "status": "gone"}, "status"),
        ({"email": "a@example.org", "newsletters": ["W"], "admin": True}, "admin"),
    ],
)
def test_create_refuses_bad_input_with_the_reason(
    client: TestClient,
    auth: dict[str, str],
    weekly: Newsletter,
    body: dict[str, object],
    error: str,
) -> None:
    body = {**body, "newsletters": [weekly.slug if n == "W" else n for n in body["newsletters"]]}  # type: ignore[attr-defined]
    response = client.post("/api/subscribers", headers=auth, json=body)
    assert response.status_code == 422
    assert error in response.json()["error"]


def test_create_refuses_an_existing_or_erased_address(
    client: TestClient, auth: dict[str, str], weekly: Newsletter
) -> None:
    body = {"email": "once@example.org", "newsletters": [weekly.slug]}
    created = client.post("/api/subscribers", headers=auth, json=body).json()
    again = client.post("/api/subscribers", headers=auth, json=body)
    assert again.status_code == 409
    assert again.json() == {"error": f"once@example.org is already subscriber {created['id']}"}

    erased = client.delete(f"/api/subscribers/{created['id']}", headers=auth)
    assert erased.status_code == 200
    assert erased.json()["subscriptions_deleted"] == 1

    after = client.post("/api/subscribers", headers=auth, json=body)
    assert after.status_code == 409
    assert after.json() == {
        "error": "once@example.org is on the suppression list (erased): "
        "they can come back only by signing up again and confirming"
    }


def test_patch_changes_name_attributes_and_statuses(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    daily = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)

    response = client.patch(
        f"/api/subscribers/{person.id}",
        headers=auth,
        json={
            "name": "Olga\nVarabei",
            "attributes": {"city": "Minsk"},
            "subscriptions": {weekly.slug: "unsubscribed", daily.slug: "active"},
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["attributes"]) == ("Olga Varabei", {"city": "Minsk"})
    assert {s["newsletter"]: s["status"] for s in body["subscriptions"]} == {
        weekly.slug: "unsubscribed",
        daily.slug: "active",
    }
    events = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "admin")).all()
    assert len(events) == 2 and events[0].detail["by"] == "token tests"


def test_patch_reactivates_a_sticky_status_only_when_asked(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    (person,) = make_subscribers(session, weekly, 1, status="bounced")  # type: ignore[arg-type]
    url = f"/api/subscribers/{person.id}"

    refused = client.patch(url, headers=auth, json={"subscriptions": {weekly.slug: "active"}})
    assert refused.status_code == 409
    assert "set reactivate to true" in refused.json()["error"]

    done = client.patch(
        url, headers=auth, json={"subscriptions": {weekly.slug: "active"}, "reactivate": True}
    )
    assert done.status_code == 200
    assert done.json()["subscriptions"][0]["status"] == "active"


def test_delete_erases_and_the_gdpr_export_shows_it(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    (person,) = make_subscribers(session, weekly, 1)

    before = client.get(f"/api/subscribers/{person.id}/export", headers=auth)
    assert before.status_code == 200
    assert before.json()["subscriber"]["email"] == person.email
    assert before.json()["subscriptions"][0]["newsletter"] == weekly.slug

    assert client.delete(f"/api/subscribers/{person.id}", headers=auth).status_code == 200
    after = client.get(f"/api/subscribers/{person.id}/export", headers=auth).json()
    assert after["subscriber"]["email"] == f"erased-{person.id}@invalid"
    assert after["subscriptions"] == []


# ---------------------------------------------------------------- import, export


def test_import_by_multipart_upload_reports_bad_rows(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    data = b"email,name\ngood@example.org,Good\nbad-address,Bad\nlatin@example.org,Ren\xe9\n"

    response = client.post(
        f"/api/subscribers/import?newsletter={weekly.slug}",
        headers=auth,
        files={"file": ("list.csv", data, "text/csv")},
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["imported"]) == (3, 1)
    assert [(e["line"], e["reason"][:22]) for e in report["errors"]] == [
        (3, "invalid email address "),
        (4, "not UTF-8 text (byte 0"),
    ]
    assert session.exec(select(Subscriber.email)).all() == ["good@example.org"]


def test_import_of_a_raw_csv_body(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    data = f"email,newsletters\nraw@example.org,{weekly.slug}\n".encode()
    response = client.post(
        "/api/subscribers/import",
        headers={**auth, "Content-Type": "text/csv"},
        content=data,
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1
    assert session.exec(select(Subscription)).one().status == "active"


def test_an_unusable_file_is_422_with_the_reason(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/subscribers/import",
        headers={**auth, "Content-Type": "text/csv"},
        content=b"name\nNo Email\n",
    )
    assert response.status_code == 422
    assert response.json() == {"error": "the header row has no 'email' column (found 'name')"}
    missing = client.post(
        "/api/subscribers/import", headers=auth, data={"other": "x"}, files={"x": ("a", b"")}
    )
    assert missing.status_code == 422
    assert "file field named 'file'" in missing.json()["error"]


def test_export_streams_neutralised_csv_with_filters(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    (person,) = make_subscribers(session, weekly, 1)
    person.name = '=HYPERLINK("http://evil.example","x")'
    session.add(person)
    make_subscribers(session, weekly, 2, status="unsubscribed")  # type: ignore[arg-type]
    session.commit()

    response = client.get(
        f"/api/subscribers/export?newsletter={weekly.slug}&status=active", headers=auth
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["email"], r["name"]) for r in rows] == [(person.email, "'" + person.name)]
    missing = client.get("/api/subscribers/export?newsletter=nope", headers=auth)
    assert missing.status_code == 404


# ---------------------------------------------------------------- bounces


def test_a_dsn_posted_to_the_bounce_endpoint_bounces_the_reader(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    (person,) = make_subscribers(session, weekly, 1)

    response = client.post(
        "/api/bounces",
        headers={**auth, "Content-Type": "message/rfc822"},
        content=mail_reports.dsn(person.email),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["subscriber_ids"], body["status"]) == ("hard", [person.id], "5.1.1")
    session.expire_all()
    assert session.exec(select(Subscription)).one().status == "bounced"


def test_an_arf_report_as_text_plain_is_a_complaint(
    client: TestClient, session: Session, auth: dict[str, str], weekly: Newsletter
) -> None:
    (person,) = make_subscribers(session, weekly, 1)
    response = client.post(
        "/api/bounces",
        headers={**auth, "Content-Type": "text/plain"},
        content=mail_reports.arf(person.email),
    )
    assert response.json()["kind"] == "complaint"


def test_an_empty_bounce_body_is_422(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/bounces", headers={**auth, "Content-Type": "message/rfc822"}, content=b""
    )
    assert response.status_code == 422
