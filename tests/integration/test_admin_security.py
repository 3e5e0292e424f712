"""The editor UI's defences: sign-in required everywhere, CSRF on every change, cookie flags.

Routes are enumerated from the app itself, so a page added later is covered without editing
this file; each refusal is also checked to have changed nothing in the database.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, text
from sqlmodel import Session, SQLModel, select

from newsletter.api import admin, create_app
from newsletter.api.admin.auth import LOGIN_PER_ADDRESS, SESSION_COOKIE
from newsletter.config import Settings
from newsletter.models import Article, EditorSession
from tests.conftest import IssueFixture, make_issue, make_subscribers
from tests.integration.admin_support import (
    EDITOR_EMAIL,
    EDITOR_PASSWORD,
    Editor,
    csrf_of,
    make_editor,
    sign_in,
)

PUBLIC = {"/admin/login", "/admin/login/code"}
PARAM = re.compile(r"{(\w+)}")


def admin_routes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path) of every route of the routers ``install`` puts on the app."""
    found = []
    for router in admin.ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path not in PUBLIC:
                assert route.path.startswith("/admin/"), route.path
                found.extend((method, route.path) for method in sorted(route.methods))
    return found


def fill(path: str, fx: IssueFixture) -> str:
    ids: dict[str, Any] = {
        "issue_id": fx.issue.id,
        "section_id": fx.sections[0].id,
        "item_id": fx.items[0].id,
        "article_id": fx.articles[0].id,
        "subscriber_id": 1,
    }
    return PARAM.sub(lambda m: str(ids.get(m.group(1), 1)), path)


def fingerprint(session: Session) -> dict[str, Any]:
    """Every table's row count plus the rows of the tables an editor changes."""
    session.expire_all()
    counts = {
        name: session.execute(select(func.count()).select_from(table)).scalar_one()
        for name, table in SQLModel.metadata.tables.items()
        if name != "editorsession"
    }
    rows = {
        name: sorted(map(tuple, session.execute(text(f"SELECT * FROM {name}")).all()), key=str)
        for name in ("issue", "issuesection", "issueitem", "article", "subscription")
    }
    return {"counts": counts, "rows": rows}


@pytest.fixture
def fx(session: Session) -> IssueFixture:
    fixture = make_issue(session, layout=(2, 1))
    make_subscribers(session, fixture.newsletter, 3)
    return fixture


def test_there_are_editor_routes_to_check(settings: Settings) -> None:
    routes = admin_routes(settings)
    assert ("POST", "/admin/items/{item_id}/move") in routes
    assert ("GET", "/admin/issues/{issue_id}/preview.html") in routes
    assert len([r for r in routes if r[0] == "POST"]) >= 15


def test_anonymous_requests_are_refused_everywhere(
    settings: Settings, anonymous: TestClient, session: Session, fx: IssueFixture
) -> None:
    before = fingerprint(session)
    for method, path in admin_routes(settings):
        url = fill(path, fx)
        answer = anonymous.request(method, url, data={"title": "x"}, follow_redirects=False)
        if method == "GET":
            assert answer.status_code == 303, (method, url, answer.status_code)
            assert answer.headers["location"].startswith("/admin/login?next=%2Fadmin")
        else:
            assert answer.status_code == 401, (method, url, answer.status_code)
        assert fx.articles[0].title not in answer.text
    assert fingerprint(session) == before


def test_a_forged_or_foreign_session_cookie_is_anonymous(
    settings: Settings, anonymous: TestClient, session: Session, fx: IssueFixture
) -> None:
    make_editor(settings)
    forged = [
        "not-signed",
        URLSafeSerializer("another-key", salt="newsletter.admin.session").dumps("x" * 43),
        URLSafeSerializer(settings.secret_key, salt="newsletter.admin.session").dumps("guess"),
    ]
    for value in forged:
        anonymous.cookies.set(SESSION_COOKIE, value, domain="testserver.local", path="/admin")
        answer = anonymous.get(f"/admin/issues/{fx.issue.id}", follow_redirects=False)
        assert answer.status_code == 303
        anonymous.cookies.clear()


def test_posts_without_a_valid_csrf_token_are_refused(
    settings: Settings, editor: Editor, session: Session, fx: IssueFixture
) -> None:
    before = fingerprint(session)
    posts = [p for m, p in admin_routes(settings) if m == "POST" and p != "/admin/logout"]
    for path in posts:
        url = fill(path, fx)
        fields = {"title": "changed", "position": "0", "recipients": "3"}
        missing = editor.client.post(url, data=fields, follow_redirects=False)
        assert missing.status_code == 403, (url, missing.status_code)
        wrong = editor.client.post(
            url, data={**fields, "csrf_token": "x" + editor.csrf[1:]}, follow_redirects=False
        )
        assert wrong.status_code == 403, (url, wrong.status_code)
        header = editor.client.post(
            url, data=fields, headers={"x-csrf-token": "nope"}, follow_redirects=False
        )
        assert header.status_code == 403
    assert fingerprint(session) == before
    # the same request with the token goes through
    ok = editor.post(f"/admin/issues/{fx.issue.id}/details", {"title": "changed"})
    assert ok.status_code == 303
    assert fingerprint(session) != before


def test_sign_out_needs_the_token_too(editor: Editor) -> None:
    refused = editor.client.post("/admin/logout", follow_redirects=False)
    assert refused.status_code == 403
    assert editor.client.get("/admin/", follow_redirects=False).status_code == 200


