"""Import jobs over the admin API, run by a real Celery worker on Redis; bad files refused."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.models import ImportJob, ImportUpload, Subscriber, Subscription
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_newsletter

REDIS_DB = 3  # this feature's own database on the shared server, flushed before each test


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def worker_client(
    settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    from worker.dispatch import celery_start_import

    with (
        SMTPSink() as sink,
        celery_worker(redis_url, REDIS_DB, sink, monkeypatch) as current,
        TestClient(create_app(current, start_import=celery_start_import)) as client,
    ):
        yield client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def wait_done(client: TestClient, auth: dict[str, str], job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(
            f"/api/subscribers/imports/{job_id}", headers=auth
        ).json()
        if state["finished"]:
            return state
        time.sleep(0.2)
    raise AssertionError(f"import {job_id} not done in 60 s: {state}")


def test_an_import_job_runs_on_a_real_worker_and_its_report_downloads(
    worker_client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    weekly = make_newsletter(session)
    rows = "".join(f"reader{i}@example.org,Reader {i},Minsk\n" for i in range(300))
    data = "email,name,town\n" + rows + "broken,Broken,\nreader1@example.org,Again,\n"

    uploaded = worker_client.post(
        f"/api/subscribers/imports?newsletter={weekly.slug}",
        headers=auth,
        files={"file": ("list.csv", data.encode(), "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    job_id = body["job"]["id"]
    assert body["job"]["status"] == "draft" and body["job"]["total_rows"] == 302
    preview = body["preview"]
    assert preview["columns"] == ["email", "name", "ignore"]
    assert preview["newsletters"] == [weekly.slug]
    assert [r["verdict"] for r in preview["rows"]] == ["new"] * 20
    assert session.exec(select(Subscriber)).all() == []  # the preview imported nothing

    again = worker_client.post(
        f"/api/subscribers/imports/{job_id}/preview",
        headers=auth,
        json={"columns": ["email", "name", "attribute:town"]},
    )
    assert again.status_code == 200 and again.json()["preview"]["columns"][2] == "attribute:town"
    started = worker_client.post(f"/api/subscribers/imports/{job_id}/start", headers=auth)
    assert started.status_code == 202, started.text
    state = wait_done(worker_client, auth, job_id)

    assert state["status"] == "done", state
    assert state["counts"] == {
        "rows": 302,
        "imported": 300,
        "updated": 0,
        "unchanged": 0,
        "suppressed": 0,
        "errors_total": 2,
        "duplicates": 1,
    }
    assert state["processed_rows"] == 302 and state["percent"] == 100
    report = worker_client.get(f"/api/subscribers/imports/{job_id}/report.csv", headers=auth)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(report.text)))
    assert lines[0] == ["line", "kind", "reason"]
    assert [(r[0], r[1]) for r in lines[1:]] == [("302", "error"), ("303", "error")]
    assert lines[2][2] == "duplicate of line 3"
    session.expire_all()
    assert len(session.exec(select(Subscription)).all()) == 300
    reader = session.exec(select(Subscriber).where(Subscriber.email == "reader7@example.org")).one()
    assert reader.attributes == {"town": "Minsk"}
    assert session.get(ImportUpload, job_id) is None  # the file is dropped once imported
    # a second start is no second run
    assert (
        worker_client.post(f"/api/subscribers/imports/{job_id}/start", headers=auth).json()[
            "status"
        ]
        == "done"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
        (b"email,name\nr@example.org,Ren\xe9e M\xfcller\n", "not UTF-8"),
        (b"name,city\nNobody,Minsk\n", "no 'email' column"),
        (b"", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "not a CSV file"),
    ],
)
def test_a_file_that_is_no_usable_csv_is_refused_with_the_reason(
    client: TestClient, session: Session, auth: dict[str, str], data: bytes, reason: str
) -> None:
    make_newsletter(session)
    response = client.post(
        "/api/subscribers/imports", headers=auth, files={"file": ("x.csv", data, "text/csv")}
    )
    assert response.status_code == 422, response.text
    assert reason in response.json()["error"]
    assert session.exec(select(ImportJob)).all() == []


def test_choices_that_cannot_import_are_refused_and_an_unknown_job_is_404(
    client: TestClient, session: Session, auth: dict[str, str]
) -> None:
    make_newsletter(session)
    job_id = client.post(
        "/api/subscribers/imports",
        headers=auth,
        files={"file": ("x.csv", b"email\na@example.org\n", "text/csv")},
    ).json()["job"]["id"]
    for choices, reason in (
        ({"columns": ["name"]}, "no 'email' column"),
        ({"columns": ["email", "name"]}, "the mapping names 2 columns"),
        ({"existing": "sometimes"}, "keep or overwrite"),
        ({"newsletters": ["no-such"]}, "no-such"),
    ):
        refused = client.post(
            f"/api/subscribers/imports/{job_id}/start", headers=auth, json=choices
        )
        assert refused.status_code in (404, 422), refused.text
        assert reason in refused.json()["error"]
    assert client.get(f"/api/subscribers/imports/{job_id}", headers=auth).json()["status"] == (
        "draft"
    )
    report = client.get(f"/api/subscribers/imports/{job_id}/report.csv", headers=auth)
    assert report.status_code == 422 and "draft" in report.json()["error"]
    assert client.get("/api/subscribers/imports/999999", headers=auth).status_code == 404
