"""The welcome email from the desk: the newsletter settings card and the composer (editor UI),
the admin API and the CLI, each through the permission table and the audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from newsletter.access import api_tokens
from newsletter.cli import app as cli
from newsletter.exceptions import UserError
from newsletter.models import AuditEntry, Delivery, Issue, NewsletterWelcome
from newsletter.sending import welcome
from tests.conftest import make_issue, make_newsletter
from tests.integration.admin_support import Editor


def test_compose_publish_and_turn_on_the_welcome_in_the_editor_ui(
    editor: Editor, session: Session
) -> None:
    nl = make_newsletter(session)
    page = editor.client.get(f"/admin/newsletters/{nl.id}")
    assert "Compose welcome email" in page.text
    refused = editor.post(f"/admin/newsletters/{nl.id}/welcome", {"enabled": "on"})
    assert refused.status_code == 303  # back to the card, saying why; nothing stored
    assert (
        "choose or create the welcome email" in editor.client.get(refused.headers["location"]).text
    )
    assert session.get(NewsletterWelcome, nl.id) is None

    made = editor.post(f"/admin/newsletters/{nl.id}/welcome/new")
    assert made.status_code == 303
    issue = session.exec(
        select(Issue).where(Issue.newsletter_id == nl.id, Issue.kind == "welcome")
    ).one()
    assert made.headers["location"] == f"/admin/issues/{issue.id}"
    composer = editor.client.get(made.headers["location"]).text
    assert "standing welcome email" in composer
    assert "0 welcomes sent" in composer
    assert 'id="send-now"' not in composer and "/schedule" not in composer  # no send to list
    assert "Publish for new subscribers" in composer

    # the list send is refused even when asked for by hand
    refused = editor.post(f"/admin/issues/{issue.id}/send", {"recipients": "0"})
    assert refused.status_code == 303  # back, with the reason
    assert "never to the whole list" in editor.client.get(refused.headers["location"]).text
    assert session.exec(select(Delivery).where(Delivery.issue_id == issue.id)).all() == []

    saved = editor.post(
        f"/admin/newsletters/{nl.id}/welcome",
        {"issue_id": str(issue.id), "enabled": "on", "with_latest": "on"},
    )
    assert saved.status_code == 303
    session.expire_all()
    row = session.get(NewsletterWelcome, nl.id)
    assert row is not None and (row.issue_id, row.enabled, row.with_latest) == (
        issue.id,
        True,
        True,
    )
    state = welcome.welcome_of(session, nl.id)  # type: ignore[arg-type]
    assert state.published_at is not None  # turning it on published it
    settings_page = editor.client.get(f"/admin/newsletters/{nl.id}").text
    assert 'id="w-on" name="enabled" type="checkbox" value="on" checked' in settings_page
    assert "0 sent" in settings_page

    assert editor.post(f"/admin/issues/{issue.id}/publish-welcome").status_code == 303
    actions = session.exec(
        select(AuditEntry.action).where(
            col(AuditEntry.action).in_(["newsletter.welcome", "welcome.publish"])
        )
    ).all()
    assert sorted(actions) == ["newsletter.welcome", "welcome.publish"]

    # off again: the box unticked is "off"
    editor.post(f"/admin/newsletters/{nl.id}/welcome", {"issue_id": str(issue.id)})
    session.expire_all()
    assert session.get(NewsletterWelcome, nl.id).enabled is False  # type: ignore[union-attr]


def test_the_admin_api_sets_the_welcome(anonymous: TestClient, session: Session) -> None:
    nl = make_newsletter(session)
    token = api_tokens.create(session, "welcome-test")
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/newsletters/{nl.slug}/welcome"
    assert anonymous.get(base, headers=auth).json()["enabled"] is False
    created = anonymous.post(f"{base}/issue", headers=auth)
    assert created.status_code == 201
    issue_id = created.json()["issue_id"]
    on = anonymous.patch(
        base, headers=auth, json={"issue_id": issue_id, "enabled": True, "with_latest": True}
    )
    assert on.status_code == 200, on.text
    body = on.json()
    assert (body["issue_id"], body["enabled"], body["with_latest"]) == (issue_id, True, True)
    assert body["published_at"] is not None and body["sent"] == 0
    assert anonymous.post(f"{base}/publish", headers=auth).status_code == 200
    # a regular issue is not a welcome; a welcome is not sent to the list
    regular = make_issue(session, newsletter=nl)
    wrong = anonymous.patch(base, headers=auth, json={"issue_id": regular.issue.id})
    assert wrong.status_code == 422 and "not a welcome email" in wrong.json()["error"]
    refused = anonymous.post(f"/api/issues/{issue_id}/send", headers=auth)
    assert refused.status_code == 409 and "never to the whole list" in refused.json()["error"]
    assert anonymous.patch(base, headers=auth, json={"bogus": 1}).status_code == 422


def test_the_cli_creates_and_turns_on_the_welcome(session: Session) -> None:
    nl = make_newsletter(session)
    runner = CliRunner(env={"COLUMNS": "200"})
    made = runner.invoke(cli, ["newsletters", "welcome", nl.slug, "--create"])
    assert made.exit_code == 0, made.output
    issue = session.exec(
        select(Issue).where(Issue.newsletter_id == nl.id, Issue.kind == "welcome")
    ).one()
    on = runner.invoke(
        cli, ["newsletters", "welcome", nl.slug, "--issue", str(issue.id), "--on", "--with-latest"]
    )
    assert on.exit_code == 0, on.output
    assert "latest issue too" in on.output and "yes" in on.output
    session.expire_all()
    row = session.get(NewsletterWelcome, nl.id)
    assert row is not None and (row.issue_id, row.enabled, row.with_latest) == (
        issue.id,
        True,
        True,
    )
    bad = runner.invoke(cli, ["newsletters", "welcome", nl.slug, "--issue", "999999"])
    assert bad.exit_code == 1  # main() prints it as one red line
    assert isinstance(bad.exception, UserError)
    assert str(bad.exception) == "no issue with id 999999"
