"""Helpers for the editor-UI tests: an app, an editor account, a signed-in TestClient.

The settings' base URL is https, so the session cookie is Secure: the client talks to
``https://testserver`` or it would not send the cookie back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter import db
from newsletter.access import editors
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.sending import start

EDITOR_EMAIL = "editor@news.example.org"
EDITOR_PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Dispatched:
    """Stands in for the Celery dispatch: the issue ids the app asked to send. With a
    ``database_url`` it also does the worker's first step, in a session of its own: it fills
    the ledger of an issue sent now (``preparing`` -> ``sending``); it sends nothing."""

    ids: list[int] = field(default_factory=list)
    database_url: str | None = None

    def __call__(self, issue_id: int) -> None:
        self.ids.append(issue_id)
        if self.database_url is not None:
            with db.session_scope(self.database_url) as s:
                start.fill_prepared(s, issue_id=issue_id)


def make_editor(settings: Settings, email: str = EDITOR_EMAIL, role: str = "admin") -> None:
    with db.session_scope(settings.database_url) as s:
        editors.create_user(s, email=email, password=EDITOR_PASSWORD, name="Ada Editor", role=role)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str = EDITOR_EMAIL, password: str = EDITOR_PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token (from the dashboard)."""
    form = client.get("/admin/login")
    assert form.status_code == 200
    answer = client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/admin/").text)


@pytest.fixture
def dispatched(settings: Settings) -> Dispatched:
    return Dispatched(database_url=settings.database_url)


@pytest.fixture
def anonymous(settings: Settings, dispatched: Dispatched) -> Iterator[TestClient]:
    app = create_app(settings, dispatch=dispatched)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


@dataclass
class Editor:
    client: TestClient
    csrf: str

    def post(self, path: str, data: dict[str, object] | None = None, **kw: object):  # type: ignore[no-untyped-def]
        """A form post with this session's CSRF token; redirects are not followed."""
        fields = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(path, data=fields, follow_redirects=False, **kw)  # type: ignore[arg-type]


@pytest.fixture
def editor(settings: Settings, anonymous: TestClient, session: Session) -> Editor:
    make_editor(settings)
    return Editor(anonymous, sign_in(anonymous))
