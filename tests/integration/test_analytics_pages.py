"""The analytics API (JSON and CSV) and pages: shapes, the CSV's content, and who may see them
(editors, the audience desk and admins; not writers)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.access import api_tokens, permissions
from newsletter.access.roles import Role
from newsletter.api import create_app
from newsletter.config import Settings
from tests.integration.admin_support import Dispatched, Editor, make_editor, sign_in
from tests.integration.analytics_support import SentIssue, sent_issue

# pages, API shapes, CSV and permissions: the figures' SQL is tested on both databases in
# test_analytics_report.py, so these run on SQLite only (CI time)
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def sent(session: Session) -> SentIssue:
    issue = sent_issue(session, readers=4)
    issue.open(session, 0)
    issue.open(session, 1, verdict="machine", rule="apple_mpp")
    issue.click(session, 0, issue.link(1), times=2)
    issue.click(session, 1, issue.link(2, "read_more"))
    issue.click(session, 2, issue.link(1), verdict="machine", rule="too_soon")
    return issue


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def bearer(session: Session, role: str) -> dict[str, str]:
    value = api_tokens.create(session, f"{role}-analytics", role=role)
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def test_the_api_reports_an_issue_people_and_machines_apart(
    api: TestClient, session: Session, sent: SentIssue
) -> None:
    answer = api.get(f"/api/issues/{sent.id}/report", headers=bearer(session, "editor"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body[k] for k in ("delivered", "human_openers", "machine_openers")} == {
        "delivered": 4,
        "human_openers": 1,
        "machine_openers": 1,
    }
    assert (body["human_clickers"], body["human_clicks"], body["machine_clicks"]) == (2, 3, 1)
    assert body["click_rate"] == 0.5 and body["machine_open_share"] == 0.5
    assert [(a["position"], a["clickers"], a["ctr"]) for a in body["articles"]] == [
        (1, 1, 0.25),
        (2, 1, 0.25),
        (3, 0, 0.0),
    ]
    assert [link["n"] for link in body["links"]] == list(range(1, 8))
    assert {"kind": "click", "rule": "too_soon", "events": 1, "readers": 1} in body["machines"]


def test_each_table_downloads_as_csv(api: TestClient, session: Session, sent: SentIssue) -> None:
    headers = bearer(session, "audience")
    answer = api.get(f"/api/issues/{sent.id}/report/articles.csv", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["position"], r["section"], r["clicks"], r["ctr"]) for r in rows] == [
        ("1", "Section 1", "2", "0.25"),
        ("2", "Section 1", "1", "0.25"),
        ("3", "Section 2", "0", "0.0"),
    ]
    assert rows[0]["title"] == sent.fx.articles[0].title
    nl = sent.fx.newsletter.id
    issues = api.get(f"/api/newsletters/{nl}/analytics/issues.csv", headers=headers).text
    assert issues.splitlines()[0].startswith("issue_id,number,title,send_started_at,hour")
    assert issues.splitlines()[1].startswith(f"{sent.id},1,")
    empty = api.get(f"/api/newsletters/{nl}/analytics/segments.csv?issues=1", headers=headers)
    assert empty.text.splitlines()[1].startswith("0,Everyone,1,4,1,2,")
    assert api.get(f"/api/issues/{sent.id}/report/people.csv", headers=headers).status_code == 422


def test_the_trends_api_answers_per_newsletter(
    api: TestClient, session: Session, sent: SentIssue
) -> None:
    nl, headers = sent.fx.newsletter.id, bearer(session, "admin")
    body = api.get(f"/api/newsletters/{nl}/analytics", headers=headers).json()
    assert [i["issue_id"] for i in body["issues"]] == [sent.id]
    assert body["issues"][0]["hour"] == 7 and body["time_zone"] == "UTC"
    assert [(p["key"], p["human_clickers"]) for p in body["positions"]] == [(1, 1), (2, 1)]
    assert api.get("/api/newsletters/999999/analytics", headers=headers).status_code == 404


def test_a_writer_sees_no_analytics(api: TestClient, session: Session, sent: SentIssue) -> None:
    headers = bearer(session, "writer")
    for path in (
        f"/api/issues/{sent.id}/report",
        f"/api/issues/{sent.id}/report/summary.csv",
        f"/api/newsletters/{sent.fx.newsletter.id}/analytics",
    ):
        answer = api.get(path, headers=headers)
        assert answer.status_code == 403 and "ask an admin" in answer.json()["error"]


def signed_in(settings: Settings, role: Role) -> Iterator[Editor]:
    email = f"{role.value}@news.example.org"
    make_editor(settings, email=email, role=role.value)
    app = create_app(settings, dispatch=Dispatched())
    with TestClient(app, base_url="https://testserver") as client:
        yield Editor(client, sign_in(client, email=email))


def test_the_report_page_shows_figures_articles_and_the_heat_view(
    settings: Settings, sent: SentIssue
) -> None:
    for editor in signed_in(settings, Role.editor):
        sending = editor.client.get(f"/admin/issues/{sent.id}/sending").text
        assert f'href="/admin/issues/{sent.id}/report"' in sending
        page = editor.client.get(f"/admin/issues/{sent.id}/report")
        assert page.status_code == 200
        assert '<dd id="fig-clickers">2</dd>' in page.text
        assert '<strong id="fig-machine-clicks">1</strong>' in page.text
        assert f'src="/admin/issues/{sent.id}/report/heat.html"' in page.text
        assert sent.fx.articles[0].title in page.text and "<svg" in page.text
        frame = editor.client.get(f"/admin/issues/{sent.id}/report/heat.html")
        assert frame.headers["content-security-policy"].startswith("sandbox")
        assert frame.text.count("<span data-link=") == 7
        csv_page = editor.client.get(f"/admin/issues/{sent.id}/report/links.csv")
        assert csv_page.text.startswith("n,url,kind,article_id,section,position,clicks")
        trends = editor.client.get(f"/admin/newsletters/{sent.fx.newsletter.id}/analytics")
        assert trends.status_code == 200 and f'data-issue="{sent.id}"' in trends.text
        dashboard = editor.client.get("/admin/").text
        assert f'href="/admin/newsletters/{sent.fx.newsletter.id}/analytics"' in dashboard


def test_a_writer_is_not_offered_the_report_and_is_refused_it(
    settings: Settings, sent: SentIssue
) -> None:
    for writer in signed_in(settings, Role.writer):
        assert "/report" not in writer.client.get(f"/admin/issues/{sent.id}/sending").text
        assert "/analytics" not in writer.client.get("/admin/").text
        assert writer.client.get(f"/admin/issues/{sent.id}/report").status_code == 403
        nl = sent.fx.newsletter.id
        assert writer.client.get(f"/admin/newsletters/{nl}/analytics").status_code == 403


def test_a_writer_who_edits_one_newsletter_sees_its_analytics_only(
    settings: Settings, session: Session, sent: SentIssue
) -> None:
    other = sent_issue(session, readers=1)
    for writer in signed_in(settings, Role.writer):
        permissions.set_role(
            session,
            email="writer@news.example.org",
            role="editor",
            newsletter=sent.fx.newsletter.slug,
        )
        session.commit()
        assert (
            writer.client.get(f"/admin/newsletters/{sent.fx.newsletter.id}/analytics").status_code
            == 200
        )
        assert writer.client.get(f"/admin/issues/{sent.id}/report").status_code == 200
        assert (
            writer.client.get(f"/admin/newsletters/{other.fx.newsletter.id}/analytics").status_code
            == 403
        )
        assert writer.client.get(f"/admin/issues/{other.id}/report").status_code == 403
