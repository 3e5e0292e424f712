"""The pages of a local stack: ``/dev/outbox`` (development only, this machine only, escaped),
``/`` sending a visitor to the editor UI, and the favicon."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from newsletter.api import create_app
from newsletter.config import Settings

LOOPBACK = ("127.0.0.1", 50000)
SCRIPT = "<script>alert(1)</script>"


def write_message(
    folder: Path, name: str, *, to: str, subject: str, html: str | None, text: str, at: float
) -> None:
    message = EmailMessage()
    message["From"] = "Belarus Weekly <weekly@news.example.org>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(message.as_bytes())
    os.utime(path, (at, at))


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    now = time.time()
    write_message(
        folder,
        "000001.eml",
        to="Anna <anna@example.org>",
        subject="Older issue",
        html="<p>Hello</p>",
        text="Hello",
        at=now - 60,
    )
    write_message(
        folder,
        "000002.eml",
        to=f"Eve {SCRIPT} <eve@example.org>",
        subject=f"Newest {SCRIPT}",
        html=f"<h1>Read</h1>{SCRIPT}<img src=x onerror=alert(2)>",
        text=f"Plain {SCRIPT}",
        at=now,
    )
    return folder


def dev_app(tmp_path: Path, outbox: Path, environment: str = "development") -> TestClient:
    settings = Settings(
        environment=environment,
        secret_key="test-secret",
        base_url="https://news.example.org",
        database_url=f"sqlite:///{tmp_path / 'newsletter.db'}",
        outbox_dir=outbox,
    )
    return TestClient(create_app(settings), base_url="https://testserver", client=LOOPBACK)


@pytest.fixture
def client(tmp_path: Path, outbox: Path) -> Iterator[TestClient]:
    with dev_app(tmp_path, outbox) as c:
        yield c


def test_the_outbox_lists_messages_newest_first_with_time_to_and_subject(
    client: TestClient,
) -> None:
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    html = page.text
    assert html.index("Newest") < html.index("Older issue")
    assert "anna@example.org" in html
    assert 'href="/dev/outbox/000002.eml"' in html
    assert " UTC</time>" in html
    assert "2 messages." in html


def test_the_outbox_escapes_what_the_messages_say(client: TestClient) -> None:
    for path in ("/dev/outbox", "/dev/outbox/000002.eml"):
        html = client.get(path).text
        assert SCRIPT not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_message_shows_its_text_and_its_html_only_in_a_sandboxed_frame(
    client: TestClient,
) -> None:
    page = client.get("/dev/outbox/000002.eml")
    assert page.status_code == 200
    assert "Plain &lt;script&gt;" in page.text
    assert '<iframe class="preview-frame" sandbox ' in page.text
    assert 'src="/dev/outbox/000002.eml/html"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]  # never inline
    frame = client.get("/dev/outbox/000002.eml/html")
    assert frame.status_code == 200
    assert frame.headers["content-security-policy"].startswith("sandbox;")
    assert "script-src" not in frame.headers["content-security-policy"]  # default-src 'none'
    assert "<h1>Read</h1>" in frame.text


@pytest.mark.parametrize(
    "path",
    [
        "/dev/outbox/000009.eml",
        "/dev/outbox/..%2Fnewsletter.db",
        "/dev/outbox/.000001.eml.part",
        "/dev/outbox/000001.txt",
    ],
)
def test_a_message_that_is_not_in_the_outbox_is_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_an_empty_or_missing_outbox_says_so(tmp_path: Path) -> None:
    with dev_app(tmp_path, tmp_path / "none-yet") as c:
        page = c.get("/dev/outbox")
    assert page.status_code == 200
    assert "No message yet" in page.text


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_the_outbox_does_not_exist(
    tmp_path: Path, outbox: Path, environment: str
) -> None:
    with dev_app(tmp_path, outbox, environment) as c:
        assert c.get("/dev/outbox").status_code == 404
        assert c.get("/dev/outbox/000001.eml").status_code == 404
        assert c.get("/dev/outbox/000001.eml/html").status_code == 404


def test_the_outbox_answers_only_this_machine(tmp_path: Path, outbox: Path) -> None:
    settings = dev_app(tmp_path, outbox).app.state.settings  # type: ignore[attr-defined]
    with TestClient(create_app(settings), client=("192.0.2.7", 50000)) as c:
        assert c.get("/dev/outbox").status_code == 404
        assert c.get("/dev/outbox/000001.eml").status_code == 404


def test_the_root_sends_a_visitor_to_the_editor(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code in (302, 303, 307)
    assert answer.headers["location"] == "/admin/"


def test_the_site_has_a_favicon_the_pages_name(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.content.startswith(b"<svg")
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/admin/login").text
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/subscribe").text
