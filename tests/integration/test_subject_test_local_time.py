"""A subject test and a local-time delivery are refused together, up front, with the reason:
a 422 over the API, one red line in the CLI, the reason on the composer (both databases).

Why refused: the samples would leave wave by wave across the day, so the wait would end before
most of them reached their readers and the winner would be picked by the earliest zones alone.
"""

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
from newsletter.exceptions import InvalidInput, UserError
from newsletter.models import Issue, IssueStatus, SubjectTest
from newsletter.sending import local_time, subject_tests
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration.admin_support import Editor

A, B = "Minsk talks: what the KGB chief said", "Belarus Weekly: 52 prisoners freed"
TEST = {"subjects": [A, B], "sample": 10, "wait": "4h"}
REASON = "a subject test cannot be combined with a local-time delivery"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def draft(session: Session) -> int:
    newsletter = make_newsletter(session, track_clicks=True, track_opens=True)
    fx = make_issue(session, newsletter=newsletter)
    make_subscribers(session, fx.newsletter, 4)
    session.commit()
    assert fx.issue.id is not None
    return fx.issue.id


def stored(session: Session, issue_id: int) -> tuple[str, str | None, bool]:
    """(status, local time, has a subject test) as the database has them."""
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue.status, issue.local_time, session.get(SubjectTest, issue_id) is not None


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def test_the_domain_refuses_either_order(session: Session) -> None:
    first_test, first_time = draft(session), draft(session)
    test = subject_tests.spec([A, B], sample=10, wait="4h", metric="clicks")
    subject_tests.configure(session, session.get(Issue, first_test), test)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=REASON):
        local_time.set_local_time(session, session.get(Issue, first_test), "08:00")  # type: ignore[arg-type]
    local_time.set_local_time(session, session.get(Issue, first_time), "08:00")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=REASON):
        subject_tests.configure(session, session.get(Issue, first_time), test)  # type: ignore[arg-type]
    # dropping one side makes room for the other; "at once" never conflicts
    local_time.set_local_time(session, session.get(Issue, first_test), None)  # type: ignore[arg-type]
    subject_tests.configure(session, session.get(Issue, first_test), None)  # type: ignore[arg-type]
    local_time.set_local_time(session, session.get(Issue, first_test), "08:00")  # type: ignore[arg-type]


def test_the_api_refuses_both_in_one_send_with_a_422_and_nothing_starts(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    issue_id = draft(session)
    body = {"subject_test": TEST, "local_time": "08:00"}
    sent = client.post(f"/api/issues/{issue_id}/send", json=body, headers=auth)
    assert sent.status_code == 422, sent.text
    assert REASON in sent.text
    assert stored(session, issue_id) == (IssueStatus.draft, None, False)


def test_the_api_refuses_a_test_on_a_local_time_schedule(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    issue_id = draft(session)
    local_time.set_local_time(session, session.get(Issue, issue_id), "07:30")  # type: ignore[arg-type]
    session.commit()
    sent = client.post(f"/api/issues/{issue_id}/send", json={"subject_test": TEST}, headers=auth)
    assert sent.status_code == 422 and REASON in sent.text
    assert stored(session, issue_id) == (IssueStatus.draft, "07:30", False)


def test_the_cli_refuses_both_in_one_red_line(session: Session) -> None:
    issue_id = str(draft(session))
    args = ["--subject-test", A, "--subject-test", B, "--local-time", "08:00"]
    result = run("issues", "send", issue_id, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, UserError)
    assert "\n" not in str(result.exception) and REASON in str(result.exception)
    assert stored(session, int(issue_id)) == (IssueStatus.draft, None, False)


def test_the_composer_shows_the_reason(session: Session, editor: Editor) -> None:
    issue_id = draft(session)
    saved = editor.post(
        f"/admin/issues/{issue_id}/subject-test",
        {"subject_1": A, "subject_2": B, "sample": "10", "wait": "4h", "by": "clicks"},
    )
    assert saved.status_code == 303, saved.text
    composer = f"https://testserver/admin/issues/{issue_id}"
    form = {"when": "local", "at": "08:00"}
    refused = editor.post(
        f"/admin/issues/{issue_id}/local-time", form, headers={"referer": composer}
    )
    assert refused.status_code == 303, refused.text
    assert refused.headers["location"] == f"/admin/issues/{issue_id}"  # back to the composer
    page = editor.client.get(refused.headers["location"]).text
    assert REASON in page  # the flash: what was refused and why
    assert 'id="local-time-refused"' in page  # and the card says it before anyone tries
    assert stored(session, issue_id) == (IssueStatus.draft, None, True)


def test_an_issue_stored_with_both_before_they_were_refused_together_does_not_start(
    session: Session, client: TestClient, auth: dict[str, str]
) -> None:
    issue_id = draft(session)
    issue = session.get(Issue, issue_id)
    assert issue is not None
    test = subject_tests.spec([A, B], sample=10, wait="4h", metric="clicks")
    subject_tests.configure(session, issue, test)
    issue.local_time = "08:00"  # as an older version let it be stored
    session.add(issue)
    session.commit()

    sent = client.post(f"/api/issues/{issue_id}/send", json={}, headers=auth)

    assert sent.status_code == 422, sent.text
    assert REASON in sent.text
    assert stored(session, issue_id) == (IssueStatus.draft, "08:00", True)