def test_session_cookie_flags(settings: Settings, anonymous: TestClient) -> None:
    make_editor(settings)
    form = anonymous.get("/admin/login")
    login_cookie = form.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    answer = anonymous.post(
        "/admin/login",
        data={"email": EDITOR_EMAIL, "password": EDITOR_PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    cookies = answer.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    flags = [part.strip().lower() for part in session_cookie.split(";")]
    assert "httponly" in flags
    assert "secure" in flags
    assert "samesite=strict" in flags
    assert "path=/admin" in flags
    assert any(f.startswith("max-age=") for f in flags)


def test_sign_in_failures(settings: Settings, anonymous: TestClient, session: Session) -> None:
    make_editor(settings)
    form = anonymous.get("/admin/login")
    token = csrf_of(form.text)
    wrong = anonymous.post(
        "/admin/login",
        data={"email": EDITOR_EMAIL, "password": "wrong password!", "csrf_token": token},
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    assert "do not match" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    token = csrf_of(wrong.text)  # each form gets a fresh token (and cookie)
    unknown = anonymous.post(
        "/admin/login",
        data={"email": "nobody@example.org", "password": EDITOR_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert unknown.status_code == 401 and "do not match" in unknown.text
    token = csrf_of(unknown.text)
    anonymous.cookies.clear()  # no login cookie: the form's token proves nothing
    forged = anonymous.post(
        "/admin/login",
        data={"email": EDITOR_EMAIL, "password": EDITOR_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert session.exec(select(EditorSession)).all() == []


def test_sign_in_is_rate_limited_per_address(settings: Settings, anonymous: TestClient) -> None:
    make_editor(settings)
    token = csrf_of(anonymous.get("/admin/login").text)
    codes = []
    for n in range(LOGIN_PER_ADDRESS + 1):
        answer = anonymous.post(
            "/admin/login",
            data={"email": EDITOR_EMAIL, "password": f"guess number {n}", "csrf_token": token},
            follow_redirects=False,
        )
        codes.append(answer.status_code)
        if answer.status_code == 401:
            token = csrf_of(answer.text)
    assert codes[:-1] == [401] * LOGIN_PER_ADDRESS
    assert codes[-1] == 429
    # even the right password is refused until the window passes
    right = anonymous.post(
        "/admin/login",
        data={"email": EDITOR_EMAIL, "password": EDITOR_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert right.status_code == 429


def test_successful_sign_ins_do_not_count_against_the_limit(
    settings: Settings, anonymous: TestClient
) -> None:
    make_editor(settings)
    for _ in range(LOGIN_PER_ADDRESS + 3):
        sign_in(anonymous)
        anonymous.cookies.clear()


def test_someone_who_knows_the_address_cannot_lock_the_editor_out(
    settings: Settings, anonymous: TestClient
) -> None:
    make_editor(settings)
    attacker = TestClient(anonymous.app, base_url="https://testserver", client=("203.0.113.9", 1))
    with attacker:
        token = csrf_of(attacker.get("/admin/login").text)
        for n in range(LOGIN_PER_ADDRESS + 2):
            answer = attacker.post(
                "/admin/login",
                data={"email": EDITOR_EMAIL, "password": f"guess {n}", "csrf_token": token},
                follow_redirects=False,
            )
            if answer.status_code == 401:
                token = csrf_of(answer.text)
        assert answer.status_code == 429  # the attacker's IP is stopped for that address
    sign_in(anonymous)  # the editor, from their own address, still gets in


def test_sign_in_never_redirects_off_site(settings: Settings, anonymous: TestClient) -> None:
    make_editor(settings)
    form = anonymous.get("/admin/login?next=https://evil.example/")
    assert 'name="next" value="/admin/"' in form.text
    answer = anonymous.post(
        "/admin/login",
        data={
            "email": EDITOR_EMAIL,
            "password": EDITOR_PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/admin",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/admin/"


def test_signing_out_ends_the_session_for_a_copied_cookie_too(
    settings: Settings, editor: Editor
) -> None:
    stolen = editor.client.cookies.get(SESSION_COOKIE)
    assert stolen
    out = editor.post("/admin/logout")
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert editor.client.get("/admin/", follow_redirects=False).status_code == 303
    with TestClient(create_app(settings), base_url="https://testserver") as thief:
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert thief.get("/admin/", follow_redirects=False).status_code == 303


def test_pages_carry_a_strict_content_security_policy(editor: Editor, fx: IssueFixture) -> None:
    page = editor.client.get(f"/admin/issues/{fx.issue.id}")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script anywhere: only /admin/static files


def test_article_markup_cannot_script_the_preview(
    editor: Editor, session: Session, fx: IssueFixture
) -> None:
    article = session.get(Article, fx.articles[0].id)
    assert article is not None
    article.title = "<script>parent.document.title='pwned'</script>Headline"
    article.summary = "<img src=x onerror=\"alert('pwned')\"> Summary"
    session.add(article)
    session.commit()
    page = editor.client.get(f"/admin/issues/{fx.issue.id}")
    frame = re.search(r"<iframe[^>]*id=\"preview-frame\"[^>]*>", page.text)
    assert frame and re.search(r"\ssandbox(\s|>)", frame.group(0))
    assert "allow-scripts" not in frame.group(0)
    preview = editor.client.get(f"/admin/issues/{fx.issue.id}/preview.html")
    assert "<script>" not in preview.text and "<img src=x" not in preview.text
    assert "&lt;script&gt;" in preview.text
    assert preview.headers["content-security-policy"].startswith("sandbox;")
