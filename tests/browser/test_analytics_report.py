"""The issue report and the heat view in a real browser, on the seeded issue: its compiled email
with the story links numbered as tracking numbers them, a ledger, and people's and machines'
events. The figures on the page are checked; screenshots at 375 and 1200 px of the report, the
heat view and the newsletter's analytics go to ``test-artifacts/analytics/``. One database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from newsletter import seeding
from newsletter.content import issues, rendering
from newsletter.models import (
    Delivery,
    EngagementEvent,
    IssueLink,
    IssueStatus,
    RenderedIssue,
    Subscription,
)
from tests.browser.conftest import Live, screenshot, sign_in

HREF = re.compile(r'href="(https?://[^"]+)"')
STARTED = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)


def tracked_issue(s: Session, base: str) -> tuple[int, int]:
    """The seeded issue sent (frozen with numbered story links) with events; (issue, newsletter)."""
    issue = seeding.draft_sample_issue(s)
    assert issue.id is not None
    outline = issues.load_outline(s, issue.id)
    places = {
        it.article.url: (it.article.id, sec.section.title, place)
        for place, (sec, it) in enumerate(
            ((sec, it) for sec in outline.sections for it in sec.items), start=1
        )
    }
    compiled = rendering.compile_issue(outline)
    links: list[IssueLink] = []

    def number(match: re.Match[str]) -> str:
        url = match.group(1)
        if url not in places:
            return match.group(0)
        article_id, section, place = places[url]
        links.append(
            IssueLink(
                issue_id=issue.id, n=len(links) + 1, url=url, kind="headline",  # type: ignore[arg-type]
                article_id=article_id, section=section, position=place,
            )
        )  # fmt: skip
        return f'href="{base}/r/{issue.id}/{len(links)}/{{{{ token }}}}"'

    html = HREF.sub(number, compiled.html)
    s.add(RenderedIssue(issue_id=issue.id, subject=compiled.subject, html=html, text=compiled.text))
    issue.status, issue.send_started_at = IssueStatus.sent, STARTED
    s.add(issue)
    s.add_all(links)
    s.flush()
    readers = s.exec(
        select(Subscription.subscriber_id).where(Subscription.newsletter_id == issue.newsletter_id)
    ).all()
    for i, reader in enumerate(readers):
        at = STARTED + timedelta(seconds=i)
        s.add(Delivery(issue_id=issue.id, subscriber_id=reader, status="sent", sent_at=at))
        _events(s, issue.id, reader, i, links)
    s.commit()
    return issue.id, issue.newsletter_id


def _events(s: Session, issue_id: int, reader: int, i: int, links: list[IssueLink]) -> None:
    def event(kind: str, verdict: str, link: IssueLink | None = None, rule: str = "") -> None:
        s.add(
            EngagementEvent(
                issue_id=issue_id, subscriber_id=reader, link_id=link.id if link else None,
                kind=kind, verdict=verdict, rule=rule, at=STARTED + timedelta(hours=1),
            )
        )  # fmt: skip

    if i % 3 == 0:
        event("open", "machine", rule="apple_mpp")
    else:
        event("open", "human")
    # the lead story draws most, later stories fewer: the story at place p is clicked by one
    # reader in p + 1, on its first link (the headline or the picture) or, for some, its last
    firsts: dict[int, IssueLink] = {}
    lasts: dict[int, IssueLink] = {}
    for link in links:
        firsts.setdefault(link.position or 0, link)
        lasts[link.position or 0] = link
    for place, link in firsts.items():
        if i % (place + 1) == 0:
            event("click", "human", link if i % 3 else lasts[place])
    if i == 0:
        for link in links:
            event("click", "machine", link, rule="scanner_burst")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_issue_report_and_its_heat_view(page: Any, live: Live) -> None:
    with live.session() as s:
        issue_id, newsletter_id = tracked_issue(s, live.url)
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}/sending")
    page.get_by_role("link", name=re.compile("the report")).click()
    page.get_by_role("heading", name="Articles").wait_for()
    clickers = int(page.locator("#fig-clickers").inner_text().replace(",", ""))
    assert clickers > 0
    assert page.locator("#fig-machine-clicks").inner_text() != "0"
    assert page.locator("#article-table tbody tr").count() >= 3
    frame = page.frame_locator("iframe.heat-frame")
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("iframe.heat-frame").scroll_into_view_if_needed()
        frame.locator("span[data-link='1']").wait_for()
        page.wait_for_timeout(300)  # the frame's images and layout after the resize
        path = screenshot(page, f"analytics/issue-report-{width}.png")
        assert path.stat().st_size > 10_000
    page.goto(f"/admin/issues/{issue_id}/report/heat.html")
    assert page.locator("span[data-link]").count() >= 3
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"analytics/heat-view-{width}.png")
    page.goto(f"/admin/newsletters/{newsletter_id}/analytics")
    page.get_by_role("heading", name=re.compile("click rate by place")).wait_for()
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"analytics/newsletter-analytics-{width}.png")
    # nothing wider than the phone's screen but the tables' own scrolling boxes
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375, overflow
