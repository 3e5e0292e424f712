"""Every route answers a 4xx with a reason for any input, in the shape of its part of the site:
JSON ``{"error": ...}`` under /api, a small HTML page elsewhere. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.api.deps import get_session
from newsletter.config import Settings
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor
from tests.integration.public_support import Outbox, generous_limiter, unique_email

HUGE = "99999999999999999999"


@pytest.fixture
def token(session: Session) -> str:
    value = api_tokens.create(session, "errors")
    session.commit()
    return value


@pytest.fixture
def client(settings: Settings, token: str) -> Iterator[TestClient]:
    app = create_app(settings, dispatch=lambda _issue_id: None)
    app.state.send_confirmation = Outbox()
    app.state.signup_limiter = generous_limiter()
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def assert_json_error(response: Any, status: int, *parts: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    for part in parts:
        assert part in body["error"]
    return body


def assert_html_error(response: Any, status: int, *parts: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>" in response.text
    for part in parts:
        assert part in response.text


# ---------------------------------------------------------------- numbers out of range


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (f"/api/issues/{HUGE}/status", "issue_id"),
        ("/api/issues/2147483648/status", "issue_id"),
        ("/api/issues/0/status", "issue_id"),
        (f"/api/subscribers/{HUGE}", "subscriber_id"),
        (f"/api/subscribers/{HUGE}/export", "subscriber_id"),
    ],
)
def test_an_id_out_of_range_is_a_422_naming_the_parameter(
    client: TestClient, path: str, name: str
) -> None:
    assert_json_error(client.get(path), 422, f"path.{name}")


def test_the_largest_id_is_simply_not_found(client: TestClient) -> None:
    assert_json_error(client.get("/api/issues/2147483647/status"), 404, "no issue")


def test_a_page_past_the_last_possible_one_is_a_422(client: TestClient) -> None:
    assert_json_error(client.get("/api/subscribers", params={"page": 10**12}), 422, "query.page")


def test_a_numeric_newsletter_reference_beyond_any_id_is_not_found(client: TestClient) -> None:
    assert_json_error(client.get("/api/subscribers", params={"newsletter": HUGE}), 404)


def test_an_id_the_database_cannot_hold_is_a_422_on_routes_without_bounds(
    client: TestClient,
) -> None:
    """/api/webhooks/{id} declares no bound: SQLite's OverflowError and PostgreSQL's "integer
    out of range" are both answered as the input's fault."""
    assert_json_error(client.get(f"/api/webhooks/{HUGE}"), 422, "invalid request")


def test_a_huge_archive_number_is_the_same_404_as_any_unknown_issue(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    assert_html_error(client.get(f"/archive/{nl.slug}/{HUGE}"), 404, "no issue")


# ---------------------------------------------------------------- text the databases refuse


def test_a_nul_in_the_url_is_refused_as_json_under_api(client: TestClient) -> None:
    response = client.get("/api/subscribers", params={"email": "a\x00b"})
    assert_json_error(response, 422, "NUL")


def test_a_nul_in_the_url_is_refused_as_a_page_elsewhere(client: TestClient) -> None:
    assert_html_error(client.get("/archive/weekly%00"), 422, "NUL")


def test_a_nul_in_a_form_field_is_refused_before_anything_is_stored(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    data = {"email": unique_email(), "name": "Eve\x00", "newsletters": [nl.slug]}
    assert_html_error(client.post("/subscribe", data=data), 422, "NUL")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"email": "\\ud800@example.org", "newsletters": ["x"]}', "lone surrogate"),
        (b'{"email": "a@example.org", "newsletters": ["\\u0000"]}', "NUL"),
        (b'{"email": "\xff@example.org", "newsletters": ["x"]}', "not UTF-8"),
        (b'{"email": "a@example.org", "newsletters": [NaN]}', "NaN is not JSON"),
        (b'{"email": "a@example.org", "newsletters": [1e999]}', "too large"),
        (b'{"email": "a@example.org", "newsletters": ' + b"[" * 40 + b"]" * 40 + b"}", "deep"),
        (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),  # RecursionError
        (b'{"email": ', "Expecting value"),
    ],
    ids=["surrogate", "nul", "latin-1", "nan", "infinity", "deep", "recursion", "truncated"],
)
def test_json_that_rfc_8259_or_the_databases_refuse_is_a_422_with_the_reason(
    settings: Settings, body: bytes, reason: str
) -> None:
    app = create_app(settings)
    app.state.send_confirmation = Outbox()
    app.state.signup_limiter = generous_limiter()
    with TestClient(app) as client:
        response = client.post(
            "/api/subscribe", content=body, headers={"Content-Type": "application/json"}
        )
    assert_json_error(response, 422, "invalid JSON", reason)


