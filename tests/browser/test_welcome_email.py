"""An editor composes the welcome email from the newsletter's settings, publishes it and turns it
on; a reader confirms in the browser and the welcome reaches the SMTP sink through the Celery
worker, once; the composer then counts it. Screenshots of the settings card and the standing
composer at 375 and 1200 px."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from newsletter.audience.links import make_confirm_token
from newsletter.models import Issue, Newsletter, Subscriber, Subscription, SubscriptionStatus
from tests.browser import conftest
from tests.browser.conftest import Live, screenshot, sign_in
from tests.integration.public_support import parse, text_of

INTRO = "Thank you for joining Belarus Weekly. Every Sunday: the week in five stories."


@pytest.fixture(autouse=True)
def own_broker(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """This run's own Redis database (NEWSLETTER_TEST_REDIS_URL) as the worker's broker."""
    monkeypatch.setattr(conftest, "REDIS_DB", int(urlsplit(redis_url).path.strip("/") or 0))


def shots(page: Any, path: str, name: str, database: str, part: str, wait: str = "") -> None:
    """The page at both widths, and the changed part of it on its own (readable at 375 px)."""
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        if wait:  # the preview frame's email, loaded after the page
            page.frame_locator("#preview-frame").get_by_text(wait).first.wait_for()
        screenshot(page, f"{name}-{width}-{database}.png")
        changed = page.locator(part)
        changed.scroll_into_view_if_needed()
        changed.screenshot(path=str(conftest.ARTIFACTS / f"{name}-part-{width}-{database}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


# the ledger's behaviour is tested on both databases in tests/integration/test_welcome.py; the
# browser walk runs once, on the production database
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_compose_publish_turn_on_and_a_confirming_reader_gets_one_welcome(
    page: Any, live: Live
) -> None:
    database = live.settings.database_url.split(":")[0].split("+")[0]
    with live.session() as s:
        nl = s.exec(select(Newsletter).where(Newsletter.slug == "belarus-weekly")).one()
    settings_path = f"/admin/newsletters/{nl.id}"
    sign_in(page)
    page.goto(settings_path)
    page.get_by_role("button", name="Compose welcome email").click()

    # the composer: a standing issue, with no send-to-list button
    page.get_by_text("standing welcome email").wait_for()
    assert page.locator("#send-now").count() == 0
    assert page.get_by_role("button", name="Schedule").count() == 0
    page.get_by_label("Intro (Markdown)").fill(INTRO)
    page.get_by_role("button", name="Save details").click()
    page.get_by_role("button", name="Publish for new subscribers").click()
    page.get_by_text("Published: new subscribers get this text.").wait_for()
    composer_path = urlsplit(page.url).path
    issue_id = int(composer_path.rstrip("/").rsplit("/", 1)[1])

    # the settings card: on, with the latest issue
    page.goto(settings_path)
    page.get_by_label("Send it to each new subscriber who confirms").check()
    page.get_by_label("Send the latest issue too").check()
    page.get_by_role("button", name="Save welcome settings").click()
    page.get_by_text("Welcome email settings saved.").wait_for()
    shots(page, settings_path, "welcome-settings", database, "#welcome")

    # a reader confirms in the browser: the welcome arrives once (no issue was sent yet)
    with live.session() as s:
        reader = Subscriber(email="new-reader@example.org", name="Maryia Kalesnikava")
        s.add(reader)
        s.flush()
        s.add(Subscription(subscriber_id=reader.id, newsletter_id=nl.id))  # type: ignore[arg-type]
        s.commit()
        reader_id = reader.id
    token = make_confirm_token(
        live.settings.secret_key,
        subscriber_id=reader_id,  # type: ignore[arg-type]
        newsletter_ids=[nl.id],  # type: ignore[list-item]
        source="form",
        consent_text_version=live.settings.consent_text_version,
    )
    for _ in range(2):  # a second click changes nothing
        page.goto(f"/confirm/{token}")
        button = page.get_by_role("button", name="Yes, subscribe me")
        if button.count():
            button.first.click()
    deadline = time.monotonic() + 30
    while not [m for m in live.sink.messages if m.rcpt_tos == ["new-reader@example.org"]]:
        assert time.monotonic() < deadline, "no welcome arrived"
        time.sleep(0.1)
    time.sleep(1.0)
    got = [m for m in live.sink.messages if m.rcpt_tos == ["new-reader@example.org"]]
    assert len(got) == 1
    message = parse(got[0].data)
    assert str(message["Subject"]) == "Welcome to Belarus Weekly"
    words = " ".join(text_of(message).split())  # the text part wraps at 76 columns
    assert "Dear Maryia," in words and INTRO in words
    with live.session() as s:
        sub = s.exec(select(Subscription).where(Subscription.subscriber_id == reader_id)).one()
        assert sub.status == SubscriptionStatus.active
        assert s.get(Issue, issue_id).status == "draft"  # type: ignore[union-attr]

    page.goto(composer_path)
    assert "1 welcome sent" in page.locator("#welcomes-sent").inner_text()
    shots(page, composer_path, "welcome-composer", database, "#send-panel", wait=INTRO)
    page.goto(composer_path)
    preview = page.locator("#preview")
    page.frame_locator("#preview-frame").get_by_text(INTRO).first.wait_for()
    preview.scroll_into_view_if_needed()
    preview.screenshot(path=str(conftest.ARTIFACTS / f"welcome-email-preview-{database}.png"))
