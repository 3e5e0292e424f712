"""The composer's editions page in a real browser: an edition added, its subject and a story
(headline and image alt text) translated beside the default text, saved and shown again;
screenshots at 375 and 1200 px."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from newsletter import seeding
from newsletter.models import Edition, EditionItem
from tests.browser import conftest as browser_conftest
from tests.browser.conftest import ARTIFACTS, Live, sign_in

SUBJECT = "Мінск і Кіеў: што сказаў старшыня КДБ"  # noqa: RUF001 - Belarusian
#: the seeded lead's alt text ("A man in a dark suit speaks at a lectern in front of a Belarusian
#: state flag."), translated
ALT = "Мужчына ў цёмным гарнітуры выступае за трыбунай на фоне беларускага дзяржаўнага сцяга."


@pytest.fixture(autouse=True)
def own_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(browser_conftest, "REDIS_DB", 11)  # this suite's Celery broker
    yield


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"))  # the top
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_editor_translates_an_edition_beside_the_default(page: Any, live: Live) -> None:
    with live.session() as s:
        issue = seeding.draft_sample_issue(s)
        issue_id = issue.id
        s.commit()

    page.set_default_timeout(60_000)  # the shared 2-core machine is slow at times
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    page.locator("#editions-link").click()
    page.locator("#new-language").fill("be")
    page.get_by_role("button", name="Add edition").click()
    page.get_by_text("Беларуская edition added.").wait_for()
    assert page.locator("#e-subject-default").inner_text().strip()  # the default, beside
    page.locator("#e-subject").fill(SUBJECT)
    headline = page.locator("input[id^='e-headline-']").first
    headline.fill("Тэртэль кажа, што КДБ гатовы да дыялогу з Кіевам")
    alt = page.locator("input[id^='e-alt-']").first  # beside the article's own alt text
    alt_default = page.locator(f"#{alt.get_attribute('id')}-default").inner_text().strip()
    assert alt_default and alt_default != ALT
    alt.fill(ALT)
    page.get_by_role("button", name="Save Беларуская edition").click()
    page.get_by_text("Беларуская edition saved.").wait_for()

    assert page.locator("#e-subject").input_value() == SUBJECT
    assert page.locator(".untranslated").count() > 0  # the stories not translated yet are marked
    with live.session() as s:
        edition = s.exec(select(Edition).where(Edition.issue_id == issue_id)).one()
        assert edition.language == "be" and edition.subject.startswith("Мінск")
        stories = s.exec(select(EditionItem).where(EditionItem.edition_id == edition.id)).all()
        assert [o.headline for o in stories if o.headline] == [
            "Тэртэль кажа, што КДБ гатовы да дыялогу з Кіевам"
        ]
        assert [o.image_alt for o in stories if o.image_alt] == [ALT]
    assert "Not translated yet" in page.locator("#edition-qa").inner_text()  # the edition's QA
    shoot(page, "editions-side-by-side")
    story = page.locator(".pair", has=page.locator("input[id^='e-alt-']")).first
    for width in (1200, 375):  # the first story's alt text beside the article's
        page.set_viewport_size({"width": width, "height": 900})
        story.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"editions-story-alt-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(page.locator("#edition-preview").get_attribute("href"))
    preview = page.content()
    assert "Тэртэль кажа" in preview and "Чытаць далей" in preview  # the edition, its chrome
    assert f'alt="{ALT}"' in preview and f'alt="{alt_default}"' not in preview
    page.goto("/subscribe?lang=be")  # a public page in a shipped locale
    page.get_by_role("button", name="Падпісацца").wait_for()
    shoot(page, "subscribe-be")
