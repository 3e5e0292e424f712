"""The admin API for issue sends, through HTTP (TestClient), on SQLite and on PostgreSQL.

Most tests give the app a recording dispatcher, so they see what was queued without a broker;
``test_send_queues_dispatch_on_the_configured_broker`` uses the real Celery task on the
file-system broker the ``settings`` fixture points at. The CLI test creates a token through the
real ``newsletter`` entry point and uses it here.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter import db
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings, get_settings
from newsletter.content.qa import QAConfig
from newsletter.models import Delivery, DeliveryStatus, utcnow
from newsletter.sending import progress, start
from newsletter.sending.start import fill_ledger
from tests.conftest import make_issue, make_subscribers
from tests.support import cli_fork
from worker import celery_app
from worker.dispatch import celery_dispatch


class Recorder:
    """A dispatcher that remembers the ids and what the database said at that moment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls: list[int] = []
        self.seen_status: list[str] = []

    def __call__(self, issue_id: int) -> None:
        self.calls.append(issue_id)
        # a separate connection, like the worker's: it sees only what was committed
        with db.session_scope(self.settings.database_url) as s:
            self.seen_status.append(progress.progress(s, issue_id=issue_id).status)


@pytest.fixture
def dispatched(settings: Settings) -> Recorder:
    return Recorder(settings)


@pytest.fixture
def client(settings: Settings, dispatched: Recorder) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=dispatched)) as c:
        yield c


@pytest.fixture
def token(session: Session) -> str:
    value = api_tokens.create(session, "tests")
    session.commit()
    return value


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def draft_issue(session: Session, subscribers: int = 5) -> int:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, subscribers)
    assert fx.issue.id is not None
    return fx.issue.id


def sending_issue(session: Session, subscribers: int = 5) -> int:
    issue_id = draft_issue(session, subscribers)
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    return issue_id


def set_rows(session: Session, issue_id: int, count: int, **values: object) -> list[int]:
    """Give ``count`` pending rows of the issue these values (as a worker would have)."""
    rows = session.exec(
        select(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.pending)
        .order_by(col(Delivery.id))
        .limit(count)
    ).all()
    for row in rows:
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)
    session.commit()
    return [row.id for row in rows if row.id is not None]


# ---------------------------------------------------------------- authentication


