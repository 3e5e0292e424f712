"""The autopilot's page in the editor UI and its JSON API: settings saved through the same checks
as the CLI, a bad rule refused with what was typed (422), sources added and removed, writers
kept out of the settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.autopilot import rules, sources
from newsletter.config import Settings
from newsletter.models import AuditEntry, Source
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor, make_editor, sign_in

FORM = {
    "enabled": "on",
    "rule": "mon,thu 07:30",
    "lead_hours": "10",
    "sections": "politics = Politics\neconomy = Economy",
    "other_section": "More news",
    "ordering": "newest",
    "priority_tag": "",
    "per_section": "4",
    "lead": "newest",
    "nothing_new": "skip",
    "note_text": "",
    "catch_up_hours": "36",
}


def test_the_page_saves_the_schedule_and_shows_the_next_runs(
    editor: Editor, session: Session
) -> None:
    nl = make_newsletter(session, time_zone="America/New_York")
    saved = editor.post(f"/admin/newsletters/{nl.id}/autopilot", FORM)
    assert saved.status_code == 303, saved.text
    pilot = rules.get_autopilot(session, nl.id)  # type: ignore[arg-type]
    assert pilot.enabled and pilot.rule == "mon,thu 07:30" and pilot.lead_hours == 10
    assert pilot.catch_up_hours == 36
    assert pilot.sections == [["politics", "Politics"], ["economy", "Economy"]]
    page = editor.client.get(f"/admin/newsletters/{nl.id}/autopilot")
    assert "Mondays, Thursdays at 07:30 (America/New_York)" in page.text
    assert "07:30 E" in page.text  # the next runs in New York time (EST or EDT)
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "autopilot.update")).one()
    assert (entry.target_type, entry.target_id) == ("newsletter", nl.id)


def test_a_rule_that_cannot_be_read_comes_back_with_what_was_typed(
    editor: Editor, session: Session
) -> None:
    nl = make_newsletter(session)
    refused = editor.post(f"/admin/newsletters/{nl.id}/autopilot", {**FORM, "rule": "funday 8"})
    assert refused.status_code == 422
    assert "cannot read the schedule" in refused.text and 'value="funday 8"' in refused.text
    assert rules.get_autopilot(session, nl.id).id is None  # type: ignore[arg-type]


def test_sources_are_added_and_removed_on_the_page(editor: Editor, session: Session) -> None:
    nl = make_newsletter(session)
    url = f"/admin/newsletters/{nl.id}/autopilot/sources"
    feed = editor.post(url, {"url": "https://news.example.org/feed.json"})
    query = editor.post(url, {"url": "", "tag": "sanctions", "section": "", "author": ""})
    empty = editor.post(url, {"url": "", "tag": "", "section": "", "author": ""})
    assert (feed.status_code, query.status_code, empty.status_code) == (303, 303, 422)
    assert "needs a tag, a section or an author" in empty.text
    page = editor.client.get(f"/admin/newsletters/{nl.id}/autopilot")
    assert "https://news.example.org/feed.json" in page.text
    assert "library: tag &#39;sanctions&#39;" in page.text
    first = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    gone = editor.post(f"{url}/{first.id}/remove")
    assert gone.status_code == 303
    session.expire_all()
    assert len(sources.list_sources(session, nl.id)) == 1  # type: ignore[arg-type]


def test_a_writer_sees_the_page_but_cannot_change_it(
    settings: Settings, anonymous: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    make_editor(settings, email="writer@example.org", role="writer")
    writer = Editor(anonymous, sign_in(anonymous, "writer@example.org"))
    page = writer.client.get(f"/admin/newsletters/{nl.id}/autopilot")
    assert page.status_code == 200 and "save-autopilot" not in page.text
    refused = writer.post(f"/admin/newsletters/{nl.id}/autopilot", FORM)
    assert refused.status_code == 303  # back, with the refusal as the page's message
    assert rules.get_autopilot(session, nl.id).id is None  # type: ignore[arg-type]


@pytest.fixture
def api(settings: Settings, session: Session) -> Iterator[tuple[TestClient, dict[str, str]]]:
    token = api_tokens.create(session, "tests")
    session.commit()
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_the_api_reads_and_changes_the_autopilot_and_its_sources(
    api: tuple[TestClient, dict[str, str]], session: Session
) -> None:
    client, auth = api
    nl = make_newsletter(session, time_zone="Europe/Minsk")
    base = f"/api/newsletters/{nl.id}/autopilot"
    changed = client.patch(base, json={"enabled": True, "rule": "mon 08:00"}, headers=auth)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["schedule"] == "Mondays at 08:00 (Europe/Minsk)"
    assert [r[11:16] for r in body["next_runs"]] == ["05:00"] * 3  # 08:00 in Minsk is 05:00 UTC
    bad = client.patch(base, json={"rule": "0 8 * *"}, headers=auth)
    assert bad.status_code == 422 and "cannot read the schedule" in bad.text
    added = client.post(f"{base}/sources", json={"url": "https://n.example.org/rss"}, headers=auth)
    assert added.status_code == 201 and added.json()["kind"] == "feed"
    source_id = added.json()["id"]
    assert client.get(base, headers=auth).json()["sources"][0]["id"] == source_id
    other = make_newsletter(session)
    elsewhere = client.delete(
        f"/api/newsletters/{other.id}/autopilot/sources/{source_id}", headers=auth
    )
    assert elsewhere.status_code == 404  # a source is removed through its own newsletter
    assert client.delete(f"{base}/sources/{source_id}", headers=auth).status_code == 204
    assert session.exec(select(Source)).all() == []
