"""A newsroom's review in a real browser, three people and an admin: a writer drafts and is not
offered the send, an editor asks for review, a second editor comments, approves and sends, the
issue reaches its readers, and the audit page lists those steps with their actors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import update
from sqlmodel import select

from newsletter.access import editors
from newsletter.models import AuditEntry, Issue, IssueStatus, Newsletter
from tests.browser.conftest import ARTIFACTS, EDITOR, Live, screenshot
from tests.browser.test_editor_ui import KGB, add_article

PASSWORD = "a long enough passphrase"
WRITER, ADA, BEA = "wil@news.example.org", "ada@news.example.org", "bea@news.example.org"


@contextmanager
def person(browser: Any, live: Live, email: str, password: str = PASSWORD) -> Iterator[Any]:
    """A browser of one's own, signed in as ``email``."""
    context = browser.new_context(base_url=live.url, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/admin/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_write_review_approve_send_and_audit(browser: Any, live: Live) -> None:
    with live.session() as s:
        for email, role in ((WRITER, "writer"), (ADA, "editor"), (BEA, "editor")):
            editors.create_user(s, email=email, password=PASSWORD, role=role)
        s.execute(update(Newsletter).values(requires_review=True))
        s.commit()

    with person(browser, live, WRITER) as wil:  # drafts, and is not offered the send
        wil.get_by_label("Title").fill("Week 49: review first")
        wil.get_by_role("button", name="Create draft").click()
        wil.get_by_role("heading", name=re.compile("Week 49")).wait_for()
        issue_url = wil.url
        wil.get_by_label("New section").fill("Top stories")
        wil.get_by_role("button", name="Add section").click()
        wil.get_by_role("heading", name="Top stories").wait_for()
        add_article(wil, "KGB", KGB)
        assert wil.locator("#send-now").count() == 0
        assert wil.get_by_text("An editor schedules and sends this issue").is_visible()
        assert wil.get_by_role("link", name="Subscribers").count() == 0

    with person(browser, live, ADA) as ada:  # asks for review; Send now waits for approval
        ada.goto(issue_url)
        assert ada.locator("#send-now").is_disabled()
        ada.get_by_role("button", name="Ask for review").click()
        ada.get_by_text("Sent for review.").wait_for()
        assert ada.locator("#issue-status").inner_text() == "in review"

    with person(browser, live, BEA) as bea:  # comments, approves, sends
        bea.get_by_role("heading", name="Waiting for review").wait_for()
        for width in (375, 1200):  # the dashboard's list of what waits
            bea.set_viewport_size({"width": width, "height": 900})
            screenshot(bea, f"dashboard-waiting-{width}.png")
        bea.locator("#waiting").get_by_role("link", name=re.compile("Week 49")).click()
        bea.get_by_label("Comment").fill("Strong lead. Ship it.")
        bea.get_by_role("button", name="Add comment").click()
        bea.get_by_text("Strong lead. Ship it.").wait_for()
        for width in (1200, 375):  # the review card as a reviewer sees it
            bea.set_viewport_size({"width": width, "height": 900})
            screenshot(bea, f"review-in-review-{width}.png")
            bea.locator("#review").screenshot(path=str(ARTIFACTS / f"review-card-{width}.png"))
        bea.set_viewport_size({"width": 1200, "height": 900})
        bea.get_by_role("button", name="Approve").click()
        bea.get_by_text(f"Approved by {BEA}").wait_for()
        bea.get_by_role("link", name="Send now…").click()
        bea.get_by_role("button", name=re.compile("^Send to")).click()
        expect(bea.locator("#state-status")).to_have_text("sent", timeout=60_000)

    with live.session() as s:
        issue = s.exec(select(Issue).where(Issue.title == "Week 49: review first")).one()
        assert issue.status == IssueStatus.sent and issue.approved_by == BEA

    with person(browser, live, EDITOR[0], EDITOR[1]) as chief:  # the admin reads the trail
        chief.get_by_role("link", name="Audit").click()
        chief.get_by_label("Action").fill("issue.")
        chief.get_by_role("button", name="Filter").click()
        rows = chief.locator("tbody tr").all_inner_texts()
        screenshot(chief, "audit-trail-1200.png")
        steps = [
            (who, action)
            for row in rows
            for who in (WRITER, ADA, BEA)
            for action in (
                "issue.create",
                "issue.review-request",
                "issue.comment",
                "issue.approve",
                "issue.send",
            )
            if who in row and action in row
        ]
        for expected in (
            (WRITER, "issue.create"),
            (ADA, "issue.review-request"),
            (BEA, "issue.comment"),
            (BEA, "issue.approve"),
            (BEA, "issue.send"),
        ):
            assert expected in steps, (expected, rows)
    with live.session() as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "sign-in")).all()
