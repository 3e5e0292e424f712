"""The composer through HTTP (TestClient): every change is a real form post to the real app."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from newsletter import db
from newsletter.config import Settings
from newsletter.content import issues as outline_api
from newsletter.content import spam_check
from newsletter.content.spam_check import RuleHit, SpamConfig, SpamResult
from newsletter.models import Article, Issue, IssueItem, IssueStatus
from newsletter.sending import start
from tests.conftest import make_article, make_issue, make_newsletter, make_subscribers
from tests.integration.admin_support import Dispatched, Editor


def _order(session: Session, issue_id: int) -> list[str]:
    session.expire_all()
    return [it.article.title for it in outline_api.load_outline(session, issue_id).items]


def test_create_a_draft_from_the_dashboard(editor: Editor, session: Session) -> None:
    newsletter = make_newsletter(session)
    page = editor.client.get("/admin/")
    assert newsletter.name in page.text
    answer = editor.post("/admin/issues", {"newsletter": newsletter.id, "title": "Week 47"})
    assert answer.status_code == 303
    issue = session.exec(select(Issue).where(Issue.title == "Week 47")).one()
    assert answer.headers["location"] == f"/admin/issues/{issue.id}"
    composer = editor.client.get(answer.headers["location"])
    assert composer.status_code == 200
    assert "Draft created." in composer.text
    assert 'sandbox title="Email preview (HTML)"' in composer.text


def test_details_sections_items_and_blurbs(editor: Editor, session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    issue_id = fx.issue.id
    extra = make_article(session, title="Late story")
    first, second = fx.items

    editor.post(
        f"/admin/issues/{issue_id}/details",
        {"title": "New title", "subject": "Subject!", "preheader": "Pre", "intro_md": "*Hi*"},
    )
    editor.post(f"/admin/issues/{issue_id}/sections", {"title": "Culture"})
    session.expire_all()
    outline = outline_api.load_outline(session, issue_id)  # type: ignore[arg-type]
    culture = outline.sections[1].section
    assert [s.section.title for s in outline.sections] == ["Section 1", "Culture"]
    assert outline.issue.title == "New title" and outline.issue.subject == "Subject!"

    editor.post(
        f"/admin/issues/{issue_id}/items", {"article_id": extra.id, "section_id": culture.id}
    )
    editor.post(f"/admin/items/{second.id}/move", {"position": 0})
    assert _order(session, issue_id) == [  # type: ignore[arg-type]
        fx.articles[1].title,
        fx.articles[0].title,
        "Late story",
    ]
    editor.post(f"/admin/sections/{culture.id}/move", {"position": 0})
    assert _order(session, issue_id)[0] == "Late story"  # type: ignore[arg-type]
    editor.post(f"/admin/items/{first.id}/blurb", {"blurb": "Our own words."})
    session.expire_all()
    assert session.get(IssueItem, first.id).blurb == "Our own words."  # type: ignore[union-attr]
    editor.post(f"/admin/items/{first.id}/move", {"section_id": culture.id})
    session.expire_all()
    assert session.get(IssueItem, first.id).section_id == culture.id  # type: ignore[union-attr]
    editor.post(f"/admin/items/{first.id}/delete")
    assert fx.articles[0].title not in _order(session, issue_id)  # type: ignore[arg-type]
    editor.post(f"/admin/sections/{culture.id}/delete")
    assert _order(session, issue_id) == [fx.articles[1].title]  # type: ignore[arg-type]


def test_a_domain_error_comes_back_as_a_message_and_changes_nothing(
    editor: Editor, session: Session
) -> None:
    fx = make_issue(session, layout=(1,))
    answer = editor.client.post(
        f"/admin/issues/{fx.issue.id}/items",
        data={
            "csrf_token": editor.csrf,
            "article_id": fx.articles[0].id,
            "section_id": fx.sections[0].id,
        },
        headers={"referer": f"https://testserver/admin/issues/{fx.issue.id}"},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    assert "already in this issue" in answer.text
    assert len(_order(session, fx.issue.id)) == 1  # type: ignore[arg-type]
    # our scripts get the error as JSON
    fetched = editor.client.post(
        f"/admin/issues/{fx.issue.id}/details",
        data={"csrf_token": editor.csrf, "title": "   "},
        headers={"x-requested-with": "fetch"},
    )
    assert fetched.status_code == 422
    assert fetched.json() == {"error": "an issue needs a title"}


def test_preview_is_the_rendered_email_and_is_sandboxed(editor: Editor, session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    html = editor.client.get(f"/admin/issues/{fx.issue.id}/preview.html")
    assert html.status_code == 200
    assert fx.articles[0].title in html.text and "<mjml" not in html.text
    assert html.headers["content-security-policy"].startswith("sandbox;")
    assert "script-src" not in html.headers["content-security-policy"]  # default-src 'none'
    assert html.headers["x-frame-options"] == "SAMEORIGIN"
    text = editor.client.get(f"/admin/issues/{fx.issue.id}/preview.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert fx.articles[1].title in text.text


def test_qa_panel_shows_blocking_findings_and_send_is_refused(
    editor: Editor, session: Session, dispatched: Dispatched
) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 3)
    article = session.get(Article, fx.articles[0].id)
    assert article is not None
    article.image_alt = None
    session.add(article)
    session.commit()

    page = editor.client.get(f"/admin/issues/{fx.issue.id}")
    assert "1 blocking problem" in page.text
    assert re.search(r'<button type="button" disabled id="send-now"', page.text)
    confirm = editor.client.get(f"/admin/issues/{fx.issue.id}/send")
    assert "QA blocks this send" in confirm.text
    refused = editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3})
    assert refused.status_code == 303
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.draft  # type: ignore[union-attr]
    assert dispatched.ids == []

    article.image_alt = "Protesters on a square"
    session.add(article)
    session.commit()
    confirm = editor.client.get(f"/admin/issues/{fx.issue.id}/send")
    assert "<strong>3</strong> subscribers" in confirm.text
    started = editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3})
    assert started.headers["location"] == f"/admin/issues/{fx.issue.id}/sending"
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.sending  # type: ignore[union-attr]
    assert dispatched.ids == [fx.issue.id]


def test_send_refused_when_the_audience_changed_since_the_confirmation(
    editor: Editor, session: Session, dispatched: Dispatched
) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 2)
    answer = editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 5})
    assert answer.headers["location"] == f"/admin/issues/{fx.issue.id}/send"
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.draft  # type: ignore[union-attr]
    assert dispatched.ids == []


def test_sending_view_controls(editor: Editor, session: Session, dispatched: Dispatched) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 4)
    editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 4})
    page = editor.client.get(f"/admin/issues/{fx.issue.id}/sending")
    assert 'id="state-total">4<' in page.text and ">Pause<" in page.text
    status = editor.client.get(f"/admin/issues/{fx.issue.id}/status.json").json()
    assert status["counts"]["pending"] == 4 and status["status"] == "sending"

    editor.post(f"/admin/issues/{fx.issue.id}/pause")
    assert (
        editor.client.get(f"/admin/issues/{fx.issue.id}/status.json").json()["status"] == "paused"
    )
    assert "paused by Ada Editor" in editor.client.get(f"/admin/issues/{fx.issue.id}/sending").text
    editor.post(f"/admin/issues/{fx.issue.id}/resume")
    assert dispatched.ids == [fx.issue.id, fx.issue.id]
    editor.post(f"/admin/issues/{fx.issue.id}/cancel")
    final = editor.client.get(f"/admin/issues/{fx.issue.id}/status.json").json()
    assert final["status"] == "cancelled" and final["counts"]["cancelled"] == 4


def test_send_now_answers_at_once_and_shows_preparing_until_a_worker_fills(
    editor: Editor, session: Session, settings: Settings, dispatched: Dispatched
) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 3)
    dispatched.database_url = None  # no worker has run yet
    started = editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 3})
    assert started.headers["location"].startswith(f"/admin/issues/{fx.issue.id}/sending")
    assert dispatched.ids == [fx.issue.id]
    page = editor.client.get(f"/admin/issues/{fx.issue.id}/sending")
    assert "Preparing the send (3 recipients)" in page.text
    assert ">Cancel send<" in page.text and ">Pause<" not in page.text
    status = editor.client.get(f"/admin/issues/{fx.issue.id}/status.json").json()
    assert (status["status"], status["total"]) == ("preparing", 0)

    with db.session_scope(settings.database_url) as s:  # the worker's dispatch
        assert start.fill_prepared(s, issue_id=fx.issue.id) is not None  # type: ignore[arg-type]
    page = editor.client.get(f"/admin/issues/{fx.issue.id}/sending")
    assert "Preparing the send" not in page.text and ">Pause<" in page.text
    assert 'id="state-total">3<' in page.text


def test_a_send_cancelled_while_preparing_is_never_filled(
    editor: Editor, session: Session, settings: Settings, dispatched: Dispatched
) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 2)
    dispatched.database_url = None
    editor.post(f"/admin/issues/{fx.issue.id}/send", {"recipients": 2})
    editor.post(f"/admin/issues/{fx.issue.id}/cancel")
    with db.session_scope(settings.database_url) as s:
        assert start.fill_prepared(s, issue_id=fx.issue.id) is None  # type: ignore[arg-type]
    final = editor.client.get(f"/admin/issues/{fx.issue.id}/status.json").json()
    assert (final["status"], final["total"]) == ("cancelled", 0)


def test_schedule_and_unschedule(editor: Editor, session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    answer = editor.post(f"/admin/issues/{fx.issue.id}/schedule", {"at": "2099-01-02T09:30"})
    assert answer.status_code == 303
    session.expire_all()
    issue = session.get(Issue, fx.issue.id)
    assert issue is not None and issue.status == IssueStatus.scheduled
    assert issue.scheduled_at is not None and issue.scheduled_at.hour == 9
    page = editor.client.get(f"/admin/issues/{fx.issue.id}")
    assert "Unschedule" in page.text and 'id="f-title"' in page.text
    editor.post(f"/admin/issues/{fx.issue.id}/unschedule")
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.draft  # type: ignore[union-attr]
    bad = editor.post(f"/admin/issues/{fx.issue.id}/schedule", {"at": "next tuesday"})
    assert bad.status_code == 303
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.draft  # type: ignore[union-attr]


def test_a_past_schedule_goes_back_to_the_composer_with_the_reason(
    editor: Editor, session: Session
) -> None:
    fx = make_issue(session, layout=(1,))
    answer = editor.post(f"/admin/issues/{fx.issue.id}/schedule", {"at": "2020-01-02T09:30"})
    assert answer.status_code == 303
    page = editor.client.get(answer.headers["location"])
    assert "2020-01-02 09:30 UTC is in the past" in page.text and 'class="error"' in page.text
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == IssueStatus.draft  # type: ignore[union-attr]


def test_a_malformed_form_goes_back_to_the_page_with_the_reason(
    editor: Editor, session: Session
) -> None:
    fx = make_issue(session, layout=(1,))
    answer = editor.client.post(
        f"/admin/items/{fx.items[0].id}/move",
        data={"csrf_token": editor.csrf, "position": "first"},
        headers={"referer": f"https://testserver/admin/issues/{fx.issue.id}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/issues/{fx.issue.id}"
    page = editor.client.get(answer.headers["location"])
    assert "position" in page.text and 'class="error"' in page.text


def test_the_qa_panel_scores_spam_on_its_own_route_and_then_from_the_cache(
    editor: Editor, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SpamAssassin itself is the outer edge here (tests/unit/test_spam_check.py runs it)
    runs: list[bytes] = []

    def fake_score(message: bytes, config: SpamConfig) -> SpamResult:
        runs.append(message)
        rules = (RuleHit("MAILING_LIST_MULTI", -1.0, "Multiple indicators imply a list"),)
        return SpamResult(True, -1.0, rules, "fake", 0.01)

    monkeypatch.setattr(spam_check, "score_message", fake_score)
    monkeypatch.setattr(settings, "spam_check", "auto")
    spam_check.CACHE.clear()
    fx = make_issue(session, layout=(1,))
    composer = f"/admin/issues/{fx.issue.id}"

    page = editor.client.get(composer).text
    assert 'data-state="pending"' in page and f'href="{composer}/qa/spam#qa"' in page
    assert runs == []  # a page view does not wait for SpamAssassin

    scored = editor.client.get(f"{composer}/qa/spam").text  # the link, without JavaScript
    assert 'data-state="scored"' in scored and '<strong id="spam-score">-1.0</strong>' in scored
    assert "<code>MAILING_LIST_MULTI</code>" in scored and "threshold 5.0" in scored
    assert len(runs) == 1 and b"Subject: " in runs[0] and b"text/html" in runs[0]

    assert 'data-state="scored"' in editor.client.get(composer).text  # now from the cache
    answer = editor.client.get(f"{composer}/qa/spam.json").json()
    assert answer["spam"]["score"] == -1.0 and answer["spam"]["blocking"] is False
    assert answer["spam"]["rules"][0]["name"] == "MAILING_LIST_MULTI"
    assert len(runs) == 1
    spam_check.CACHE.clear()


def test_the_qa_panel_says_when_the_spam_check_is_off(editor: Editor, session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    page = editor.client.get(f"/admin/issues/{fx.issue.id}").text
    assert 'data-state="off"' in page and "NEWSLETTER_SPAM_CHECK=off" in page
