"""A subject test set in the composer's send card, sent, watched in the sending view and decided
early with "Pick B now": the samples get one subject each, the rest B (SQLite only; the domain
tests run both databases). Screenshots of the card and the view at 375 and 1200 px."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest

from newsletter import seeding
from newsletter.models import Newsletter
from tests.browser import conftest as browser_conftest
from tests.browser.conftest import ARTIFACTS, Live, sign_in

A, B = "Minsk talks: what the KGB chief said", "52 prisoners freed, and what comes next"


@pytest.fixture(autouse=True)
def own_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(browser_conftest, "REDIS_DB", 14)  # this suite's Celery broker
    yield


def shoot(page: Any, selector: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator(selector).screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_subject_test_from_the_send_card_to_the_early_pick(page: Any, live: Live) -> None:
    with live.session() as s:
        issue = seeding.draft_sample_issue(s)
        newsletter = s.get(Newsletter, issue.newsletter_id)
        assert newsletter is not None
        newsletter.track_clicks = True
        s.add(newsletter)
        s.commit()
        issue_id = issue.id

    page.set_default_timeout(60_000)  # the shared 2-core machine is slow at times
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    page.locator("#subject-1").fill(A)
    page.locator("#subject-2").fill(B)
    page.locator("#subject-sample").fill("20")
    page.locator("#subject-wait").fill("4h")
    page.get_by_role("button", name="Set subject test").click()
    hint = page.locator("#subject-test-hint")
    hint.get_by_text("Set: 2 subjects, 20% of the list each").wait_for()
    assert page.locator("#subject-1").input_value() == A
    shoot(page, "#send-panel", "subject-test-card")

    # a local-time delivery is refused beside a subject test, with the reason (README)
    page.locator("#local-when").select_option("local")
    page.get_by_role("button", name="Set delivery").click()
    refusal = page.locator("[role=alert]").inner_text()
    assert "cannot be combined with a local-time delivery" in refusal
    assert page.locator("#local-when").input_value() == "now"
    assert "Not with a subject test" in page.locator("#local-time-hint").inner_text()
    shoot(page, "main", "subject-test-local-time-refused")

    page.locator("#send-now").click()
    assert (
        "winner by unique human clickers after 4h"
        in page.locator("#send-subject-test").inner_text()
    )
    page.get_by_role("button", name="Send to 42 subscribers").click()
    page.wait_for_url(re.compile(rf"/admin/issues/{issue_id}/sending$"))
    headline = page.locator("#subject-test-headline")
    headline.get_by_text(re.compile("testing subjects, winner at")).wait_for(timeout=60_000)
    page.locator("#count-sent").get_by_text("16").wait_for(timeout=60_000)  # 8 + 8 of 42
    assert page.locator("#count-pending").inner_text() == "26"
    # the 26 wait for the pick: not in the ETA, said under it
    assert page.locator("#state-held").inner_text() == "26 wait for the subject test's winner"
    shoot(page, "main", "subject-test-sending")

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pick B now").click()
    page.locator("#variant-2.winner").wait_for()
    page.locator("#state-status").get_by_text("sent").wait_for(timeout=90_000)
    assert "B picked by" in page.locator("#subject-test-headline").inner_text()
    shoot(page, "main", "subject-test-picked")
    assert page.locator("#state-held").inner_text() == ""

    page.goto(f"/admin/issues/{issue_id}/report")  # each subject's readers, side by side
    rows = page.locator("#variant-table tbody tr")
    assert rows.count() == 2 and "B: " + B in rows.nth(1).inner_text()
    shoot(page, "#variants", "subject-test-report")

    got: dict[str, list[str]] = {}
    for m in live.sink.messages:
        parsed = message_from_bytes(m.data, policy=default_policy)
        got.setdefault(m.rcpt_tos[0], []).append(str(parsed["Subject"]))
    assert len(got) == 42 and all(len(s) == 1 for s in got.values())  # nobody twice
    assert Counter(s[0] for s in got.values()) == {A: 8, B: 34}
