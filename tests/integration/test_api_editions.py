"""Editions over the admin API and the CLI (issue 16, part 4): add, set, list, remove; mistakes
are a 4xx with a reason, one red line in the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter import cli
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.exceptions import UserError
from newsletter.models import Edition, EditionItem
from tests.conftest import make_issue


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    value = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def test_an_editor_adds_and_translates_an_edition_over_the_api(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    fx = make_issue(session)
    base = f"/api/issues/{fx.issue.id}/editions"
    item = fx.items[0].id
    assert client.post(base, json={"language": "be-by"}, headers=auth).status_code == 201
    changed = client.patch(
        f"{base}/be-BY", json={"subject": "Мінск", "intro_md": "Вітаем"}, headers=auth
    )
    assert changed.status_code == 200 and changed.json()["subject"] == "Мінск"
    story = client.put(f"{base}/be-BY/items/{item}", json={"headline": "Загаловак"}, headers=auth)
    assert story.json()["items"][str(item)] == {
        "headline": "Загаловак",
        "blurb": "",
        "image_alt": "",
    }
    alt = {"image_alt": "Вуліца ў Мінску"}  # the picture described in the edition's language
    story = client.put(f"{base}/be-BY/items/{item}", json=alt, headers=auth)
    assert story.json()["items"][str(item)]["image_alt"] == "Вуліца ў Мінску"
    assert story.json()["items"][str(item)]["headline"] == "Загаловак"  # the others stay
    long = {"image_alt": "x" * 301}
    assert client.put(f"{base}/be-BY/items/{item}", json=long, headers=auth).status_code == 422
    listed = client.get(base, headers=auth).json()
    assert [e["language"] for e in listed] == ["be-BY"] and listed[0]["intro_md"] == "Вітаем"
    assert client.delete(f"{base}/be-BY", headers=auth).status_code == 204
    assert client.get(base, headers=auth).json() == []


def test_api_mistakes_are_4xx_with_a_reason(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    fx = make_issue(session)
    base = f"/api/issues/{fx.issue.id}/editions"
    refused = client.post(base, json={"language": "en"}, headers=auth)
    assert refused.status_code == 422 and "newsletter's language" in refused.json()["error"]
    assert client.post(base, json={"language": "x y"}, headers=auth).status_code == 422
    assert client.patch(f"{base}/ru", json={"subject": "x"}, headers=auth).status_code == 404
    assert client.patch(f"{base}/ru", json={"html": "x"}, headers=auth).status_code == 422
    assert client.get(base).status_code == 401


def test_the_cli_adds_sets_and_lists_editions(session: Session, settings: Settings) -> None:
    fx = make_issue(session)
    issue = str(fx.issue.id)

    def run(*args: str) -> tuple[int, str, BaseException | None]:
        result = CliRunner().invoke(cli.app, ["issues", "edition", *args], env={"COLUMNS": "200"})
        return result.exit_code, result.output, result.exception

    assert run("add", issue, "ru")[0] == 0
    code, out, _ = run("set", issue, "ru", "--subject", "Минск")
    assert code == 0 and "set subject" in out
    assert "ru: subject translated" in run("list", issue)[1]
    item = str(fx.items[0].id)
    code, out, _ = run("story", issue, "ru", item, "--alt", "Улица в Минске")
    assert code == 0 and "saved" in out
    edition = session.exec(select(Edition).where(Edition.issue_id == fx.issue.id)).one()
    stored = session.get(EditionItem, (edition.id, fx.items[0].id))
    assert stored is not None and stored.image_alt == "Улица в Минске"
    code, out, error = run("add", issue, "ru")
    assert code == 1 and isinstance(error, UserError) and "already has a ru edition" in str(error)
    assert "Traceback" not in out