def test_no_token_is_401_with_a_bearer_challenge(client: TestClient, session: Session) -> None:
    issue_id = draft_issue(session)
    for response in (
        client.get(f"/api/issues/{issue_id}/status"),
        client.post(f"/api/issues/{issue_id}/pause"),
        client.get(f"/api/issues/{issue_id}/status", headers={"Authorization": "Basic eDp5"}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "token is required" in response.json()["error"]


@pytest.mark.parametrize("presented", ["nl_" + "x" * 43, "garbage"])
def test_a_wrong_token_is_401(
    client: TestClient, session: Session, token: str, presented: str
) -> None:
    issue_id = draft_issue(session)
    response = client.get(
        f"/api/issues/{issue_id}/status", headers={"Authorization": f"Bearer {presented}"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "unknown API token"}


def test_a_revoked_token_is_403(client: TestClient, session: Session, auth: dict[str, str]) -> None:
    issue_id = sending_issue(session)
    assert client.get(f"/api/issues/{issue_id}/status", headers=auth).status_code == 200
    api_tokens.revoke(session, "tests")
    session.commit()

    response = client.post(f"/api/issues/{issue_id}/pause", headers=auth)

    assert response.status_code == 403
    assert response.json() == {"error": "API token 'tests' was revoked"}
    assert progress.progress(session, issue_id=issue_id).status == "sending"


def test_a_token_use_is_recorded_even_when_the_request_fails(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    assert client.post("/api/issues/999999/pause", headers=auth).status_code == 404
    session.expire_all()
    (stored,) = api_tokens.list_tokens(session)
    assert stored.last_used_at is not None


def test_the_openapi_docs_are_public_and_name_the_bearer_scheme(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"]
    assert "/api/issues/{issue_id}/send" in spec["paths"]
    (scheme,) = spec["components"]["securitySchemes"].values()
    assert scheme["scheme"].lower() == "bearer"


# ---------------------------------------------------------------- status


def test_status_has_counts_rate_eta_and_last_errors(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = sending_issue(session, subscribers=10)
    now = utcnow()
    set_rows(session, issue_id, 4, status=DeliveryStatus.sent, sent_at=now, attempts=1)
    set_rows(
        session,
        issue_id,
        1,
        status=DeliveryStatus.failed,
        attempts=1,
        smtp_response="550 5.1.1 no such user",
        updated_at=now,
    )

    response = client.get(f"/api/issues/{issue_id}/status", headers=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["issue_id"] == issue_id
    assert body["status"] == "sending"
    assert body["counts"] == {
        "pending": 5,
        "sending": 0,
        "sent": 4,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert (body["total"], body["done"]) == (10, 5)
    assert body["rate"] == 0.4  # 4 sent within the last 10 seconds
    assert body["eta_seconds"] == 12.5  # 5 remaining at 0.4/s
    assert body["scheduled_at"] is None
    (error,) = body["last_errors"]
    assert error["response"] == "550 5.1.1 no such user"
    assert error["status"] == "failed"
    assert error["email"].startswith("reader")
    assert datetime.fromisoformat(error["at"]).tzinfo is not None


def test_unknown_issue_is_404(client: TestClient, auth: dict[str, str]) -> None:
    for method, action in [
        ("GET", "status"),
        ("POST", "send"),
        ("POST", "pause"),
        ("POST", "resume"),
        ("POST", "cancel"),
        ("POST", "resend-failed"),
        ("POST", "unschedule"),
    ]:
        response = client.request(method, f"/api/issues/999999/{action}", headers=auth)
        assert response.status_code == 404, action
        assert response.json() == {"error": "no issue with id 999999"}


def test_unknown_paths_and_bad_ids_use_the_same_error_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.get("/api/nothing-here", headers=auth)
    assert response.status_code == 404
    assert "error" in response.json()
    response = client.get("/api/issues/abc/status", headers=auth)
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: path.issue_id")


# ---------------------------------------------------------------- send


def test_send_starts_commits_then_dispatches(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    issue_id = draft_issue(session, subscribers=3)

    response = client.post(f"/api/issues/{issue_id}/send", headers=auth)

    # answered before the ledger is filled: the worker's dispatch fills it
    assert response.status_code == 200
    body = response.json()
    assert (body["started"], body["recipients"], body["skipped"]) == (True, 3, 0)
    assert body["status"] == "preparing"
    assert body["total"] == 0
    assert dispatched.calls == [issue_id]
    assert dispatched.seen_status == ["preparing"]  # the worker finds the issue committed

    again = client.post(f"/api/issues/{issue_id}/send", headers=auth).json()
    assert again["started"] is False
    assert dispatched.calls == [issue_id, issue_id]  # a lost dispatch is queued again

    # the worker's part, twice (a duplicated dispatch): one ledger
    for _ in range(2):
        with db.session_scope(dispatched.settings.database_url) as s:
            start.fill_prepared(s, issue_id=issue_id)
    session.expire_all()
    state = progress.progress(session, issue_id=issue_id)
    assert (state.status, state.counts) == ("sending", {"pending": 3})
    third = client.post(f"/api/issues/{issue_id}/send", headers=auth).json()
    assert (third["started"], third["recipients"], third["total"]) == (False, 3, 3)


def test_send_blocked_by_qa_is_409_with_the_findings(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    fx = make_issue(session, layout=())
    make_subscribers(session, fx.newsletter, 2)

    response = client.post(f"/api/issues/{fx.issue.id}/send", headers=auth)

    assert response.status_code == 409
    body = response.json()
    assert body["error"].startswith("QA blocks sending")
    assert isinstance(body["findings"], list) and body["findings"]
    assert dispatched.calls == []
    assert client.get(f"/api/issues/{fx.issue.id}/status", headers=auth).json()["status"] == (
        "draft"
    )


@pytest.fixture
def broker(settings: Settings) -> Iterator[Path]:
    """Celery pointed at this test's file-system broker: a delay() is a message file there."""
    celery_app.configure(settings)
    yield settings.broker_folder / "queue"
    get_settings.cache_clear()
    celery_app.configure(get_settings())


def test_send_queues_dispatch_on_the_configured_broker(
    settings: Settings, session: Session, token: str, broker: Path
) -> None:
    issue_id = draft_issue(session, subscribers=2)
    with TestClient(create_app(settings, dispatch=celery_dispatch)) as client:  # Celery's port
        response = client.post(
            f"/api/issues/{issue_id}/send", headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 200
    (message_file,) = broker.glob("*.msg")
    headers = json.loads(message_file.read_text(encoding="utf-8"))["headers"]
    assert headers["task"] == "worker.tasks.dispatch"
    assert headers["argsrepr"] == f"({issue_id},)"


# ---------------------------------------------------------------- pause, resume, cancel


def test_pause_then_resume(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    issue_id = sending_issue(session)

    paused = client.post(
        f"/api/issues/{issue_id}/pause", headers=auth, json={"reason": "checking a typo"}
    )
    assert paused.status_code == 200
    assert (paused.json()["status"], paused.json()["reason"]) == ("paused", "checking a typo")

    resumed = client.post(f"/api/issues/{issue_id}/resume", headers=auth)
    assert resumed.status_code == 200
    assert (resumed.json()["status"], resumed.json()["reason"]) == ("sending", None)
    assert dispatched.calls == [issue_id]
    assert dispatched.seen_status == ["sending"]


def test_a_breaker_pause_shows_its_next_probe_and_an_operator_may_hold_or_resume_it(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    from newsletter.sending import controls

    held, resumed = sending_issue(session), sending_issue(session)
    probe_at = datetime(2026, 11, 28, 14, 2, 40, tzinfo=UTC)
    for issue_id in (held, resumed):
        reason = "circuit breaker: 20 of the last 20 sends failed (last: cannot connect)"
        assert controls.trip(session, issue_id=issue_id, reason=reason, probe_at=probe_at)
    session.commit()

    body = client.get(f"/api/issues/{held}/status", headers=auth).json()
    assert body["status"] == "paused"
    assert body["next_probe_at"] == probe_at.isoformat()
    assert body["reason"].startswith("paused by the circuit breaker at ")
    assert body["reason"].endswith(
        ": 20 of the last 20 sends failed (last: cannot connect); next probe of the relay at "
        "14:02:40 UTC"
    )

    # pausing it keeps it paused for good: no probe resumes it
    kept = client.post(f"/api/issues/{held}/pause", headers=auth, json={"reason": "relay work"})
    assert kept.status_code == 200
    assert (kept.json()["status"], kept.json()["reason"]) == ("paused", "relay work")
    assert kept.json()["next_probe_at"] is None
    again = client.post(f"/api/issues/{held}/pause", headers=auth)
    assert again.status_code == 409 and "it is paused" in again.json()["error"]

    # resuming by hand before the probe works as for any pause
    body = client.post(f"/api/issues/{resumed}/resume", headers=auth).json()
    assert (body["status"], body["reason"], body["next_probe_at"]) == ("sending", None, None)
    assert dispatched.calls == [resumed]


def test_pause_without_a_body_names_the_token(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = sending_issue(session)
    body = client.post(f"/api/issues/{issue_id}/pause", headers=auth).json()
    assert body["status"] == "paused"
    assert body["reason"] == "paused by an operator (API token 'tests')"


def test_an_empty_reason_is_422(client: TestClient, session: Session, auth: dict[str, str]) -> None:
    issue_id = sending_issue(session)
    response = client.post(f"/api/issues/{issue_id}/pause", headers=auth, json={"reason": ""})
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: reason")


def test_wrong_states_are_409(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    draft = draft_issue(session)
    for action, word in [
        ("resume", "resume"),
        ("pause", "pause"),
        ("unschedule", "unschedule"),
        ("resend-failed", "resend"),
    ]:
        response = client.post(f"/api/issues/{draft}/{action}", headers=auth)
        assert response.status_code == 409, action
        error = response.json()["error"]
        assert error.startswith(f"cannot {word} issue {draft}: it is draft"), error
    assert dispatched.calls == []


def test_cancel_a_sending_issue(client: TestClient, session: Session, auth: dict[str, str]) -> None:
    issue_id = sending_issue(session, subscribers=4)
    set_rows(session, issue_id, 1, status=DeliveryStatus.sent, sent_at=utcnow(), attempts=1)

    response = client.post(
        f"/api/issues/{issue_id}/cancel", headers=auth, json={"reason": "wrong list"}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reason"], body["cancelled"]) == ("cancelled", "wrong list", 3)
    assert (body["counts"]["sent"], body["counts"]["cancelled"]) == (1, 3)
    again = client.post(f"/api/issues/{issue_id}/cancel", headers=auth)
    assert again.status_code == 409
    assert "it is cancelled" in again.json()["error"]


# ---------------------------------------------------------------- resend failed


def test_resend_failed_requeues_and_dispatches(
    client: TestClient, session: Session, auth: dict[str, str], dispatched: Recorder
) -> None:
    issue_id = sending_issue(session, subscribers=5)
    set_rows(session, issue_id, 2, status=DeliveryStatus.failed, attempts=5, smtp_response="451")

    response = client.post(f"/api/issues/{issue_id}/resend-failed", headers=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["requeued"] == 2
    assert (body["counts"]["failed"], body["counts"]["pending"]) == (0, 5)
    assert dispatched.calls == [issue_id]

    nothing = client.post(f"/api/issues/{issue_id}/resend-failed", headers=auth).json()
    assert nothing["requeued"] == 0
    assert dispatched.calls == [issue_id]  # nothing re-queued, nothing dispatched


# ---------------------------------------------------------------- schedule


def test_schedule_and_unschedule(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = draft_issue(session)
    at = "2030-12-01T08:00:00+01:00"

    scheduled = client.post(f"/api/issues/{issue_id}/schedule", headers=auth, json={"at": at})

    assert scheduled.status_code == 200
    body = scheduled.json()
    assert body["status"] == "scheduled"
    assert datetime.fromisoformat(body["scheduled_at"]) == datetime(2030, 12, 1, 7, 0, tzinfo=UTC)

    moved = client.post(
        f"/api/issues/{issue_id}/schedule", headers=auth, json={"at": "2030-12-02T08:00:00Z"}
    )
    assert moved.json()["scheduled_at"].startswith("2030-12-02T08:00:00")

    unscheduled = client.post(f"/api/issues/{issue_id}/unschedule", headers=auth)
    assert unscheduled.status_code == 200
    assert (unscheduled.json()["status"], unscheduled.json()["scheduled_at"]) == ("draft", None)


@pytest.mark.parametrize(
    "body", [{"at": "2030-12-01T08:00:00"}, {"at": "tomorrow"}, {}, {"when": "2030-12-01"}]
)
def test_schedule_needs_an_aware_datetime(
    client: TestClient, session: Session, auth: dict[str, str], body: dict[str, str]
) -> None:
    issue_id = draft_issue(session)
    response = client.post(f"/api/issues/{issue_id}/schedule", headers=auth, json=body)
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: at")
    assert client.get(f"/api/issues/{issue_id}/status", headers=auth).json()["status"] == "draft"


def test_naive_datetime_error_says_time_zone(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = draft_issue(session)
    response = client.post(
        f"/api/issues/{issue_id}/schedule", headers=auth, json={"at": "2030-12-01T08:00:00"}
    )
    assert "timezone" in response.json()["error"]


def test_a_time_in_the_past_is_refused_with_422(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = draft_issue(session)
    at = (utcnow() - timedelta(hours=2)).isoformat()
    response = client.post(f"/api/issues/{issue_id}/schedule", headers=auth, json={"at": at})
    assert response.status_code == 422
    assert "is in the past" in response.json()["error"]
    assert client.get(f"/api/issues/{issue_id}/status", headers=auth).json()["status"] == "draft"


def test_schedule_blocked_by_qa_is_409(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    fx = make_issue(session, layout=())
    at = (utcnow() + timedelta(days=1)).isoformat()
    response = client.post(f"/api/issues/{fx.issue.id}/schedule", headers=auth, json={"at": at})
    assert response.status_code == 409
    assert response.json()["findings"]


def test_a_sending_issue_cannot_be_scheduled(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    issue_id = sending_issue(session)
    at = (utcnow() + timedelta(days=1)).isoformat()
    response = client.post(f"/api/issues/{issue_id}/schedule", headers=auth, json={"at": at})
    assert response.status_code == 409
    assert "it is sending" in response.json()["error"]


# ---------------------------------------------------------------- the CLI's tokens


def cli(folder: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env["NEWSLETTER_DATABASE_URL"] = database_url
    env["COLUMNS"] = "200"
    return cli_fork.run(list(args), cwd=folder, env=env)


def test_cli_token_works_against_the_api_until_revoked(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    url = settings.database_url
    issue_id = draft_issue(session)

    created = cli(tmp_path, url, "admin", "create-token", "deploy-bot")
    assert created.returncode == 0, created.stderr
    assert "shown only once" in created.stdout
    (token,) = [line for line in created.stdout.splitlines() if line.startswith("nl_")]
    auth = {"Authorization": f"Bearer {token}"}

    response = client.get(f"/api/issues/{issue_id}/status", headers=auth)
    assert response.status_code == 200
    assert response.json()["status"] == "draft"

    listed = cli(tmp_path, url, "admin", "list-tokens")
    assert listed.returncode == 0, listed.stderr
    assert "deploy-bot" in listed.stdout
    assert token not in listed.stdout

    duplicate = cli(tmp_path, url, "admin", "create-token", "deploy-bot")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr

    revoked = cli(tmp_path, url, "admin", "revoke-token", "deploy-bot")
    assert revoked.returncode == 0, revoked.stderr
    assert client.get(f"/api/issues/{issue_id}/status", headers=auth).status_code == 403

    unknown = cli(tmp_path, url, "admin", "revoke-token", "nobody")
    assert unknown.returncode == 1
    assert "no token named 'nobody'" in unknown.stderr
