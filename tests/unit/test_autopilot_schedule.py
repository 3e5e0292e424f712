"""The autopilot's recurring schedule on a frozen clock: wall-clock times in the newsletter's
zone, across daylight-saving changes (Europe/Warsaw, America/New_York; Europe/Minsk has none)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from newsletter.autopilot import schedule
from newsletter.autopilot.runs import due_run
from newsletter.exceptions import InvalidInput
from newsletter.models import Autopilot, Newsletter


def runs(rule: str, zone: str, after: datetime, count: int = 3) -> list[datetime]:
    return list(islice(schedule.parse(rule, zone).runs_after(after), count))


def local(moment: datetime, zone: str) -> str:
    return moment.astimezone(schedule.zone_of(zone)).strftime("%Y-%m-%d %H:%M %Z")


def test_mondays_at_eight_in_minsk_is_five_utc_every_week() -> None:
    found = runs("Mondays 08:00", "Europe/Minsk", datetime(2026, 11, 25, tzinfo=UTC))
    assert found == [
        datetime(2026, 11, 30, 5, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 5, 0, tzinfo=UTC),
        datetime(2026, 12, 14, 5, 0, tzinfo=UTC),
    ]


def test_new_york_keeps_eight_local_across_the_autumn_change() -> None:
    # the clocks go back on Sunday 1 November 2026: 08:00 EDT is 12:00 UTC, 08:00 EST 13:00
    found = runs("mon 08:00", "America/New_York", datetime(2026, 10, 20, tzinfo=UTC))
    assert found == [
        datetime(2026, 10, 26, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        datetime(2026, 11, 9, 13, 0, tzinfo=UTC),
    ]
    assert {local(r, "America/New_York")[11:16] for r in found} == {"08:00"}


def test_warsaw_keeps_eight_local_across_the_spring_change() -> None:
    # the clocks go forward on Sunday 29 March 2026: 08:00 CET is 07:00 UTC, 08:00 CEST 06:00
    found = runs("mon,thu 08:00", "Europe/Warsaw", datetime(2026, 3, 25, tzinfo=UTC), 4)
    assert [local(r, "Europe/Warsaw") for r in found] == [
        "2026-03-26 08:00 CET",
        "2026-03-30 08:00 CEST",
        "2026-04-02 08:00 CEST",
        "2026-04-06 08:00 CEST",
    ]
    assert found[0].hour == 7 and found[1].hour == 6


def test_a_time_in_the_spring_gap_runs_when_the_gap_ends() -> None:
    # 02:30 does not exist in Warsaw on 29 March 2026 (02:00 CET -> 03:00 CEST): 03:30 CEST
    found = runs("sun 02:30", "Europe/Warsaw", datetime(2026, 3, 23, tzinfo=UTC))
    assert [local(r, "Europe/Warsaw") for r in found] == [
        "2026-03-29 03:30 CEST",
        "2026-04-05 02:30 CEST",
        "2026-04-12 02:30 CEST",
    ]
    assert found[0] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_time_in_the_spring_gap_in_new_york_too() -> None:
    # 02:30 does not exist in New York on 8 March 2026 (02:00 EST -> 03:00 EDT)
    found = runs("daily 02:30", "America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert [local(r, "America/New_York") for r in found] == [
        "2026-03-08 03:30 EDT",
        "2026-03-09 02:30 EDT",
        "2026-03-10 02:30 EDT",
    ]


def test_a_time_that_happens_twice_runs_once_at_its_first_occurrence() -> None:
    # Warsaw, 25 October 2026: 03:00 CEST -> 02:00 CET, so 02:30 happens twice
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    found = runs("30 2 * * *", "Europe/Warsaw", start)
    assert found == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first one
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # the next day's, 02:30 CET
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]
    # asked during the second 02:xx (CET), the next run is the next day's: no second run
    between = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET, the repeated hour
    assert schedule.parse("30 2 * * *", "Europe/Warsaw").next_run(between) == found[1]


def test_the_next_run_is_strictly_after_the_moment() -> None:
    plan = schedule.parse("mon 08:00", "Europe/Minsk")
    run = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    assert plan.next_run(run - timedelta(seconds=1)) == run
    assert plan.next_run(run) == run + timedelta(days=7)


def test_the_draft_is_due_from_the_lead_time_before_the_run_in_real_hours() -> None:
    # New York, Monday 2 November 2026 08:00 EST (13:00 UTC); 12 h before is 01:00 UTC, which
    # is Sunday 20:00 EST, the night after the clocks went back: the lead is 12 real hours
    newsletter = Newsletter(
        slug="w",
        name="W",
        from_name="W",
        from_email="w@example.org",
        postal_address="x",
        time_zone="America/New_York",
    )
    pilot = Autopilot(newsletter_id=1, enabled=True, rule="mon 08:00", lead_hours=12)
    run = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    assert due_run(pilot, newsletter, now=run - timedelta(hours=12, minutes=1)) is None
    assert due_run(pilot, newsletter, now=run - timedelta(hours=12)) == run
    assert due_run(pilot, newsletter, now=run - timedelta(minutes=1)) == run


@pytest.mark.parametrize(
    ("rule", "zone", "says"),
    [
        ("funday 08:00", "Europe/Minsk", "not a day of the week"),
        ("mon 25:00", "Europe/Minsk", "not a time of day"),
        ("every full moon", "Europe/Minsk", "cannot read the schedule"),
        ("0 8 * *", "Europe/Minsk", "cannot read the schedule"),
        ("61 8 * * 1", "Europe/Minsk", "cannot read the schedule"),
        ("mon 08:00", "Europe/Atlantis", "unknown time zone"),
    ],
)
def test_a_rule_that_cannot_be_read_is_one_clear_line(rule: str, zone: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        schedule.parse(rule, zone)


def test_rules_read_as_cron_with_a_label() -> None:
    assert schedule.parse("Mondays 08:00", "Europe/Minsk").cron == "0 8 * * 1"
    assert schedule.parse("mon, thu at 7:30", "UTC").cron == "30 7 * * 1,4"
    assert schedule.parse("daily 06:00", "UTC").label == "daily at 06:00 (UTC)"
    assert schedule.parse("0 8 * * 1-5", "UTC").label == "cron 0 8 * * 1-5 (UTC)"
