"""The newsletter pages of the editor UI: list, new, settings, the deliverability card; refused
forms come back with the reason (422) and store nothing; CSRF and sign-in are required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.mail import dkim
from newsletter.models import Newsletter
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor

FORM = {
    "name": "Minsk Evening",
    "slug": "minsk-evening",
    "from_name": "",
    "from_email": "evening@news.example.org",
    "reply_to": "",
    "postal_address": "Example News Ltd, 12 Sample Street, Warsaw",
    "language": "be",
    "time_zone": "Europe/Minsk",
    "brand_color": "#1a5e9a",
    "logo_url": "https://news.example.org/evening.png",
    "masthead": "Minsk after dark",
    "description": "A weekday briefing on the capital.",
    "footer_text": "You signed up at news.example.org.",
    "website_url": "https://news.example.org",
    "membership_text": "Members pay for this.",
    "membership_button": "Join",
    "membership_url": "https://news.example.org/join",
    "membership_cta": "on",
    "default_sections": "Top stories\r\n\r\nCulture\r\n",
}


def snapshot(session: Session) -> list[dict[str, Any]]:
    session.expire_all()
    rows = session.exec(select(Newsletter).order_by(Newsletter.id)).all()  # type: ignore[arg-type]
    return [r.model_dump() for r in rows]


def test_the_nav_lists_newsletters_and_the_list_links_each_settings_page(
    editor: Editor, session: Session
) -> None:
    weekly = make_newsletter(session, name="Belarus Weekly")
    dashboard = editor.client.get("/admin/").text
    assert '<a href="/admin/newsletters">Newsletters</a>' in dashboard
    page = editor.client.get("/admin/newsletters")
    assert page.status_code == 200
    assert f'href="/admin/newsletters/{weekly.id}">Belarus Weekly</a>' in page.text
    assert 'href="/admin/newsletters/new"' in page.text
    assert 'aria-current="page">Newsletters' in page.text


def test_an_editor_creates_a_newsletter_and_changes_its_settings(
    editor: Editor, session: Session
) -> None:
    form = editor.client.get("/admin/newsletters/new")
    assert form.status_code == 200 and 'name="csrf_token"' in form.text

    created = editor.post("/admin/newsletters", FORM)
    assert created.status_code == 303, created.text
    stored = session.exec(select(Newsletter).where(Newsletter.slug == "minsk-evening")).one()
    assert created.headers["location"] == f"/admin/newsletters/{stored.id}"
    assert stored.from_name == "Minsk Evening"
    assert stored.default_sections == ["Top stories", "Culture"]
    assert stored.membership_cta is True and stored.requires_review is False
    assert (stored.language, stored.time_zone) == ("be", "Europe/Minsk")

    page = editor.client.get(created.headers["location"])
    assert page.status_code == 200
    assert "Newsletter Minsk Evening created." in page.text
    assert 'value="Minsk after dark"' in page.text

    # the settings form posts every field: an unticked box turns the call-to-action off
    changed = {**FORM, "masthead": "Minsk, after dark", "requires_review": "on"}
    del changed["membership_cta"]
    saved = editor.post(f"/admin/newsletters/{stored.id}", changed)
    assert saved.status_code == 303, saved.text
    session.expire_all()
    again = session.get(Newsletter, stored.id)
    assert again is not None
    assert again.masthead == "Minsk, after dark"
    assert again.membership_cta is False and again.requires_review is True


REFUSED = [
    ({"from_email": "not-an-address"}, "invalid email address"),
    ({"logo_url": "http://news.example.org/logo.png"}, "logo_url must be an absolute https"),
    ({"brand_color": "crimson"}, "is not a #rrggbb colour"),
    ({"slug": "taken"}, "is taken by newsletter"),
    ({"time_zone": "Europe/Atlantis"}, "is not an IANA time zone"),
    ({"masthead": "two\u000blines"}, "masthead contains a control character"),
    ({"language": "en_GB"}, "is not a BCP 47 tag"),
]


@pytest.mark.parametrize(("change", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_a_refused_settings_form_comes_back_with_the_reason_and_stores_nothing(
    editor: Editor, session: Session, change: dict[str, str], message: str
) -> None:
    make_newsletter(session, slug="taken")
    evening = make_newsletter(session, slug="evening")
    before = snapshot(session)

    answer = editor.post(f"/admin/newsletters/{evening.id}", {**FORM, **change})

    assert answer.status_code == 422
    assert message in answer.text
    # what was typed is still in the form
    assert f'value="{next(iter(change.values()))}"' in answer.text.replace("&#39;", "'")
    assert snapshot(session) == before


def test_a_refused_new_newsletter_stores_nothing(editor: Editor, session: Session) -> None:
    make_newsletter(session, slug="minsk-evening")
    before = snapshot(session)
    answer = editor.post("/admin/newsletters", FORM)
    assert answer.status_code == 422
    assert "slug &#39;minsk-evening&#39; is taken" in answer.text
    assert snapshot(session) == before


def test_forms_need_the_csrf_token_and_pages_need_a_session(
    editor: Editor, anonymous: Any, session: Session
) -> None:
    before = snapshot(session)
    forged = editor.client.post(
        "/admin/newsletters", data={**FORM, "csrf_token": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert snapshot(session) == before
    editor.client.post("/admin/logout", data={"csrf_token": editor.csrf})
    assert editor.client.get("/admin/newsletters", follow_redirects=False).status_code == 303


def test_the_settings_page_lists_spf_and_dmarc_and_says_dkim_is_not_configured(
    editor: Editor, session: Session
) -> None:
    evening = make_newsletter(session, from_email="evening@evening.example.org")
    page = editor.client.get(f"/admin/newsletters/{evening.id}").text
    assert "Deliverability" in page
    assert "<code>evening.example.org</code>" in page
    assert "v=spf1 include:_spf.your-relay.example ~all" in page
    assert "<code>_dmarc.evening.example.org</code>" in page
    assert "v=DMARC1; p=none;" in page
    assert "DKIM is not configured" in page
    # the test settings' base URL is https
    assert "The site's base URL is https" in page


def test_the_settings_page_shows_the_dkim_record_of_the_configured_key_and_http_warning(
    editor: Editor,
    session: Session,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = tmp_path / "dkim.pem"
    key.write_bytes(dkim.generate_key(2048))
    monkeypatch.setattr(settings, "dkim_selector", "nl2026")
    monkeypatch.setattr(settings, "dkim_domain", "news.example.org")
    monkeypatch.setattr(settings, "dkim_key_file", key)
    monkeypatch.setattr(settings, "base_url", "http://news.example.org")
    signer = dkim.signer_from_settings(settings)
    assert signer is not None
    weekly = make_newsletter(session, from_email="weekly@news.example.org")

    page = editor.client.get(f"/admin/newsletters/{weekly.id}").text

    assert "<code>nl2026._domainkey.news.example.org</code>" in page
    assert signer.txt_record in page
    assert "DKIM is not configured" not in page
    assert "base URL is not https" in page
