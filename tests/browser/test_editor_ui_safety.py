"""The editor UI in a real browser, beyond the happy path: hostile markup in the preview stays
inert, the pages work at 375 px and from the keyboard, every field has a label."""

from __future__ import annotations

from typing import Any

import pytest

from newsletter.models import Issue
from newsletter.sending import previews
from tests.browser.conftest import Live, sign_in

HOSTILE = """<!doctype html><html><head><title>inert</title></head><body>
<h1 id="headline">Preview body</h1>
<script>document.title = 'script ran'; parent.document.title = 'pwned'; alert('pwned');</script>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="
  onerror="alert('pwned')" onload="alert('pwned')">
<form action="/admin/logout" method="post"><button id="go">go</button></form>
</body></html>"""


def draft_issue(live: Live) -> int:
    from newsletter import db, seeding

    with db.session_scope(live.settings.database_url) as s:
        issue: Issue = seeding.draft_sample_issue(s)
        return issue.id or 0


def test_scripts_in_the_preview_never_run(
    page: Any, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even HTML that got past the sanitiser cannot script the preview or reach the editor."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    monkeypatch.setattr(previews, "preview", lambda settings, issue_id: (HOSTILE, "text"))
    issue_id = draft_issue(live)
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    title = page.title()
    frame = page.frame_locator("#preview-frame")
    frame.locator("#headline").wait_for()
    page.wait_for_timeout(500)  # let any handler that could fire, fire
    assert dialogs == []
    assert page.title() == title
    sandbox = page.locator("#preview-frame").evaluate("f => [f.sandbox.length, f.contentDocument]")
    assert sandbox == [0, None]  # no sandbox tokens at all; an opaque origin we cannot reach
    inner = page.frames[1]
    assert inner.evaluate("document.title") == "inert"  # its own script did not run either
    # a form inside cannot post (sandbox without allow-forms): we are still signed in
    frame.locator("#go").click()
    page.wait_for_timeout(300)
    page.goto("/admin/")
    assert page.url.endswith("/admin/")


PAGES = [
    "/admin/",
    "/admin/issues/{issue}",
    "/admin/articles",
    "/admin/articles/new",
    "/admin/articles/import",
    "/admin/subscribers",
    "/admin/subscribers/new",
    "/admin/subscribers/import",
    "/admin/newsletters",
    "/admin/newsletters/new",
    "/admin/newsletters/1",
]


def test_every_page_fits_375_px_and_labels_every_field(browser: Any, live: Live) -> None:
    issue_id = draft_issue(live)
    context = browser.new_context(base_url=live.url, viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        sign_in(page)
        for template in PAGES:
            path = template.format(issue=issue_id)
            page.goto(path)
            assert page.url.endswith(path), (path, page.url)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 375px"
            unlabelled = page.evaluate(
                """() => [...document.querySelectorAll('input, select, textarea')]
                    .filter(el => el.type !== 'hidden')
                    .filter(el => !(el.labels && el.labels.length))
                    .filter(el => !el.getAttribute('aria-label'))
                    .map(el => el.outerHTML.slice(0, 120))"""
            )
            assert unlabelled == [], f"{path}: fields without a label: {unlabelled}"
    finally:
        context.close()


def test_reorder_with_the_keyboard_only(page: Any, live: Live) -> None:
    issue_id = draft_issue(live)
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    first_list = page.locator("#outline ol.items").first
    titles = first_list.locator(".item-title").all_inner_texts()
    assert len(titles) >= 2
    down = page.get_by_role("button", name=f"Move {titles[0]} down")
    down.focus()
    before = int(page.locator("#preview-frame").get_attribute("data-version") or "0")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => Number(document.getElementById('preview-frame').dataset.version) > n", arg=before
    )
    moved = page.locator("#outline ol.items").first.locator(".item-title").all_inner_texts()
    assert moved[:2] == [titles[1], titles[0]]
    # focus is still on a control of the moved item: pressing Enter again moves it further
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused is not None and titles[0] in focused
    # the skip link is the first thing Tab reaches and it lands on the main content
    page.reload()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def section_titles(page: Any) -> list[str]:
    return [
        t.strip() for t in page.locator("#outline section.outline-section h3").all_inner_texts()
    ]


def test_sections_reorder_by_drag_and_drop_and_buttons(page: Any, live: Live) -> None:
    issue_id = draft_issue(live)
    # tall enough for the first three sections at once: a drag that has to scroll the page
    # between press and move starts from whatever is under the pointer after the scroll
    page.set_viewport_size({"width": 1280, "height": 2400})
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    titles = section_titles(page)
    assert len(titles) >= 3
    frame = page.locator("#preview-frame")
    before = int(frame.get_attribute("data-version") or "0")
    headers = page.locator("#outline section.outline-section > header")
    headers.nth(2).drag_to(headers.nth(0), target_position={"x": 30, "y": 2})
    page.wait_for_function(
        "n => { const f = document.getElementById('preview-frame');"
        " return Number(f.dataset.version) > n && f.dataset.loaded === f.dataset.version; }",
        arg=before,
    )
    expected = [titles[2], titles[0], titles[1], *titles[3:]]
    assert section_titles(page) == expected
    shown = page.frame_locator("#preview-frame").locator("body").inner_text().upper()
    assert shown.index(titles[2].upper()) < shown.index(titles[0].upper())
    page.get_by_role("button", name=f"Move section {titles[2]} down").click()
    page.wait_for_function(
        "t => document.querySelector('#outline section.outline-section h3').textContent !== t",
        arg=titles[2],
    )
    assert section_titles(page)[:2] == [titles[0], titles[2]]
