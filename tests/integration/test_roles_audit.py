"""Roles in the editor UI, the admin API and the CLI, and the audit trail they leave.

Routes are enumerated from the app, so a route added later without an entry in
``api.permissions.ROUTES`` fails here; every refusal is checked to have changed nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter import cli
from newsletter.access import api_tokens
from newsletter.access.roles import Role, can
from newsletter.api import admin, create_app
from newsletter.api import app as api_app
from newsletter.api.permissions import ROUTES, endpoint_key
from newsletter.config import Settings
from newsletter.models import AuditEntry, IssueStatus
from tests.conftest import IssueFixture, make_issue, make_newsletter, make_subscribers
from tests.integration.admin_support import Dispatched, Editor, make_editor, sign_in
from tests.integration.test_admin_security import fill, fingerprint

PUBLIC_ADMIN = {"/admin/login", "/admin/login/code"}


def admin_routes() -> list[tuple[str, str, str]]:
    """(method, path, ROUTES key) of every editor-UI route behind the sign-in."""
    found = []
    for router in admin.ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path not in PUBLIC_ADMIN:
                key = endpoint_key(route.endpoint.__module__, route.endpoint.__name__)
                found.extend((m, route.path, key) for m in sorted(route.methods))
    return found


def api_routes() -> list[tuple[str, str, str]]:
    found = []
    for router in api_app.ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and not route.endpoint.__module__.endswith(".signup"):
                key = endpoint_key(route.endpoint.__module__, route.endpoint.__name__)
                path = "/api" + route.path  # route.path holds its router's prefix already
                found.extend((m, path, key) for m in sorted(route.methods))
    return found


def test_every_guarded_route_names_its_action() -> None:
    keys = {key for _, _, key in admin_routes() + api_routes()}
    assert keys - set(ROUTES) == set(), "routes without an action in api.permissions.ROUTES"
    assert set(ROUTES) - keys == set(), "ROUTES names routes that do not exist"


@pytest.fixture
def fx(session: Session) -> IssueFixture:
    fixture = make_issue(session, layout=(2, 1))
    make_subscribers(session, fixture.newsletter, 3)
    return fixture


def signed_in_as(settings: Settings, role: Role, dispatched: Dispatched) -> Iterator[Editor]:
    email = f"{role.value}@news.example.org"
    make_editor(settings, email=email, role=role.value)
    with TestClient(create_app(settings, dispatch=dispatched), base_url="https://testserver") as c:
        yield Editor(c, sign_in(c, email=email))


@pytest.mark.parametrize("role", [Role.writer, Role.editor, Role.audience])
def test_the_editor_ui_refuses_what_a_role_lacks_and_changes_nothing(
    role: Role, settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    refused = 0
    for editor in signed_in_as(settings, role, dispatched):
        before = fingerprint(session)
        for method, path, key in admin_routes():
            action, _ = ROUTES[key]
            if can(role, action):
                continue
            url = fill(path, fx)
            if method == "GET":
                answer = editor.client.get(url, follow_redirects=False)
            else:
                answer = editor.post(url, {"title": "changed", "position": "0", "at": "2099-01-01"})
            assert answer.status_code in (403, 303), (role, method, url, answer.status_code)
            if answer.status_code == 303:  # a form post: back with the reason, nothing done
                assert "ask an admin" in editor.client.get(answer.headers["location"]).text
            refused += 1
        assert fingerprint(session) == before
    assert refused >= 5
    assert dispatched.ids == []


def test_a_writer_drafts_but_is_not_offered_the_send(
    settings: Settings, fx: IssueFixture, dispatched: Dispatched
) -> None:
    for writer in signed_in_as(settings, Role.writer, dispatched):
        page = writer.client.get(f"/admin/issues/{fx.issue.id}").text
        assert 'id="send-now"' not in page and "An editor schedules and sends" in page
        assert 'href="/admin/subscribers"' not in page and 'href="/admin/audit"' not in page
        edited = writer.post(f"/admin/issues/{fx.issue.id}/details", {"title": "New title"})
        assert edited.status_code == 303
        assert (
            writer.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3}).status_code == 303
        )
    assert dispatched.ids == []


def test_an_editor_sends_and_the_audit_trail_names_them(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    for editor in signed_in_as(settings, Role.editor, dispatched):
        assert 'id="send-now"' in editor.client.get(f"/admin/issues/{fx.issue.id}").text
        sent = editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3})
        assert sent.status_code == 303, sent.text
    assert dispatched.ids == [fx.issue.id]
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "issue.send")).one()
    assert (entry.actor_kind, entry.actor_label) == ("editor", "editor@news.example.org")
    assert (entry.target_type, entry.target_id) == ("issue", fx.issue.id)
    assert entry.newsletter_id == fx.newsletter.id and entry.ip


def test_a_failed_action_leaves_no_audit_entry(
    settings: Settings, session: Session, dispatched: Dispatched
) -> None:
    empty = make_issue(session, layout=())  # QA blocks an issue without items
    for editor in signed_in_as(settings, Role.editor, dispatched):
        answer = editor.post(f"/admin/issues/{empty.issue.id}/send", {"recipients": 0})
        assert answer.status_code == 303  # back to the composer with the QA reasons
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "issue.send")).all() == []


def test_a_per_newsletter_role_lets_a_writer_send_that_newsletter_only(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    other = make_issue(session, newsletter=make_newsletter(session, slug="second"))
    make_subscribers(session, other.newsletter, 2)
    for writer in signed_in_as(settings, Role.writer, dispatched):
        result = CliRunner().invoke(
            cli.app,
            ["admin", "set-role", "writer@news.example.org", "editor", "--newsletter", "second"],
        )
        assert result.exit_code == 0, result.output
        assert (
            writer.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3}).status_code == 303
        )
        assert (
            writer.post(f"/admin/issues/{other.issue.id}/send", {"recipients": 2}).status_code
            == 303
        )
    assert dispatched.ids == [other.issue.id]


def test_the_audit_page_is_for_admins_and_lists_who_did_what(
    settings: Settings, session: Session, fx: IssueFixture, dispatched: Dispatched
) -> None:
    for editor in signed_in_as(settings, Role.editor, dispatched):
        editor.post(f"/admin/issues/{fx.issue.id}/details", {"title": "Edited <b>title</b>"})
        assert editor.client.get("/admin/audit", follow_redirects=False).status_code == 403
    for chief in signed_in_as(settings, Role.admin, dispatched):
        page = chief.client.get("/admin/audit?action=issue.").text
        assert "editor@news.example.org" in page and "issue.edit" in page
        assert "0 entries." in chief.client.get("/admin/audit?actor=nobody").text
        assert "not a date" in chief.client.get("/admin/audit?since=yesterday").text


@pytest.fixture
def token_for(session: Session) -> Iterator[object]:
    def make(role: str) -> dict[str, str]:
        value = api_tokens.create(session, f"{role}-token", role=role)
        session.commit()
        return {"Authorization": f"Bearer {value}"}

    yield make


@pytest.mark.parametrize("role", [Role.writer, Role.editor, Role.audience])
def test_the_admin_api_refuses_what_a_token_role_lacks(
    role: Role, settings: Settings, session: Session, fx: IssueFixture, token_for: object
) -> None:
    headers = token_for(role.value)  # type: ignore[operator]
    before = fingerprint(session)
    dispatched = Dispatched()
    with TestClient(create_app(settings, dispatch=dispatched)) as client:
        for method, path, key in api_routes():
            action, _ = ROUTES[key]
            if can(role, action):
                continue
            url = fill(path, fx).replace("{newsletter}", fx.newsletter.slug)
            answer = client.request(method, url, headers=headers, json={})
            assert answer.status_code == 403, (role, method, url, answer.status_code)
            assert "ask an admin" in answer.json()["error"]
    assert fingerprint(session) == before and dispatched.ids == []


def test_an_editor_token_sends_and_is_audited(
    settings: Settings, session: Session, fx: IssueFixture, token_for: object
) -> None:
    headers = token_for("editor")  # type: ignore[operator]
    dispatched = Dispatched()
    with TestClient(create_app(settings, dispatch=dispatched)) as client:
        answer = client.post(f"/api/issues/{fx.issue.id}/send", headers=headers)
        assert answer.status_code == 200 and answer.json()["started"], answer.text
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "issue.send")).one()
    assert (entry.actor_kind, entry.actor_label) == ("token", "token editor-token")


def test_cli_actions_are_audited_and_listed(
    settings: Settings, session: Session, fx: IssueFixture
) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            cli.app, ["issues", "schedule", str(fx.issue.id), "2099-01-01T08:00Z"]
        ).exit_code
        == 0
    )
    erased = make_subscribers(session, fx.newsletter, 1, domain="gone.example")[0]
    assert runner.invoke(cli.app, ["subscribers", "erase", str(erased.id), "--yes"]).exit_code == 0
    listing = runner.invoke(
        cli.app, ["audit", "list", "--action", "subscriber."], env={"COLUMNS": "200"}
    )
    assert listing.exit_code == 0, listing.output
    assert "subscriber.erase" in listing.output and "gone.example" not in listing.output
    entries = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["issue.schedule", "subscriber.erase"]
    assert all(e.actor_kind == "cli" for e in entries)
    session.refresh(fx.issue)
    assert fx.issue.status == IssueStatus.scheduled


def test_a_second_account_needs_a_role(settings: Settings) -> None:
    runner = CliRunner()
    env = {"NEWSLETTER_NEW_PASSWORD": "a long enough password"}
    first = runner.invoke(cli.app, ["admin", "create-user", "chief@news.example.org"], env=env)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli.app, ["admin", "create-user", "desk@news.example.org"], env=env)
    assert second.exit_code == 1 and "give the new account a role" in str(second.exception)
    third = runner.invoke(
        cli.app, ["admin", "create-user", "desk@news.example.org", "--role", "writer"], env=env
    )
    assert third.exit_code == 0, third.output
    users = runner.invoke(cli.app, ["admin", "list-users"], env={"COLUMNS": "200"})
    assert "writer" in users.output and "admin" in users.output
