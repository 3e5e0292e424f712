"""A local-time send from the composer's send card to the sending view's waves: readers in three
zones, delivery at 08:00 in each, the first wave sent when its time comes (the due times' clock
is stepped by the test; SQLite only, the domain tests run both databases). Screenshots of the
card and the view at 375 and 1200 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from newsletter import seeding
from newsletter.models import Newsletter, Subscriber
from newsletter.sending import local_time
from tests.browser import conftest as browser_conftest
from tests.browser.conftest import ARTIFACTS, Live, sign_in

START = datetime(2026, 3, 28, 20, tzinfo=UTC)  # 23:00 Minsk, 21:00 Warsaw, 16:00 New York
MINSK = datetime(2026, 3, 29, 5, tzinfo=UTC)
ZONES = ("Europe/Minsk", "Europe/Warsaw", "America/New_York")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def own_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(browser_conftest, "REDIS_DB", 8)  # this suite's Celery broker
    yield


def shoot(page: Any, selector: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator(selector).screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_local_time_send_from_the_send_card_to_the_waves(
    page: Any, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.tasks import dispatch

    clock = Clock(START)
    monkeypatch.setattr(local_time, "clock", clock)
    with live.session() as s:
        issue = seeding.draft_sample_issue(s)
        issue_id = issue.id
        newsletter = s.get(Newsletter, issue.newsletter_id)
        assert newsletter is not None
        newsletter.time_zone = "Europe/Vilnius"  # +03 from that night on, like Minsk
        s.add(newsletter)
        people = s.exec(select(Subscriber).order_by(Subscriber.id)).all()
        for index, person in enumerate(people):  # a third in each zone
            person.time_zone = ZONES[index % 3]
            s.add(person)
        s.commit()

    page.set_default_timeout(60_000)  # the shared 2-core machine is slow at times
    sign_in(page)
    page.goto(f"/admin/issues/{issue_id}")
    page.locator("#local-when").select_option("local")
    page.locator("#local-at").fill("08:00")
    page.get_by_role("button", name="Set delivery").click()
    page.locator("#local-time-hint").get_by_text("Each reader gets it at 08:00").wait_for()
    shoot(page, "#send-panel", "local-time-card")

    page.locator("#send-now").click()
    assert "at 08:00 in each reader's time zone" in page.locator("#send-local-time").inner_text()
    page.get_by_role("button", name="Send to 42 subscribers").click()
    page.wait_for_url(re.compile(rf"/admin/issues/{issue_id}/sending$"))
    page.locator("#state-status").get_by_text("sending").wait_for()
    page.reload()
    rows = page.locator("#waves tbody tr")
    assert rows.count() == 3
    assert page.locator("#wave-0-waiting").inner_text() == "14"
    # each wave at 08:00 where its readers are, then in the newsletter's zone, then in UTC
    # each wave at 08:00 where its readers are, then in the newsletter's zone and in UTC
    waves = [
        [" ".join(page.locator(f"#wave-{i}-{part}").text_content().split()) for i in range(3)]  # type: ignore[union-attr]
        for part in ("local", "home")
    ]
    assert waves == [
        [
            "2026-03-29 08:00 Europe/Minsk",
            "2026-03-29 08:00 Europe/Warsaw",
            "2026-03-29 08:00 America/New_York",
        ],
        [
            "08:00 Europe/Vilnius · 05:00 UTC",
            "09:00 Europe/Vilnius · 06:00 UTC",
            "15:00 Europe/Vilnius · 12:00 UTC",
        ],
    ]
    assert live.sink.messages == []  # nobody's 08:00 yet

    clock.now = MINSK
    dispatch.delay(issue_id)  # the beat's tick, in the test
    page.locator("#wave-0-sent").get_by_text("14").wait_for()
    page.locator("#wave-0-state").get_by_text("done").wait_for()  # live, before any reload
    page.reload()
    assert page.locator("#wave-0-state").inner_text() == "done"
    assert page.locator("#wave-1-state").inner_text() == "waiting"
    assert " h " in page.locator("#state-eta").inner_text()  # New York's wave is 7 h away
    shoot(page, "main", "local-time-sending")
    assert len(live.sink.messages) == 14


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_reader_sets_their_time_zone_in_the_preference_centre(page: Any, live: Live) -> None:
    from newsletter.audience.links import Purpose, make_token

    with live.session() as s:
        person = s.exec(select(Subscriber).order_by(Subscriber.id)).first()
        assert person is not None and person.id is not None
        token = make_token(live.settings.secret_key, Purpose.preferences, person.id, None)
    page.goto(f"/preferences/{token}")
    page.locator("#time-zone").select_option("Asia/Tbilisi")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Your preferences are saved.").wait_for()
    assert page.locator("#time-zone").input_value() == "Asia/Tbilisi"
    with live.session() as s:
        saved = s.get(Subscriber, person.id)
        assert saved is not None and saved.time_zone == "Asia/Tbilisi"
    shoot(page, "main", "preferences-time-zone")
