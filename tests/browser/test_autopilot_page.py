"""An editor sets the seeded newsletter's autopilot up in the browser: a schedule in its zone,
the section mapping, a feed and a library query as sources; a rule that cannot be read comes
back with the reason. Screenshots of the page at 375 and 1200 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from newsletter.autopilot import rules, sources
from newsletter.models import AutopilotRun, Newsletter
from tests.browser.conftest import Live, screenshot, sign_in


def test_an_editor_sets_up_the_autopilot(page: Any, live: Live) -> None:
    with live.session() as s:
        weekly = s.exec(select(Newsletter).where(Newsletter.slug == "belarus-weekly")).one()
    sign_in(page)
    page.goto(f"/admin/newsletters/{weekly.id}")
    page.get_by_role(
        "link", name="Autopilot: weekly issues drafted from the newsroom's feeds"
    ).click()
    page.get_by_role("heading", name="Autopilot: Belarus Weekly").wait_for()

    page.get_by_label("Days and time").fill("every full moon")
    page.get_by_role("button", name="Save autopilot").click()
    assert "cannot read the schedule" in page.locator("[role=alert]").inner_text()
    assert page.get_by_label("Days and time").input_value() == "every full moon"

    page.get_by_label("Draft each issue by itself before its run").check()
    page.get_by_label("Days and time").fill("mon 08:00")
    page.get_by_label("Tag or category = section").fill(
        "politics = Politics\nsanctions = Sanctions and economy\nculture = Culture"
    )
    page.get_by_label("At most per section").fill("4")
    page.get_by_role("button", name="Save autopilot").click()
    assert "Autopilot saved." in page.locator("[role=status]").inner_text()
    assert page.locator("#next-runs tbody tr").count() == 3
    assert "08:00" in page.locator("#next-runs tbody tr").first.inner_text()

    seeded = page.locator("#sources tbody tr").count()  # the seeds' library queries
    page.get_by_label("Feed URL (RSS, Atom or JSON Feed)").fill("https://news.example.org/feed.xml")
    page.get_by_role("button", name="Add source").click()
    page.get_by_label("Tag", exact=True).fill("sanctions")
    page.get_by_role("button", name="Add source").click()
    assert page.locator("#sources tbody tr").count() == seeded + 2

    every = page.locator("#sources tbody tr").nth(seeded).get_by_label("Fetch every (minutes)")
    every.fill("2")
    page.locator("#sources tbody tr").nth(seeded).get_by_role("button", name="Set").click()
    assert "between 5 and 1440 minutes" in page.locator("[role=alert]").inner_text()
    every = page.locator("#sources tbody tr").nth(seeded).get_by_label("Fetch every (minutes)")
    every.fill("60")
    page.locator("#sources tbody tr").nth(seeded).get_by_role("button", name="Set").click()
    assert "fetched every 60 minutes" in page.locator("[role=status]").inner_text()

    with live.session() as s:
        pilot = rules.get_autopilot(s, weekly.id)  # type: ignore[arg-type]
        assert pilot.enabled and pilot.rule == "mon 08:00" and pilot.per_section == 4
        added = sources.list_sources(s, weekly.id)[seeded:]  # type: ignore[arg-type]
        assert [(src.kind, src.url, src.tag, src.fetch_minutes) for src in added] == [
            ("feed", "https://news.example.org/feed.xml", "", 60),
            ("query", "", "sanctions", 30),
        ]
        _runs_the_beat_missed(s, weekly.id)  # type: ignore[arg-type]

    database = live.settings.database_url.split(":")[0].split("+")[0]
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/admin/newsletters/{weekly.id}/autopilot")
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"the page scrolls sideways at {width} px"
        screenshot(page, f"autopilot-{width}-{database}.png")
    runs = page.locator("#runs tbody").inner_text()
    assert "missed: a later run" in runs and "caught up: 3 h after its run" in runs


def _runs_the_beat_missed(session: Any, newsletter_id: int) -> None:
    """Two weeks the beat was down: the older run missed, the latest caught up late."""
    latest = datetime(2026, 11, 30, 7, tzinfo=UTC)
    missed = latest - timedelta(days=7)
    reason = f"a later run ({latest:%Y-%m-%d %H:%M} UTC) was missed too: only the latest is drafted"
    late = "3 h after its run (the beat was not running at its draft time); not scheduled by itself"
    session.add(
        AutopilotRun(
            newsletter_id=newsletter_id, run_at=missed, outcome="missed", detail={"missed": reason}
        )
    )
    session.add(
        AutopilotRun(
            newsletter_id=newsletter_id, run_at=latest, outcome="skipped", detail={"late": late}
        )
    )
    session.commit()
