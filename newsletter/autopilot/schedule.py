"""The autopilot's recurring schedule: "mon 08:00", "mon,thu 07:30" or a cron expression, read
as wall-clock times in the newsletter's time zone.

The rule becomes a five-field cron expression (croniter walks it over naive wall-clock times);
each wall time is then placed in the zone. Across a daylight-saving change:

- a time that does not exist that night (02:30 when the clocks jump from 02:00 to 03:00) runs
  when the gap ends, shifted by its length: 03:30 the same morning (zoneinfo's ``fold=0``);
- a time that happens twice (02:30 when the clocks go back from 03:00 to 02:00) runs once, at its
  first occurrence (summer time), never twice: the walk sees each wall time once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from newsletter.exceptions import InvalidInput

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's 0-6
DAY_NAMES = {
    "sun": "Sundays",
    "mon": "Mondays",
    "tue": "Tuesdays",
    "wed": "Wednesdays",
    "thu": "Thursdays",
    "fri": "Fridays",
    "sat": "Saturdays",
}
_SIMPLE = re.compile(r"^\s*(?P<days>[a-z, ]+?)\s+(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})\s*$", re.I)
#: a wall time may sit this far after the zone's UTC moment (the longest DST gap is 2 h... and
#: a margin): the walk starts this much earlier and keeps only runs after the moment asked for
_WALK_BACK = timedelta(hours=3)


@dataclass(frozen=True)
class Schedule:
    """A rule read: its cron expression over wall-clock times, and the zone they are in."""

    cron: str
    zone: ZoneInfo
    label: str  # "Mondays at 08:00 (Europe/Warsaw)"

    def runs_after(self, moment: datetime) -> Iterator[datetime]:
        """The runs strictly after ``moment`` (aware), as aware UTC, in order."""
        start = moment.astimezone(self.zone).replace(tzinfo=None) - _WALK_BACK
        walk = croniter(self.cron, start)
        while True:
            wall: datetime = walk.get_next(datetime)
            run = to_utc(wall, self.zone)
            if run > moment:
                yield run

    def next_run(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment``, in UTC."""
        return next(self.runs_after(moment))


def to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as UTC: a time in a gap moves forward by the gap, a
    time that happens twice is its first occurrence (both are ``fold=0``)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def zone_of(name: str) -> ZoneInfo:
    """An IANA zone, or InvalidInput naming it."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name.strip()[:64]!r} (e.g. Europe/Minsk)") from None


def parse(rule: str, zone_name: str) -> Schedule:
    """Read a rule ("mon 08:00", "mon,thu 07:30", "daily 06:00", or five cron fields)."""
    zone = zone_of(zone_name)
    simple = _SIMPLE.match(rule)
    if simple:
        cron, label = _simple(simple)
    else:
        cron = " ".join(rule.split())
        if len(cron.split(" ")) != 5 or not croniter.is_valid(cron):
            raise InvalidInput(
                f"cannot read the schedule {rule.strip()[:80]!r}: write e.g. 'mon 08:00', "
                "'mon,thu 07:30', 'daily 06:00' or five cron fields ('0 8 * * 1')"
            )
        label = f"cron {cron}"
    return Schedule(cron, zone, f"{label} ({zone.key})")


def _simple(match: re.Match[str]) -> tuple[str, str]:
    hour, minute = int(match["h"]), int(match["m"])
    if hour > 23 or minute > 59:
        raise InvalidInput(f"{match['h']}:{match['m']} is not a time of day")
    days = _days(match["days"])
    when = f"{hour:02d}:{minute:02d}"
    if len(days) == 7:
        return f"{minute} {hour} * * *", f"daily at {when}"
    names = ", ".join(DAY_NAMES[DAYS[d]] for d in days)
    return f"{minute} {hour} * * {','.join(str(d) for d in days)}", f"{names} at {when}"


def _days(text: str) -> list[int]:
    """Day numbers (cron's, Sunday 0) from "mon", "Mondays", "mon,thu", "daily"."""
    words = [w for w in re.split(r"[,\s]+", text.strip().lower()) if w]
    if words in (["daily"], ["every", "day"]):
        return list(range(7))
    days: set[int] = set()
    for word in words:
        if word[:3] not in DAYS or len(word) < 3:
            raise InvalidInput(f"{word!r} is not a day of the week (mon, tue, ... or daily)")
        days.add(DAYS.index(word[:3]))
    return sorted(days)
