"""An admin creates a second newsletter with its own branding in the browser, and the preview of
a draft of it uses that branding (colour, logo, masthead) and its default sections. Screenshots
of the settings page and of the issue email at 375 and 1200 px."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from newsletter.models import Issue, Newsletter
from tests.browser.conftest import Live, screenshot, sign_in

LOGO = "https://static.example.org/brand/minsk-evening-logo.svg"
#: the logo, served to the browser by the test (the network is closed): white type, no fill
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="80" viewBox="0 0 400 80">'
    '<text x="200" y="54" text-anchor="middle" font-family="Georgia, serif" font-size="40" '
    'font-weight="bold" fill="#ffffff">MINSK EVENING</text></svg>'
)
COLOUR = "#1a5e9a"
MASTHEAD = "The capital after dark, every weekday"


def serve_logo(context: Any) -> None:
    context.route(
        LOGO, lambda route: route.fulfill(status=200, content_type="image/svg+xml", body=LOGO_SVG)
    )


def fill_new_newsletter(page: Any) -> None:
    page.get_by_label("Name", exact=True).fill("Minsk Evening")
    page.get_by_label("Slug", exact=True).fill("minsk-evening")
    page.get_by_label("Sender address", exact=True).fill("evening@news.example.org")
    page.get_by_label("Postal address", exact=True).fill("Example News Ltd, 12 Sample Street")
    page.get_by_label("Language", exact=True).fill("be")
    page.get_by_label("Time zone", exact=True).fill("Europe/Minsk")
    page.get_by_label("Brand colour", exact=True).fill(COLOUR)
    page.get_by_label("Logo URL", exact=True).fill(LOGO)
    page.get_by_label("Masthead", exact=True).fill(MASTHEAD)
    page.get_by_label("About this newsletter").fill("A weekday briefing on Minsk.")
    page.get_by_label("Why you get this").fill("You asked for Minsk Evening at news.example.org.")
    page.get_by_label("Show it at the end of each issue").check()
    page.get_by_label("Text", exact=True).fill("Members keep our Minsk desk open.")
    page.get_by_label("Membership page", exact=True).fill("https://news.example.org/join")
    page.get_by_label("Default sections").fill("City hall\nStreets\nCulture")
    page.get_by_label("Count clicks").check()


def test_an_admin_creates_a_branded_newsletter_and_the_preview_uses_it(
    browser: Any, page: Any, live: Live
) -> None:
    serve_logo(page.context)
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Newsletters").click()
    page.get_by_role("heading", name="Newsletters").wait_for()
    page.get_by_role("link", name="New newsletter").click()

    # a refused value first: the form comes back with the reason and what was typed
    fill_new_newsletter(page)
    page.get_by_label("Logo URL", exact=True).fill("http://static.example.org/logo.svg")
    page.get_by_role("button", name="Create newsletter").click()
    assert "logo_url must be an absolute https URL" in page.locator("[role=alert]").inner_text()
    assert page.get_by_label("Masthead", exact=True).input_value() == MASTHEAD
    page.get_by_label("Logo URL", exact=True).fill(LOGO)
    page.get_by_role("button", name="Create newsletter").click()

    page.get_by_role("heading", name="Settings: Minsk Evening").wait_for()
    assert "Newsletter Minsk Evening created." in page.locator("[role=status]").inner_text()
    card = page.locator("section.deliverability")
    assert "_dmarc.news.example.org" in card.inner_text()
    assert "base URL is not https" in card.inner_text()  # the live server is plain http
    with live.session() as s:
        stored = s.exec(select(Newsletter).where(Newsletter.slug == "minsk-evening")).one()
    assert (stored.brand_color, stored.logo_url, stored.language) == (COLOUR, LOGO, "be")
    assert (stored.track_clicks, stored.track_opens) == (True, False)
    settings_path = f"/admin/newsletters/{stored.id}"
    database = live.settings.database_url.split(":")[0].split("+")[0]
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(settings_path)
        screenshot(page, f"newsletter-settings-{width}-{database}.png")
    page.set_viewport_size({"width": 1280, "height": 900})

    # a draft of it: the default sections are there, and the preview wears its branding
    page.goto("/admin/")
    page.get_by_label("Newsletter").select_option(label="Minsk Evening")
    page.get_by_label("Title").fill("Evening one")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("heading", name=re.compile("Evening one")).wait_for()
    for section in ("City hall", "Streets", "Culture"):
        page.locator("#outline").get_by_role("heading", name=section).wait_for()
    issue_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with live.session() as s:
        issue = s.get(Issue, issue_id)
        assert issue is not None and issue.newsletter_id == stored.id

    frame = page.frame_locator("#preview-frame")
    frame.locator(f'img[src="{LOGO}"]').wait_for()
    assert frame.locator(f'img[src="{LOGO}"]').evaluate("img => img.naturalWidth") > 0
    body = frame.locator("body").inner_text()
    assert MASTHEAD in body
    assert "You asked for Minsk Evening at news.example.org." in body
    assert "Members keep our Minsk desk open." in body
    assert "Belarus Weekly" not in body
    html = frame.locator("html")
    assert html.get_attribute("lang") == "be"
    assert COLOUR in frame.locator("body").inner_html().lower()

    # the email itself at both widths
    context = browser.new_context(base_url=live.url)
    serve_logo(context)
    email = context.new_page()
    try:
        email.context.add_cookies(page.context.cookies())
        for width in (1200, 375):
            email.set_viewport_size({"width": width, "height": 900})
            email.goto(f"/admin/issues/{issue_id}/preview.html")
            email.locator(f'img[src="{LOGO}"]').wait_for()
            screenshot(email, f"newsletter-email-{width}-{database}.png")
    finally:
        context.close()
