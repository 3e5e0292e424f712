"""The audience desk in a real browser: an editor finds a reader through the list's search, opens
their page, sees their consent and history, changes an attribute (a typo first: refused, nothing
lost), unsubscribes them from one of their two newsletters, downloads their data, erases them
with the typed confirmation, and finds the erasure on the audit page. Screenshots of the page at
375 and 1200 px."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlmodel import select

from newsletter.audience import lifecycle
from newsletter.audience.links import ConfirmData
from newsletter.models import Newsletter, Subscription, utcnow
from newsletter.newsletters import create_newsletter
from tests.browser.conftest import ARTIFACTS, Live, screenshot, sign_in

READER = "olga.reader@example.org"
SIGNUP_IP = "203.0.113.77"


def reader_who_signed_up(live: Live) -> tuple[int, Newsletter, Newsletter]:
    """A reader who signed up through the public form for two newsletters and confirmed."""
    with live.session() as s:
        first = s.exec(select(Newsletter).where(Newsletter.slug == "belarus-weekly")).one()
        create_newsletter(
            s,
            {
                "slug": "culture-digest",
                "name": "Culture Digest",
                "from_name": "Culture Digest",
                "from_email": "culture@news.example.org",
                "postal_address": "Example News Ltd, 12 Sample Street",
            },
        )
        evening = create_newsletter(
            s,
            {
                "slug": "minsk-evening",
                "name": "Minsk Evening",
                "from_name": "Minsk Evening",
                "from_email": "evening@news.example.org",
                "postal_address": "Example News Ltd, 12 Sample Street",
            },
        )
        assert evening.id is not None
        version = live.settings.consent_text_version
        signed = lifecycle.signup(
            s,
            email=READER,
            name="Olga Reader",
            newsletters=[first.slug, evening.slug],
            ip=SIGNUP_IP,
            user_agent="Mozilla/5.0",
            source="form",
            consent_text_version=version,
        )
        lifecycle.confirm(
            s,
            data=ConfirmData(
                signed.subscriber_id, (first.id or 0, evening.id), "form", version, utcnow()
            ),
            ip=SIGNUP_IP,
            user_agent="Mozilla/5.0",
        )
        s.commit()
        return signed.subscriber_id, first, evening


def test_an_editor_handles_one_readers_request_from_the_subscriber_page(
    page: Any, live: Live, tmp_path: Path
) -> None:
    sid, weekly, evening = reader_who_signed_up(live)
    sign_in(page)
    page.goto("/admin/subscribers")
    page.get_by_label("Email address, or part of one").fill("olga.reader")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=READER).click()
    page.get_by_role("heading", name=READER).wait_for()
    assert page.url.endswith(f"/admin/subscribers/{sid}")

    # consent and history
    subscriptions = page.locator("#subscriptions table")
    assert subscriptions.get_by_text(f"IP {SIGNUP_IP}").count() == 2
    assert "source: form" in subscriptions.inner_text()
    history = page.locator("#history").inner_text()
    assert "signed up" in history and "confirmed" in history and "the subscriber" in history

    # an attribute: a typo is refused with the reason and the text kept, then it is saved
    box = page.get_by_label("Attributes (JSON)")
    box.fill('{"city": "Minsk",}')
    page.get_by_role("button", name="Save attributes").click()
    page.get_by_role("alert").get_by_text("not valid JSON").wait_for()
    assert page.get_by_label("Attributes (JSON)").input_value() == '{"city": "Minsk",}'
    page.get_by_label("Attributes (JSON)").fill('{"city": "Minsk", "donor": true}')
    page.get_by_role("button", name="Save attributes").click()
    page.get_by_text("Attributes saved.").wait_for()
    assert json.loads(page.get_by_label("Attributes (JSON)").input_value()) == {
        "city": "Minsk",
        "donor": True,
    }

    # unsubscribe from one newsletter of two
    page.get_by_role("button", name=f"Unsubscribe from {evening.name}").click()
    page.get_by_text("Unsubscribed.", exact=True).wait_for()
    with live.session() as s:
        found = s.exec(select(Subscription).where(Subscription.subscriber_id == sid)).all()
        statuses = {sub.newsletter_id: sub.status for sub in found}
    assert statuses == {weekly.id: "active", evening.id: "unsubscribed"}
    assert page.get_by_role("button", name=f"Unsubscribe from {weekly.name}").count() == 1
    assert page.get_by_role("button", name=f"Unsubscribe from {evening.name}").count() == 0

    # another newsletter: by default a double opt-in email, through the worker to the sink
    page.get_by_label("Newsletter", exact=True).select_option("culture-digest")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    page.get_by_text("Confirmation email sent").wait_for()
    deadline = time.monotonic() + 20
    while not [m for m in live.sink.messages if READER in m.rcpt_tos]:
        assert time.monotonic() < deadline, "no confirmation email reached the sink"
        time.sleep(0.1)
    (mail,) = [m.parse() for m in live.sink.messages if READER in m.rcpt_tos]
    assert mail["Subject"] == "Confirm your subscription to Culture Digest"
    culture = page.locator("#subscriptions tr", has_text="Culture Digest")
    assert "pending" in culture.inner_text()
    assert culture.get_by_role("button", name="Resend the confirmation for Culture Digest").count()

    # their data, downloaded
    with page.expect_download() as download:
        page.get_by_role("link", name="Export their data (JSON)").click()
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["subscriber"]["email"] == READER
    assert data["subscriber"]["attributes"] == {"city": "Minsk", "donor": True}
    assert {e["kind"] for e in data["events"]} >= {"signup", "confirm", "unsubscribe", "edit"}

    page.reload()
    assert "data exported (GDPR)" in page.locator("#history").inner_text()
    for width in (375, 1200):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"subscriber-page-{width}.png")
        for part in ("subscriptions", "history"):  # readable pieces of the long page
            shot = ARTIFACTS / f"subscriber-{part}-{width}.png"
            page.locator(f"#{part}").screenshot(path=str(shot))
    page.set_viewport_size({"width": 1280, "height": 900})

    # erase: a wrong address is refused, the right one erases
    page.get_by_label("Type their address to erase them").fill("someone@example.org")
    page.get_by_role("button", name=f"Erase {READER}").click()
    page.get_by_role("alert").get_by_text("type the subscriber's email address").wait_for()
    page.get_by_label("Type their address to erase them").fill(READER)
    page.get_by_role("button", name=f"Erase {READER}").click()
    page.get_by_role("heading", name=f"Erased subscriber {sid}").wait_for()
    assert READER not in page.content()

    # the audit page has the erasure, by this editor, of this subscriber
    page.goto("/admin/audit?action=subscriber.erase")
    row = page.locator("tbody tr").first
    text = row.inner_text()
    assert "subscriber.erase" in text and f"subscriber {sid}" in text
    assert "desk@news.example.org" in text
