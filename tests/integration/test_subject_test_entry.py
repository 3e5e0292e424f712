"""Subject tests set up over the admin API and the CLI (both databases): a bad test refused with
a reason (4xx, one red line), a good one in the status, the early pick by the operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner, Result

from newsletter import cli
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.exceptions import UserError
from newsletter.sending import start, subject_tests
from tests.conftest import make_issue, make_newsletter, make_subscribers
from worker import tasks

A, B = "Minsk talks: what the KGB chief said", "Belarus Weekly: 52 prisoners freed"


@pytest.fixture
def dispatched() -> list[int]:
    return []


@pytest.fixture
def client(settings: Settings, dispatched: list[int]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=dispatched.append)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def draft(session: Session, *, tracking: bool = True) -> int:
    newsletter = make_newsletter(session, track_clicks=tracking, track_opens=tracking)
    fx = make_issue(session, newsletter=newsletter)
    make_subscribers(session, fx.newsletter, 10)
    assert fx.issue.id is not None
    return fx.issue.id


def test_the_api_refuses_a_bad_test_with_a_reason(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    untracked, tracked = draft(session, tracking=False), draft(session)
    cases = [
        (untracked, {"subjects": [A, B], "sample": 10, "wait": "4h"}, "does not track clicks"),
        (tracked, {"subjects": [A, A.upper()], "sample": 10, "wait": "4h"}, "must differ"),
        (tracked, {"subjects": [A, B, "C"], "sample": 40, "wait": "4h"}, "cannot sum over 100"),
        (tracked, {"subjects": [A, " "], "sample": 10, "wait": "4h"}, "must not be empty"),
        (tracked, {"subjects": [A, B], "sample": 10, "wait": "soon"}, "write it as 4h"),
    ]
    for issue_id, test, reason in cases:
        answer = client.post(
            f"/api/issues/{issue_id}/send", json={"subject_test": test}, headers=auth
        )
        assert answer.status_code == 422, answer.text
        assert reason in answer.json()["error"]
    assert subject_tests.get(session, tracked) is None  # nothing kept from a refused send
    five = {"subjects": [A, B, "C", "D", "E"], "sample": 10, "wait": "4h"}
    answer = client.post(f"/api/issues/{tracked}/send", json={"subject_test": five}, headers=auth)
    assert answer.status_code == 422


def test_the_api_sends_with_a_test_and_the_operator_picks_early(
    session: Session, client: TestClient, auth: dict[str, str], dispatched: list[int]
) -> None:
    issue_id = draft(session)
    test = {"subjects": [A, B], "sample": 20, "wait": "2h", "by": "opens"}
    answer = client.post(f"/api/issues/{issue_id}/send", json={"subject_test": test}, headers=auth)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["subject_test"]
    assert [v["subject"] for v in shown["variants"]] == [A, B] and shown["metric"] == "opens"
    assert start.fill_prepared(session, issue_id=issue_id) is not None  # the worker's fill
    session.commit()
    status = client.get(f"/api/issues/{issue_id}/status", headers=auth).json()["subject_test"]
    assert status["headline"].startswith("testing subjects, winner at")
    assert [v["recipients"] for v in status["variants"]] == [2, 2]

    pick = f"/api/issues/{issue_id}/subject-test/pick"
    picked = client.post(pick, json={"variant": 2}, headers=auth)
    assert picked.status_code == 200, picked.text
    assert picked.json()["subject_test"]["winner"] == 2
    assert "picked by API token 'tests'" in picked.json()["subject_test"]["headline"]
    assert dispatched[-1] == issue_id
    again = client.post(pick, json={"variant": 1}, headers=auth)
    assert again.status_code == 409 and "decided already" in again.json()["error"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def test_the_cli_sends_with_a_test_refuses_a_bad_one_and_picks(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(tasks.dispatch, "delay", queued.append)
    untracked, issue_id = str(draft(session, tracking=False)), draft(session)
    refused = run("issues", "send", untracked, "--subject-test", A, "--subject-test", B)
    assert refused.exit_code == 1 and isinstance(refused.exception, UserError)
    assert "does not track clicks" in str(refused.exception)
    one = run("issues", "send", str(issue_id), "--subject-test", A)
    assert one.exit_code == 1 and "2 to 4 subjects" in str(one.exception)

    args = ["--subject-test", A, "--subject-test", B, "--sample", "30", "--wait", "90m"]
    sent = run("issues", "send", str(issue_id), *args)
    assert sent.exit_code == 0, sent.output
    assert start.fill_prepared(session, issue_id=issue_id) is not None
    session.commit()
    status = run("issues", "status", str(issue_id))
    assert "testing subjects, winner at" in status.stdout
    assert f"A: {A}  [recipients 3]" in status.stdout
    picked = run("issues", "pick-subject", str(issue_id), "1")
    assert picked.exit_code == 0, picked.output
    assert "A picked by cli" in picked.stdout
    assert queued == [issue_id, issue_id]
