"""Send at a local time: the due time of each reader's zone, across DST changes, and the ETA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.exceptions import InvalidInput
from newsletter.sending.local_time import Wave, check_local_time, due_at, eta_seconds


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_before_eight_local_the_reader_gets_it_today() -> None:
    # 05:30 in Minsk (UTC+3 all year): today's 08:00 there is 05:00 UTC
    assert due_at("Europe/Minsk", "08:00", start=utc(2026, 11, 30, 2, 30)) == utc(2026, 11, 30, 5)


def test_started_at_nine_in_minsk_minsk_readers_get_it_tomorrow_new_york_readers_today() -> None:
    start = utc(2026, 11, 30, 6)  # 09:00 in Minsk, 01:00 in New York
    assert due_at("Europe/Minsk", "08:00", start=start) == utc(2026, 12, 1, 5)
    assert due_at("America/New_York", "08:00", start=start) == utc(2026, 11, 30, 13)


def test_started_at_exactly_eight_local_goes_at_once() -> None:
    start = utc(2026, 11, 30, 5)
    assert due_at("Europe/Minsk", "08:00", start=start) == start


def test_spring_forward_eight_local_is_an_hour_earlier_in_utc_the_next_day() -> None:
    # Warsaw leaves CET (+1) for CEST (+2) on Sunday 29 March 2026 at 01:00 UTC
    start = utc(2026, 3, 28, 8)  # Saturday 09:00 CET: Saturday's 08:00 has passed
    assert due_at("Europe/Warsaw", "08:00", start=start) == utc(2026, 3, 29, 6)
    assert due_at("Europe/Warsaw", "08:00", start=utc(2026, 3, 28, 6)) == utc(2026, 3, 28, 7)


def test_fall_back_eight_local_is_an_hour_later_in_utc() -> None:
    # Warsaw leaves CEST for CET on Sunday 25 October 2026 at 01:00 UTC
    start = utc(2026, 10, 24, 7)  # Saturday 09:00 CEST
    assert due_at("Europe/Warsaw", "08:00", start=start) == utc(2026, 10, 25, 7)


def test_a_time_inside_the_spring_forward_gap_falls_just_after_it() -> None:
    # 02:30 does not exist in Warsaw on 29 March 2026 (02:00 -> 03:00): read as 03:30 CEST
    start = utc(2026, 3, 28, 23)  # Sunday 00:00 CET
    assert due_at("Europe/Warsaw", "02:30", start=start) == utc(2026, 3, 29, 1, 30)


def test_new_york_and_warsaw_in_the_weeks_their_dst_rules_differ() -> None:
    # New York is on EDT (-4) from 8 March, Warsaw still on CET (+1) until 29 March
    start = utc(2026, 3, 20, 0)
    assert due_at("America/New_York", "08:00", start=start) == utc(2026, 3, 20, 12)
    assert due_at("Europe/Warsaw", "08:00", start=start) == utc(2026, 3, 20, 7)


@pytest.mark.parametrize(("given", "kept"), [("8:00", "08:00"), (" 23:59 ", "23:59"), ("", None)])
def test_local_time_is_a_time_of_day(given: str, kept: str | None) -> None:
    assert check_local_time(given) == kept


@pytest.mark.parametrize("given", ["24:00", "8", "08:60", "8am", "08:00:00"])
def test_a_local_time_that_is_not_a_time_of_day_is_refused(given: str) -> None:
    with pytest.raises(InvalidInput, match="not a time of day"):
        check_local_time(given)


def test_eta_waits_for_the_last_wave_then_its_rows_at_the_rate() -> None:
    now = utc(2026, 11, 30, 6)
    waves = [
        Wave(now - timedelta(hours=1), total=10, sent=10, waiting=0),
        Wave(now + timedelta(hours=7), total=20, sent=0, waiting=20),
    ]
    assert eta_seconds(waves, now=now, rate=10.0, remaining=20) == 7 * 3600 + 2
    assert eta_seconds(waves, now=now, rate=0.0, remaining=20) == 7 * 3600


def test_eta_without_waves_to_come_is_the_remaining_rows_at_the_rate() -> None:
    now = utc(2026, 11, 30, 6)
    waves = [Wave(now - timedelta(hours=1), total=10, sent=4, waiting=6)]
    assert eta_seconds(waves, now=now, rate=2.0, remaining=6) == 3.0
    assert eta_seconds([], now=now, rate=0.0, remaining=6) is None
