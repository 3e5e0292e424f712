"""The article pages of the editor UI: list and filters, new/edit, URL clashes, imports."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import Article
from tests.conftest import make_article
from tests.integration.admin_support import Editor  # fixtures: tests/integration/conftest.py

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _form(**overrides: str) -> dict[str, Any]:
    values = {
        "url": "https://news.example.org/2025/11/new-bridge",
        "title": "A new bridge over the Svislach",
        "summary": "The city opened it on Monday.",
        "bullet": "Minsk has a new bridge",
        "body_html": "<p>Opened on <em>Monday</em>.</p>",
        "image_url": "https://images.example.org/bridge.jpg",
        "image_alt": "The bridge at dusk",
        "image_credit": "Photo: Example Agency",
        "author": "Olga Varabei",
        "section": "City",
        "tags": "bridges, Minsk",
        "published_at": "2025-11-03T09:30",
    }
    values.update(overrides)
    return values


def _by_url(session: Session, url: str) -> Article | None:
    session.expire_all()
    return session.exec(select(Article).where(Article.url == url)).first()


def _follow(editor: Editor, response: Any) -> str:
    assert response.status_code == 303, response.text
    page = editor.client.get(response.headers["location"])
    assert page.status_code == 200
    return str(page.text)


# ---------------------------------------------------------------- list and filters


def test_list_filters_by_title_section_tag_and_dates(editor: Editor, session: Session) -> None:
    make_article(
        session,
        title="Bridge opens",
        section="City",
        tags=["Transport", "minsk"],
        published_at=datetime(2025, 10, 1, 8, tzinfo=UTC),
    )
    make_article(
        session,
        title="Harvest report",
        section="Economy",
        tags=["farming"],
        published_at=datetime(2025, 10, 15, 23, 30, tzinfo=UTC),
        image_alt=None,
    )
    make_article(
        session,
        title="Bridge closed for repairs",
        section="City",
        tags=["transport"],
        published_at=datetime(2025, 11, 2, tzinfo=UTC),
        image_url=None,
        image_alt=None,
    )

    def titles(**params: str) -> set[str]:
        page = editor.client.get("/admin/articles", params=params)
        assert page.status_code == 200, page.text
        found = {t for t in ("Bridge opens", "Harvest report", "Bridge closed") if t in page.text}
        return found

    everything = {"Bridge opens", "Harvest report", "Bridge closed"}
    assert titles() == everything
    assert titles(q="bridge") == {"Bridge opens", "Bridge closed"}
    assert titles(section="Economy") == {"Harvest report"}
    assert titles(tag="TRANSPORT") == {"Bridge opens", "Bridge closed"}  # any case
    assert titles(tag="trans") == set()  # a whole tag, not a part of one
    assert titles(published_from="2025-10-15") == {"Harvest report", "Bridge closed"}
    assert titles(published_to="2025-10-15") == {"Bridge opens", "Harvest report"}
    assert titles(published_from="2025-10-02", published_to="2025-11-01") == {"Harvest report"}
    assert titles(q="bridge", section="City", tag="minsk") == {"Bridge opens"}
    assert titles(section="", tag="", q="", published_from="", published_to="") == everything

    page = editor.client.get("/admin/articles").text
    assert '<option value="City">' in page and '<option value="Economy">' in page
    assert "image, no alt text" in page  # the harvest report has an image without alt text
    assert "no image" in page
    assert 'href="/admin/articles/new"' in page


def test_list_refuses_a_bad_date(editor: Editor) -> None:
    page = editor.client.get("/admin/articles", params={"published_from": "yesterday"})
    assert page.status_code == 422
    assert "is not a date" in page.text


def test_list_needs_a_signed_in_editor(anonymous: Any) -> None:
    response = anonymous.get("/admin/articles", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


# ---------------------------------------------------------------- new and edit


def test_create_sanitises_the_body_and_edit_saves(editor: Editor, session: Session) -> None:
    form = editor.client.get("/admin/articles/new")
    assert form.status_code == 200
    assert 'name="body_html"' in form.text and "scripts" in form.text

    body = (
        '<p onclick="steal()">Hello</p><script>alert("x")</script>'
        '<img src="https://images.example.org/a.jpg" onerror="steal()" alt="A">'
    )
    created = editor.post("/admin/articles", _form(body_html=body))
    assert created.status_code == 303, created.text
    article = _by_url(session, "https://news.example.org/2025/11/new-bridge")
    assert article is not None
    assert created.headers["location"] == f"/admin/articles/{article.id}"
    assert "<script" not in article.body_html and "alert" not in article.body_html
    assert "onerror" not in article.body_html and "onclick" not in article.body_html
    assert "<p>Hello</p>" in article.body_html
    assert 'src="https://images.example.org/a.jpg"' in article.body_html
    assert article.tags == ["bridges", "Minsk"]
    assert article.section == "City"
    assert article.published_at is not None
    assert article.published_at.replace(tzinfo=UTC) == datetime(2025, 11, 3, 9, 30, tzinfo=UTC)

    page = _follow(editor, created)
    assert "Article created." in page
    assert 'value="A new bridge over the Svislach"' in page
    assert 'value="2025-11-03T09:30"' in page
    assert "&lt;script" not in page  # the stored body holds no script to show

    saved = editor.post(
        f"/admin/articles/{article.id}",
        _form(
            title="The new bridge, renamed",
            tags="bridges",
            section="",
            image_url="",
            image_alt="",
            published_at="2025-11-04",
            body_html='<p>Now <a href="javascript:alert(1)">safe</a></p>',
        ),
    )
    assert saved.headers["location"] == f"/admin/articles/{article.id}"
    assert "Article saved." in _follow(editor, saved)
    again = _by_url(session, "https://news.example.org/2025/11/new-bridge")
    assert again is not None and again.id == article.id
    assert again.title == "The new bridge, renamed"
    assert again.tags == ["bridges"]
    assert again.section is None and again.image_url is None
    assert again.published_at is not None and again.published_at.day == 4
    assert "javascript" not in again.body_html


def test_invalid_form_shows_the_error(editor: Editor, session: Session) -> None:
    refused = editor.post(
        "/admin/articles",
        _form(url="ftp://news.example.org/x", title="Broken"),
        headers={"referer": "https://testserver/admin/articles/new"},
    )
    assert refused.status_code == 422
    page = refused.text
    assert "must be an absolute http(s) URL" in page
    # the form comes back with what was typed, body included
    assert 'value="ftp://news.example.org/x"' in page and 'value="Broken"' in page
    assert "&lt;p&gt;Opened on &lt;em&gt;Monday&lt;/em&gt;.&lt;/p&gt;</textarea>" in page
    session.expire_all()
    assert session.exec(select(Article).where(Article.title == "Broken")).first() is None


def test_a_form_without_a_url_comes_back_with_the_reason(editor: Editor, session: Session) -> None:
    values = _form(title="No address")
    del values["url"]
    refused = editor.post("/admin/articles", values)
    assert refused.status_code == 422
    assert "missing &#39;url&#39;" in refused.text
    assert 'value="No address"' in refused.text
    session.expire_all()
    assert session.exec(select(Article).where(Article.title == "No address")).first() is None


def test_a_field_longer_than_the_form_takes_is_refused(editor: Editor, session: Session) -> None:
    refused = editor.post(
        "/admin/articles",
        _form(title="x" * 2001),
        headers={"referer": "https://testserver/admin/articles/new"},
    )
    assert "&#39;title&#39; is longer than 2000 characters" in _follow(editor, refused)
    assert _by_url(session, "https://news.example.org/2025/11/new-bridge") is None


def test_url_clash_is_refused_not_merged(editor: Editor, session: Session) -> None:
    first = make_article(session, title="First story")
    second = make_article(session, title="Second story")
    refused = editor.post(
        f"/admin/articles/{second.id}",
        _form(url=first.url, title="Second story, moved"),
        headers={"referer": f"https://testserver/admin/articles/{second.id}"},
    )
    assert refused.status_code == 422
    page = refused.text
    assert f"already the URL of article {first.id}" in page
    assert 'value="Second story, moved"' in page  # what was typed, not the stored title
    session.expire_all()
    kept_first = session.get(Article, first.id)
    kept_second = session.get(Article, second.id)
    assert kept_first is not None and kept_first.title == "First story"
    assert kept_second is not None and kept_second.url == second.url
    assert kept_second.title == "Second story"

    # creating a "new" article with a known URL does not overwrite the known one either
    again = editor.post("/admin/articles", _form(url=first.url, title="Impostor"))
    assert again.status_code == 422
    session.expire_all()
    still = session.get(Article, first.id)
    assert still is not None and still.title == "First story"
    assert session.exec(select(Article).where(Article.title == "Impostor")).first() is None


def test_edit_of_a_missing_article_is_not_found(editor: Editor) -> None:
    page = editor.client.get("/admin/articles/999999")
    assert page.status_code == 404
    assert "no article with id 999999" in page.text


# ---------------------------------------------------------------- import


def test_json_upload_imports_the_good_items_and_lists_the_bad(
    editor: Editor, session: Session
) -> None:
    records = [
        {"url": "https://news.example.org/a", "title": "Good one", "tags": ["x"]},
        {"title": "No address"},
        {
            "url": "https://news.example.org/b",
            "title": "Good two",
            "body_html": "<script>x</script>",
        },
    ]
    page = editor.client.get("/admin/articles/import")
    assert 'enctype="multipart/form-data"' in page.text
    result = editor.post(
        "/admin/articles/import/file",
        files={"file": ("articles.json", json.dumps(records).encode(), "application/json")},
    )
    assert result.status_code == 200, result.text
    assert "2 created, 0 updated, 1 rejected" in result.text
    assert "item 2: missing &#39;url&#39;" in result.text
    good_two = _by_url(session, "https://news.example.org/b")
    assert good_two is not None and good_two.title == "Good two"
    assert "script" not in good_two.body_html
    assert _by_url(session, "https://news.example.org/a") is not None

    # the same file again updates instead of duplicating
    result = editor.post(
        "/admin/articles/import/file",
        files={"file": ("articles.json", json.dumps(records).encode(), "application/json")},
    )
    assert "0 created, 2 updated, 1 rejected" in result.text


def test_yaml_and_feed_file_uploads(editor: Editor, session: Session) -> None:
    result = editor.post(
        "/admin/articles/import/file",
        files={"file": ("articles.yaml", (FIXTURES / "articles.yaml").read_bytes(), "text/yaml")},
    )
    assert result.status_code == 200, result.text
    assert " created, " in result.text
    result = editor.post(
        "/admin/articles/import/file",
        files={"file": ("feed.xml", (FIXTURES / "feed_rss.xml").read_bytes(), "text/xml")},
    )
    assert "2 created, 0 updated, 0 rejected" in result.text
    assert _by_url(session, "https://gazette.example.org/2024/04/market-hall") is not None


def test_unusable_upload_is_refused(editor: Editor) -> None:
    refused = editor.post(
        "/admin/articles/import/file",
        files={"file": ("notes.txt", b"just some text", "text/plain")},
        headers={"referer": "https://testserver/admin/articles/import"},
    )
    assert refused.headers["location"] == "/admin/articles/import"
    assert "not a JSON, YAML or RSS/Atom file" in _follow(editor, refused)
    broken = editor.post(
        "/admin/articles/import/file",
        files={"file": ("broken.json", b"[{", "application/json")},
        headers={"referer": "https://testserver/admin/articles/import"},
    )
    assert "broken.json: invalid JSON at line 1" in _follow(editor, broken)
    nothing = editor.post(  # what a browser sends when no file was chosen
        "/admin/articles/import/file",
        files={"file": ("", b"", "application/octet-stream")},
        headers={"referer": "https://testserver/admin/articles/import"},
    )
    assert "choose a .json, .yaml, .yml or feed .xml file" in _follow(editor, nothing)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_feeds() -> Iterator[str]:
    """The fixtures folder over HTTP on 127.0.0.1 (which the outbound guard refuses unless it is
    allowed); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(FIXTURES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def loopback_allowed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings with 127.0.0.0/8 allowed for outbound fetches."""
    monkeypatch.setattr(settings, "outbound_allow_networks", "127.0.0.0/8")
    return settings


@pytest.fixture
def feed_server(local_feeds: str, loopback_allowed: Settings) -> str:
    """The fixtures folder over HTTP on 127.0.0.1, allowed."""
    return local_feeds


def test_feed_url_import(editor: Editor, session: Session, feed_server: str) -> None:
    result = editor.post("/admin/articles/import/feed", {"feed_url": f"{feed_server}/feed_rss.xml"})
    assert result.status_code == 200, result.text
    assert "2 created, 0 updated, 0 rejected" in result.text
    ferry = _by_url(session, "https://gazette.example.org/2024/05/ferry-timetable")
    assert ferry is not None
    assert ferry.author == "Ana Costa"
    assert "<script" not in ferry.body_html and "starts on Monday" in ferry.body_html

    missing = editor.post(
        "/admin/articles/import/feed",
        {"feed_url": f"{feed_server}/nothing-here.xml"},
        headers={"referer": "https://testserver/admin/articles/import"},
    )
    assert "HTTP 404" in _follow(editor, missing)


def test_feed_form_takes_web_addresses_only(editor: Editor, session: Session) -> None:
    refused = editor.post(
        "/admin/articles/import/feed",
        {"feed_url": str(FIXTURES / "feed_rss.xml")},
        headers={"referer": "https://testserver/admin/articles/import"},
    )
    assert "must be an http(s) URL" in _follow(editor, refused)
    assert _by_url(session, "https://gazette.example.org/2024/05/ferry-timetable") is None


IMPORT_PAGE = {"referer": "https://testserver/admin/articles/import"}


def test_a_local_feed_url_is_refused_without_the_allow_setting(
    editor: Editor, session: Session, local_feeds: str
) -> None:
    refused = editor.post(
        "/admin/articles/import/feed",
        {"feed_url": f"{local_feeds}/feed_rss.xml"},
        headers=IMPORT_PAGE,
    )
    assert "the address is not allowed (not a public address)" in _follow(editor, refused)
    assert _by_url(session, "https://gazette.example.org/2024/05/ferry-timetable") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:6379/",
        "http://2130706433/feed.xml",
        "http://[::1]/feed.xml",
        "http://10.0.0.1/feed.xml",
    ],
)
def test_internal_feed_urls_are_refused_with_a_message(editor: Editor, url: str) -> None:
    refused = editor.post("/admin/articles/import/feed", {"feed_url": url}, headers=IMPORT_PAGE)
    assert "not a public address" in _follow(editor, refused)
    scripted = editor.post(
        "/admin/articles/import/feed",
        {"feed_url": url},
        headers={**IMPORT_PAGE, "x-requested-with": "fetch"},
    )
    assert scripted.status_code == 422 and "not a public address" in scripted.json()["error"]


Reply = Callable[[socket.socket], None]


@contextmanager
def one_connection(reply: Reply) -> Iterator[str]:
    """A server on 127.0.0.1 that reads one request and answers with ``reply``; yields a URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError), listener.accept()[0] as conn:
            conn.recv(65536)
            reply(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    finally:
        thread.join(timeout=10)
        listener.close()


def _dropped(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<?xml version=")


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _trickle(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        time.sleep(0.2)
        conn.sendall(b"x")


def _huge(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)


def _garbage(conn: socket.socket) -> None:
    body = bytes(range(256)) * 4
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + body)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (_dropped, "no answer from the server"),
        (_reset, "no answer from the server"),
        (_trickle, "no answer from the server"),
        (_huge, "the response is larger than 2048 bytes"),
        (_garbage, "feed.xml: not a"),  # "not a readable feed" or "not an RSS or Atom feed"
    ],
    ids=["dropped", "reset", "trickle", "too-large", "garbage"],
)
def test_a_misbehaving_feed_server_gives_a_message_not_a_500(
    editor: Editor,
    loopback_allowed: Settings,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    message: str,
) -> None:
    monkeypatch.setattr(loopback_allowed, "outbound_read_timeout", 1.0)
    monkeypatch.setattr(loopback_allowed, "outbound_max_bytes", 2048)
    with one_connection(reply) as url:
        started = time.monotonic()
        answer = editor.post("/admin/articles/import/feed", {"feed_url": url}, headers=IMPORT_PAGE)
        assert time.monotonic() - started < 5
    assert message in _follow(editor, answer)


def test_forms_carry_the_csrf_token(editor: Editor, session: Session) -> None:
    article = make_article(session)
    for path in ("/admin/articles/new", f"/admin/articles/{article.id}", "/admin/articles/import"):
        page = editor.client.get(path).text
        forms = page.count('<form method="post"')
        assert forms >= 1
        assert page.count(f'name="csrf_token" value="{editor.csrf}"') >= forms
    refused = editor.client.post(
        "/admin/articles", data=_form(), follow_redirects=False
    )  # no token
    assert refused.status_code == 403
    assert _by_url(session, "https://news.example.org/2025/11/new-bridge") is None
