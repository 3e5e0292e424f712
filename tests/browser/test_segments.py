"""A segment built in the editor UI by attribute, its live count, and an issue sent to it: the
ledger holds exactly that segment's active readers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from newsletter.models import Delivery, Issue, IssueStatus, Newsletter, Subscriber, Subscription
from tests.browser import conftest as browser_conftest
from tests.browser.conftest import Live, screenshot, sign_in
from tests.browser.test_editor_ui import ENVOY, KGB, add_article


@pytest.fixture(autouse=True)
def own_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(browser_conftest, "REDIS_DB", 2)  # this suite's Celery broker
    yield


def test_segment_by_attribute_live_count_and_send(page: Any, live: Live) -> None:
    with live.session() as s:  # a third of the seed's readers live in Minsk
        people = s.exec(select(Subscriber).order_by(Subscriber.id)).all()
        for n, person in enumerate(people):
            person.attributes = {"city": "Minsk" if n % 3 == 0 else "Brest"}
            s.add(person)
        s.commit()
        minsk_active = {
            sub.subscriber_id
            for sub in s.exec(select(Subscription).where(Subscription.status == "active"))
            if sub.subscriber_id in {p.id for p in people if p.attributes["city"] == "Minsk"}
        }
    assert 5 < len(minsk_active) < 40

    sign_in(page)
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name").fill("Minsk readers")
    page.get_by_label("Subscribers of").select_option(index=1)
    page.locator("#kind-1").select_option("attribute")
    page.locator("#key-1").fill("city")
    page.locator("#op-1").select_option("equals")
    page.locator("#value-1").fill("Minsk")
    live_count = page.locator("#live-count")
    live_count.get_by_text(f"{len(minsk_active)} subscribers now").wait_for()
    # an engagement rule names its newsletter: the names are offered, a wrong one is refused
    page.locator("#kind-2").select_option("engagement")
    assert page.locator("#key-2").get_attribute("list") == "newsletter-names"
    page.locator("#op-2").select_option("not_opened")
    page.locator("#value-2").fill("3")  # nobody opened anything yet: the same readers
    page.locator("#key-2").fill("Nowhere Daily")
    live_count.get_by_text("no newsletter 'Nowhere Daily'; choose one of:").wait_for()
    with live.session() as s:
        name = s.exec(select(Newsletter).order_by(Newsletter.id)).first().name  # type: ignore[union-attr]
    assert page.locator(f'#newsletter-names option[value="{name}"]').count() == 1
    page.locator("#key-2").fill(name)
    live_count.get_by_text(f"{len(minsk_active)} subscribers now").wait_for()
    page.set_viewport_size({"width": 1200, "height": 900})
    shot = screenshot(page, "segment-editor-1200.png")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "segment-editor-375.png")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert shot.exists()

    # without the script, the Count button answers the same
    page.locator("#value-1").fill("Brest")
    page.get_by_role("button", name="Count").click()
    page.wait_for_load_state()
    assert page.locator("#live-count strong").inner_text() != str(len(minsk_active))
    page.locator("#value-1").fill("Minsk")
    page.get_by_role("button", name="Save segment").click()
    page.get_by_text("Segment 'Minsk readers' saved.").wait_for()
    seg_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.goto("/admin/segments")
    page.get_by_role("link", name="Minsk readers").wait_for()
    page.set_viewport_size({"width": 1200, "height": 900})
    screenshot(page, "segments-list-1200.png")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "segments-list-375.png")
    page.set_viewport_size({"width": 1280, "height": 900})

    # a draft to that segment
    page.goto("/admin/")
    page.get_by_label("Title").fill("Minsk only")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("heading", name=re.compile("Minsk only")).wait_for()
    issue_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.get_by_label("New section").fill("City")
    page.get_by_role("button", name="Add section").click()
    page.get_by_role("heading", name="City").wait_for()
    add_article(page, "KGB", KGB)
    add_article(page, "Kellogg", ENVOY)
    page.get_by_label("Send to", exact=True).select_option(str(seg_id))
    # the send card sits in the composer's sticky column; the keyboard reaches it as a user does
    page.get_by_role("button", name="Set audience").press("Enter")
    page.get_by_text(f"Audience: {len(minsk_active)} recipients.").wait_for()
    page.locator("#send-now").click()
    assert "Minsk readers" in page.locator("#recipient-count").inner_text()
    screenshot(page, "segment-send-confirm-1200.png")
    page.get_by_role("button", name=f"Send to {len(minsk_active)} subscribers").click()
    page.wait_for_url(re.compile(rf"/admin/issues/{issue_id}/sending$"))

    deadline = time.monotonic() + 60
    while True:
        with live.session() as s:
            issue = s.get(Issue, issue_id)
            assert issue is not None
            if issue.status == IssueStatus.sent:
                ledger = s.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
                break
        assert time.monotonic() < deadline, f"issue {issue_id} is still {issue.status}"
        time.sleep(0.2)
    assert {d.subscriber_id for d in ledger} == minsk_active
    assert {d.status for d in ledger} == {"sent"}
