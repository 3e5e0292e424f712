""" "08:00 in each reader's zone" as a send option: the admin API's send and schedule, the CLI's
``issues send`` and ``issues status``; a bad time is a 422 with the reason, one line in the CLI
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner, Result

from newsletter import cli
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.exceptions import UserError
from newsletter.models import Issue, IssueStatus, utcnow
from newsletter.sending import local_time, start
from tests.conftest import make_issue, make_newsletter, make_subscribers, reloaded
from worker import tasks

START = datetime(2026, 11, 30, 6, tzinfo=UTC)  # 09:00 in Minsk, 01:00 in New York


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_time, "clock", lambda: START)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    value = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def _issue(session: Session) -> int:
    newsletter = make_newsletter(session, time_zone="Europe/Minsk")
    fx = make_issue(session, newsletter=newsletter)
    for zone, count in (("America/New_York", 2), (None, 3)):
        for person in make_subscribers(session, newsletter, count):
            person.time_zone = zone
            session.add(person)
    session.commit()
    assert fx.issue.id is not None
    return fx.issue.id


def test_the_api_sends_at_a_local_time_and_its_status_shows_the_waves(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    issue_id = _issue(session)
    sent = client.post(f"/api/issues/{issue_id}/send", json={"local_time": "8:00"}, headers=auth)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["started"], sent.json()["local_time"]) == (True, "08:00")
    assert start.fill_prepared(session, issue_id=issue_id) is not None  # the worker's fill
    session.commit()

    status = client.get(f"/api/issues/{issue_id}/status", headers=auth).json()
    assert status["waves"] == [  # New York today at 08:00; Minsk's has passed: tomorrow
        {"due_at": "2026-11-30T13:00:00+00:00", "total": 2, "sent": 0, "waiting": 2},
        {"due_at": "2026-12-01T05:00:00+00:00", "total": 3, "sent": 0, "waiting": 3},
    ]
    assert status["eta_seconds"] == 23 * 3600


def test_a_bad_local_time_is_422_with_the_reason_and_nothing_starts(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    issue_id = _issue(session)
    sent = client.post(f"/api/issues/{issue_id}/send", json={"local_time": "25:00"}, headers=auth)
    assert sent.status_code == 422
    assert "not a time of day like '08:00'" in sent.text
    issue = reloaded(session, Issue, issue_id)
    assert (issue.status, issue.local_time) == (IssueStatus.draft, None)


def test_the_api_schedules_at_a_local_time(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    issue_id = _issue(session)
    at = (utcnow() + timedelta(days=1)).isoformat()
    body = {"at": at, "local_time": "07:30"}
    scheduled = client.post(f"/api/issues/{issue_id}/schedule", json=body, headers=auth)
    assert scheduled.status_code == 200, scheduled.text
    issue = reloaded(session, Issue, issue_id)
    assert (issue.status, issue.local_time) == (IssueStatus.scheduled, "07:30")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def test_the_cli_sends_at_a_local_time_and_status_lists_the_waves(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks.dispatch, "delay", lambda _issue_id: None)
    issue_id = _issue(session)
    sent = run("issues", "send", str(issue_id), "--local-time", "08:00")
    assert sent.exit_code == 0, sent.output
    assert start.fill_prepared(session, issue_id=issue_id) is not None
    session.commit()
    shown = run("issues", "status", str(issue_id)).stdout
    assert "at 08:00 in each reader's time zone:" in shown
    assert "2026-11-30 13:00 UTC: 2 readers, 0 sent, 2 waiting" in shown
    assert "2026-12-01 05:00 UTC: 3 readers, 0 sent, 3 waiting" in shown


def test_a_bad_local_time_in_the_cli_is_one_line(session: Session) -> None:
    issue_id = _issue(session)
    result = run("issues", "send", str(issue_id), "--local-time", "8am")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, UserError)
    assert "\n" not in str(result.exception) and "not a time of day" in str(result.exception)
    assert reloaded(session, Issue, issue_id).status == IssueStatus.draft
