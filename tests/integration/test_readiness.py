"""Readiness tells the truth about the schema: a database behind the migrations' head is not
ready, its routes say why (503) instead of failing (500), the worker will not start on it and
the CLI says the one thing to do. On SQLite and PostgreSQL; "behind" is a downgrade to 0006.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter import cli, db
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from tests.support import cli_fork

BEHIND = "schema not at head: run `newsletter db upgrade`"
OLDER = "0006"


@pytest.fixture
def token(session: Session) -> str:
    value = api_tokens.create(session, "readiness")
    session.commit()
    return value


@pytest.fixture
def client(settings: Settings, token: str) -> Iterator[TestClient]:
    app = create_app(settings, dispatch=lambda _issue_id: None)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, with the test's NEWSLETTER_* settings."""
    return cli_fork.run(list(args), cwd=folder, env={**os.environ, "COLUMNS": "200"})


def assert_the_one_line(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [BEHIND]


# ---------------------------------------------------------------- the check itself


def test_the_message_is_the_one_the_brief_and_the_readme_use() -> None:
    assert db.SCHEMA_BEHIND == BEHIND


def test_a_migrated_database_is_at_head(database_url: str) -> None:
    assert db.schema_at_head(database_url)
    assert db.schema_revisions(database_url) == db.migration_heads()


def test_a_database_behind_the_migrations_is_not_at_head(database_url: str) -> None:
    db.downgrade(database_url, OLDER)
    assert db.schema_revisions(database_url) == {OLDER}
    assert not db.schema_at_head(database_url)


def test_a_database_never_migrated_is_not_at_head(database_url: str) -> None:
    db.downgrade(database_url, "base")
    assert db.schema_revisions(database_url) == frozenset()
    assert not db.schema_at_head(database_url)


def test_the_heads_are_read_once_per_process() -> None:
    assert db.migration_heads() is db.migration_heads()
    assert db.migration_heads.cache_info().misses <= 1


# ---------------------------------------------------------------- the web app


def test_readyz_is_503_naming_the_upgrade_when_the_schema_is_behind(
    client: TestClient, settings: Settings
) -> None:
    db.downgrade(settings.database_url, OLDER)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": BEHIND, "redis": "not used"},
    }


def test_readyz_is_ready_again_after_the_upgrade(client: TestClient, settings: Settings) -> None:
    db.downgrade(settings.database_url, OLDER)
    db.upgrade(settings.database_url)
    assert client.get("/readyz").status_code == 200


def test_an_api_route_reading_what_the_schema_lacks_is_a_503_with_the_reason(
    client: TestClient, settings: Settings
) -> None:
    db.downgrade(settings.database_url, OLDER)  # no subscriber.email_hash yet
    response = client.get("/api/subscribers")
    assert response.status_code == 503
    assert response.json() == {"error": BEHIND}


def test_a_page_on_an_unmigrated_database_is_a_503_page_with_the_reason(
    settings: Settings,
) -> None:
    db.downgrade(settings.database_url, "base")
    with TestClient(create_app(settings)) as client:
        response = client.get("/archive")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "schema not at head: run `newsletter db upgrade`" in response.text


# ---------------------------------------------------------------- the commands


def test_the_worker_refuses_to_start_on_a_schema_behind_the_code(
    settings: Settings, tmp_path: Path
) -> None:
    db.downgrade(settings.database_url, OLDER)
    assert_the_one_line(run_cli(tmp_path, "worker"))


def test_a_command_that_needs_the_database_says_the_same_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    db.downgrade(settings.database_url, OLDER)
    assert_the_one_line(run_cli(tmp_path, "subscribers", "list"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """What ``newsletter serve`` would run, instead of running it."""
    configs: list[uvicorn.Config] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, *a, **k: configs.append(server.config)
    )
    return configs


def test_serve_starts_anyway_with_the_one_line_when_the_schema_is_behind(
    settings: Settings, served: list[uvicorn.Config]
) -> None:
    db.downgrade(settings.database_url, OLDER)
    result = CliRunner().invoke(cli.app, ["serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert BEHIND in result.stderr
    assert len(served) == 1  # readiness keeps traffic away until the upgrade


def test_serve_says_nothing_of_the_schema_when_it_is_at_head(
    settings: Settings, served: list[uvicorn.Config]
) -> None:
    result = CliRunner().invoke(cli.app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "schema" not in result.output + result.stderr
    assert len(served) == 1
