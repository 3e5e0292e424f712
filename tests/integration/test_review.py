"""Review before send: draft -> in review -> approved -> sent, edits after approval, the
four-eyes rule where a newsletter requires review, comments, the dashboard's waiting list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter import cli
from newsletter.access.roles import Role
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.content import review
from newsletter.exceptions import Forbidden, InvalidState
from newsletter.models import AuditEntry, Issue, IssueComment, IssueStatus, Newsletter
from tests.conftest import IssueFixture, make_issue, make_subscribers
from tests.integration.admin_support import Dispatched, Editor, make_editor, sign_in


@pytest.fixture
def fx(session: Session) -> IssueFixture:
    fixture = make_issue(session, layout=(2, 1))
    make_subscribers(session, fixture.newsletter, 3)
    return fixture


def require_review(session: Session, newsletter: Newsletter) -> None:
    session.execute(
        update(Newsletter).where(Newsletter.id == newsletter.id).values(requires_review=True)  # type: ignore[arg-type]
    )
    session.commit()


def as_editor(
    settings: Settings, email: str, dispatched: Dispatched, role: Role = Role.editor
) -> Iterator[Editor]:
    make_editor(settings, email=email, role=role.value)
    with TestClient(create_app(settings, dispatch=dispatched), base_url="https://testserver") as c:
        yield Editor(c, sign_in(c, email=email))


def status(session: Session, issue_id: int) -> str:
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue.status


def test_the_whole_flow_with_two_editors(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    require_review(session, fx.newsletter)
    issue_id = fx.issue.id
    assert issue_id is not None
    for ada in as_editor(settings, "ada@news.example.org", dispatched):
        assert (
            ada.post(f"/admin/issues/{issue_id}/details", {"title": "Week 48"}).status_code == 303
        )
        refused = ada.post(f"/admin/issues/{issue_id}/send", {"recipients": 3})
        assert refused.status_code == 303 and dispatched.ids == []
        assert "requires review" in ada.client.get(refused.headers["location"]).text
        assert ada.post(f"/admin/issues/{issue_id}/review").status_code == 303
        assert status(session, issue_id) == IssueStatus.in_review
        page = ada.client.get(f"/admin/issues/{issue_id}").text
        assert "You edited it last" in page and "/approve" not in page
        ada.post(f"/admin/issues/{issue_id}/approve")  # the author approving their own edit
        assert status(session, issue_id) == IssueStatus.in_review
    for bea in as_editor(settings, "bea@news.example.org", dispatched):
        assert "Waiting for review" in bea.client.get("/admin/").text
        comment = {"body": "Lead is strong; fix the second headline.", "item_id": fx.items[1].id}
        assert bea.post(f"/admin/issues/{issue_id}/comments", comment).status_code == 303
        assert bea.post(f"/admin/issues/{issue_id}/approve").status_code == 303
        assert status(session, issue_id) == IssueStatus.approved
        page = bea.client.get(f"/admin/issues/{issue_id}").text
        assert "Approved by bea@news.example.org" in page and "fix the second headline" in page
        assert bea.post(f"/admin/issues/{issue_id}/send", {"recipients": 3}).status_code == 303
    assert dispatched.ids == [issue_id] and status(session, issue_id) == IssueStatus.sending
    trail = [
        (e.action, e.actor_label)
        for e in session.exec(
            select(AuditEntry).where(AuditEntry.target_id == issue_id).order_by(AuditEntry.id)
        ).all()
        if e.target_type == "issue"
    ]
    assert trail == [
        ("issue.edit", "ada@news.example.org"),
        ("issue.review-request", "ada@news.example.org"),
        ("issue.comment", "bea@news.example.org"),
        ("issue.approve", "bea@news.example.org"),
        ("issue.send", "bea@news.example.org"),
    ]


def test_an_edit_after_approval_sends_it_back_to_review(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    issue_id = fx.issue.id
    assert issue_id is not None
    review.request(session, issue_id)
    review.approve(session, issue_id, reviewer="bea@news.example.org")
    session.commit()
    for ada in as_editor(settings, "ada@news.example.org", dispatched):
        ada.post(f"/items/{fx.items[0].id}/blurb", {"blurb": "x"})  # not a route: nothing
        assert status(session, issue_id) == IssueStatus.approved
        assert (
            ada.post(f"/admin/items/{fx.items[0].id}/blurb", {"blurb": "Shorter."}).status_code
            == 303
        )
    assert status(session, issue_id) == IssueStatus.in_review
    issue = session.get(Issue, issue_id)
    assert issue is not None and issue.approved_by is None
    assert "edited after approval" in (issue.status_reason or "")


def test_without_required_review_a_draft_still_sends(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    for ada in as_editor(settings, "ada@news.example.org", dispatched):
        assert ada.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3}).status_code == 303
    assert dispatched.ids == [fx.issue.id]


def test_schedule_and_the_api_refuse_an_unapproved_issue(
    settings: Settings, session: Session, fx: IssueFixture
) -> None:
    require_review(session, fx.newsletter)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["issues", "schedule", str(fx.issue.id), "2099-01-01T08:00Z"])
    assert result.exit_code == 1 and "requires review" in str(result.exception)
    result = runner.invoke(cli.app, ["issues", "send", str(fx.issue.id)])
    assert result.exit_code == 1 and "requires review" in str(result.exception)
    assert status(session, fx.issue.id or 0) == IssueStatus.draft


def test_a_writer_comments_and_asks_for_review_but_cannot_approve(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    issue_id = fx.issue.id
    for writer in as_editor(settings, "wil@news.example.org", dispatched, Role.writer):
        assert (
            writer.post(f"/admin/issues/{issue_id}/comments", {"body": "Draft ready"}).status_code
            == 303
        )
        assert writer.post(f"/admin/issues/{issue_id}/review").status_code == 303
        page = writer.client.get(f"/admin/issues/{issue_id}").text
        assert "Ask for review" not in page and "/approve" not in page
        assert writer.post(f"/admin/issues/{issue_id}/approve").status_code == 303  # refused
    assert status(session, issue_id or 0) == IssueStatus.in_review
    assert [c.body for c in session.exec(select(IssueComment)).all()] == ["Draft ready"]


def test_the_domain_rules(session: Session, fx: IssueFixture) -> None:
    issue_id = fx.issue.id
    assert issue_id is not None
    with pytest.raises(InvalidState):
        review.approve(session, issue_id, reviewer="x@example.org")  # not in review yet
    review.request(session, issue_id)
    with pytest.raises(InvalidState):
        review.request(session, issue_id)
    back = review.send_back(session, issue_id, reason="needs a lead photo")
    assert back.status == IssueStatus.draft and "lead photo" in (back.status_reason or "")
    with pytest.raises(Exception, match="comment"):
        review.comment(session, issue_id, author="x@example.org", body="   ")
    other = make_issue(session, layout=(1,))
    with pytest.raises(Exception, match="no item"):
        review.comment(
            session, issue_id, author="x@example.org", body="hi", item_id=other.items[0].id
        )


def test_the_four_eyes_rule_reads_the_last_author(session: Session, fx: IssueFixture) -> None:
    from newsletter.access import audit
    from newsletter.access.permissions import Actor

    issue_id = fx.issue.id
    assert issue_id is not None
    require_review(session, fx.newsletter)
    ada = Actor("editor", 1, "ada@news.example.org", Role.editor)
    audit.record(session, ada, "issue.edit", target_type="issue", target_id=issue_id)
    review.request(session, issue_id)
    with pytest.raises(Forbidden, match="another editor"):
        review.approve(session, issue_id, reviewer="ada@news.example.org")
    assert review.approve(session, issue_id, reviewer="bea@news.example.org").status == "approved"


def test_review_over_the_api_and_the_cli(
    settings: Settings, session: Session, fx: IssueFixture
) -> None:
    from newsletter.access import api_tokens

    require_review(session, fx.newsletter)
    issue_id = fx.issue.id
    writer = {"Authorization": f"Bearer {api_tokens.create(session, 'desk', role='writer')}"}
    chief = {"Authorization": f"Bearer {api_tokens.create(session, 'chief', role='editor')}"}
    session.commit()
    with TestClient(create_app(settings, dispatch=Dispatched())) as client:
        asked = client.post(f"/api/issues/{issue_id}/review", headers=writer)
        assert asked.status_code == 200 and asked.json()["status"] == "in_review"
        assert client.post(f"/api/issues/{issue_id}/approve", headers=writer).status_code == 403
        said = client.post(
            f"/api/issues/{issue_id}/comments",
            headers=writer,
            json={"body": "Over to you", "item_id": fx.items[0].id},
        )
        assert said.status_code == 201 and said.json()["author"] == "token desk"
        approved = client.post(f"/api/issues/{issue_id}/approve", headers=chief)
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        notes = client.get(f"/api/issues/{issue_id}/comments", headers=chief).json()
        assert [(n["author"], n["item_id"]) for n in notes] == [("token desk", fx.items[0].id)]
        assert client.get("/api/issues/999999/comments", headers=chief).status_code == 404
    runner = CliRunner()
    back = runner.invoke(cli.app, ["issues", "send-back", str(issue_id), "--reason", "typo"])
    assert back.exit_code == 0, back.output
    assert status(session, issue_id or 0) == IssueStatus.draft
    assert runner.invoke(cli.app, ["issues", "review", str(issue_id)]).exit_code == 0
    noted = runner.invoke(cli.app, ["issues", "comment", str(issue_id), "Fixed the typo"])
    assert noted.exit_code == 0, noted.output
    approved_cli = runner.invoke(cli.app, ["issues", "approve", str(issue_id)])
    assert approved_cli.exit_code == 0, approved_cli.output
    listed = runner.invoke(cli.app, ["issues", "comments", str(issue_id)])
    assert "Over to you" in listed.output and "Fixed the typo" in listed.output
    assert status(session, issue_id or 0) == IssueStatus.approved