def test_nested_attributes_beyond_the_depth_limit_are_refused(client: TestClient) -> None:
    deep: object = "leaf"
    for _ in range(40):
        deep = {"k": deep}
    response = client.patch("/api/subscribers/1", json={"attributes": deep})
    assert_json_error(response, 422, "nested too deeply")


# ---------------------------------------------------------------- what a 422 repeats


def test_a_422_repeats_no_more_than_a_short_prefix_of_the_input(client: TestClient) -> None:
    secret = "s" * 5000
    response = client.post(
        "/api/subscribe", json={"email": "a@example.org", "name": secret, "newsletters": ["x"]}
    )
    body = assert_json_error(response, 422, "name")
    assert len(response.text) < 1000
    (finding,) = body["detail"]
    assert finding["loc"] == ["body", "name"]
    assert len(finding["input"]) <= 40


def test_a_domain_message_quoting_the_input_is_cut_short(client: TestClient) -> None:
    response = client.post(
        "/api/subscribe", json={"email": "x" * 300 + "@", "newsletters": ["weekly"]}
    )
    body = assert_json_error(response, 422)
    assert len(str(body["error"])) <= 300


# ---------------------------------------------------------------- public bodies are capped


def test_a_public_body_over_the_limit_is_a_413_by_its_content_length(
    client: TestClient, settings: Settings
) -> None:
    big = b"x" * (settings.public_body_limit + 1)
    response = client.post(
        "/api/subscribe", content=big, headers={"Content-Type": "application/json"}
    )
    assert_json_error(response, 413, f"larger than {settings.public_body_limit} bytes")


def test_a_public_body_over_the_limit_is_a_413_while_it_streams(
    client: TestClient, settings: Settings
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        for _ in range(settings.public_body_limit // 1024 + 2):
            yield b"name=" + b"x" * 1019

    response = client.post(
        "/subscribe",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "content-length" not in response.request.headers
    assert_html_error(response, 413, "larger than")


def test_an_authenticated_upload_is_not_capped_by_the_public_limit(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    rows = [f"reader{i}-{'x' * 40}@example.org" for i in range(2000)]
    csv = ("email\n" + "\n".join(rows) + "\n").encode()
    assert len(csv) > settings.public_body_limit
    response = client.post(
        "/api/subscribers/import",
        params={"newsletter": nl.slug},
        content=csv,
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2000


# ---------------------------------------------------------------- shapes


def test_an_unknown_path_under_api_is_json(client: TestClient) -> None:
    assert assert_json_error(client.get("/api/nothing-here"), 404) == {"error": "Not Found"}


def test_an_unknown_path_elsewhere_is_a_page(client: TestClient) -> None:
    assert_html_error(client.get("/nothing-here"), 404, "Not found")


def test_an_unexpected_error_is_a_500_in_the_shape_of_the_part_of_the_site(
    settings: Settings,
) -> None:
    def broken() -> Iterator[Session]:
        raise RuntimeError("the disk is on fire")
        yield  # pragma: no cover

    app = create_app(settings)
    app.dependency_overrides[get_session] = broken
    with TestClient(app, raise_server_exceptions=False) as client:
        api = client.get("/api/subscribe")  # wrong method: still answered as usual
        archive = client.get("/archive")
        subscribe = client.post("/api/subscribe", json={"email": "a@b.org", "newsletters": ["x"]})
    assert api.status_code == 405
    assert_html_error(archive, 500, "internal error")
    assert "on fire" not in archive.text
    body = assert_json_error(subscribe, 500, "internal error")
    assert body == {"error": "internal error: the request could not be completed"}


# ---------------------------------------------------------------- the editor UI's own pages


@pytest.mark.parametrize("path", [f"/admin/issues/{HUGE}", f"/admin/issues/{HUGE}/sending"])
def test_an_editor_page_with_an_id_out_of_range_is_its_refusal_page(
    editor: Editor, path: str
) -> None:
    response = editor.client.get(path)
    assert_html_error(response, 422, "issue_id", "less than or equal to 2147483647")


@pytest.mark.parametrize("path", [f"/admin/articles/{HUGE}", f"/admin/articles?page={HUGE}"])
def test_an_editor_page_without_a_declared_bound_is_refused_as_well(
    editor: Editor, path: str
) -> None:
    """The article library declares no bounds: the database's refusal (PostgreSQL) or the
    driver's (SQLite's OverflowError) is answered as the input's fault, on its refusal page."""
    assert_html_error(editor.client.get(path), 422, "invalid request")


def test_an_unknown_editor_page_is_the_editor_ui_s_not_found_page(editor: Editor) -> None:
    assert_html_error(editor.client.get("/admin/nothing-here"), 404, "Not Found")
