"""The dashboard's list health and the subscriber list in a real browser: the SVG chart with its
figures, the backlog, a capped count ("100+" with a small cap), a whole-address search and the
keyset pages; screenshots at 375 and 1200 px."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from newsletter.audience import search
from newsletter.models import Newsletter, Subscriber, SubscriberEvent, Subscription
from tests.browser.conftest import ARTIFACTS, Live, screenshot, sign_in


def _seed(live: Live, readers: int = 130) -> list[str]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    with live.session() as s:
        newsletters = list(s.exec(select(Newsletter)).all())
        people = [Subscriber(email=f"reader{i}.Scale@Example.org") for i in range(readers)]
        s.add_all(people)
        s.flush()
        for i, person in enumerate(people):
            assert person.id is not None
            nl = newsletters[i % len(newsletters)]
            status = "pending" if i % 9 == 0 else "active"
            sent = now - timedelta(days=rng.randint(0, 20))
            s.add(
                Subscription(
                    subscriber_id=person.id,
                    newsletter_id=nl.id or 0,
                    status=status,
                    confirmation_sent_at=sent,
                )
            )
            for kind, weight in (("signup", 1.0), ("confirm", 0.8), ("unsubscribe", 0.15),
                                 ("bounce", 0.05)):  # fmt: skip
                if rng.random() < weight:
                    at = now - timedelta(days=rng.randint(0, 83), hours=rng.randint(0, 23))
                    s.add(
                        SubscriberEvent(
                            subscriber_id=person.id, newsletter_id=nl.id, kind=kind, at=at
                        )
                    )
        s.commit()
        return [p.email for p in people]


def test_list_health_and_the_capped_list(
    page: Any, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    emails = _seed(live)
    monkeypatch.setattr(search, "COUNT_CAP", 100)
    sign_in(page)
    health = page.locator("#health")
    health.get_by_role("heading", name="List health").wait_for()
    chart = health.locator("svg.chart").first
    assert chart.get_attribute("role") == "img"
    assert chart.locator("polyline").count() == 4
    assert "waiting for confirmation" in health.inner_text()
    health.get_by_text("Figures per week").first.click()  # the table behind the chart
    assert health.locator("table.figures").first.is_visible()
    for width in (375, 1200):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"dashboard-health-{width}.png")
        health.screenshot(path=str(ARTIFACTS / f"health-{width}.png"))

    page.get_by_role("link", name="Subscribers").first.click()
    status = page.get_by_role("status")
    assert "100+ subscribers" in status.inner_text()
    for width in (375, 1200):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"subscribers-capped-{width}.png")
        page.screenshot(path=str(ARTIFACTS / f"subscribers-top-{width}.png"))  # what one sees
    page.get_by_role("link", name="Next").click()
    assert "showing 51–100" in page.get_by_role("status").inner_text()  # noqa: RUF001
    page.get_by_role("link", name="Previous").click()
    assert "showing 1–50" in page.get_by_role("status").inner_text()  # noqa: RUF001

    page.get_by_label("Email address, or part of one").fill(emails[42].upper())
    page.get_by_role("button", name="Filter").click()
    assert "1 subscriber with this address" in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name=emails[42]).count() == 1
    page.set_viewport_size({"width": 375, "height": 900})
    screenshot(page, "subscribers-address-375.png")
