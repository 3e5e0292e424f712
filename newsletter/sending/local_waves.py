"""The waves of a local-time send as the sending view shows them: each wave's due time in its
readers' zones ("08:00 Europe/Vilnius"), in the newsletter's zone, and in UTC.

A wave is one due instant (``local_time.waves``); the readers' zones of each come from one
``GROUP BY`` of the ledger joined to the subscribers (read when the page loads, not by the
once-a-second poll). A reader with no zone, or one zoneinfo does not know, is in the
newsletter's zone, as the fill counted them. Zones whose clocks agree at that instant share a
label ("08:00 Europe/Vilnius, Europe/Kyiv"), the most readers first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, select
from sqlmodel import Session

from newsletter.sending.local_time import zone_column
from newsletter.tables import SUB, D

SHOWN_ZONES = 3  # zones named in one label; the others are counted ("+ 2 more")


@dataclass(frozen=True)
class LocalClock:
    """One wall-clock time of a wave and the zones that read it, the most readers first."""

    day: str  # "2026-03-29"
    time: str  # "08:00"
    zones: tuple[str, ...]
    readers: int

    @property
    def shown(self) -> tuple[str, ...]:
        return self.zones[:SHOWN_ZONES]

    @property
    def more(self) -> int:
        return max(0, len(self.zones) - SHOWN_ZONES)


@dataclass(frozen=True)
class WaveTimes:
    local: tuple[LocalClock, ...]
    newsletter_day: str
    newsletter_time: str
    utc: str  # "2026-03-29 05:00 UTC"


def _zone(name: str, fallback: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def readers_zones(
    session: Session, *, issue_id: int, newsletter_zone: str
) -> dict[datetime, list[tuple[str, int]]]:
    """Per due instant: (zone, readers), the zone as the fill read it."""
    zone = zone_column(newsletter_zone)
    rows = session.execute(
        select(D.c.due_at, zone, func.count())
        .select_from(D.join(SUB, SUB.c.id == D.c.subscriber_id))
        .where(and_(D.c.issue_id == issue_id, D.c.due_at.is_not(None)))
        .group_by(D.c.due_at, zone)
    ).all()
    found: dict[datetime, list[tuple[str, int]]] = defaultdict(list)
    for due, name, count in rows:
        found[_aware(due)].append((str(name), int(count)))
    return found


def _clocks(due: datetime, zones: list[tuple[str, int]], home: ZoneInfo) -> list[LocalClock]:
    by_wall: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for name, count in zones:
        tz = _zone(name, home)
        wall = due.astimezone(tz)
        by_wall[(wall.strftime("%Y-%m-%d"), wall.strftime("%H:%M"))].append((str(tz), count))
    clocks = []
    for (day, hhmm), named in by_wall.items():
        merged: dict[str, int] = defaultdict(int)
        for name, count in named:
            merged[name] += count
        ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
        clocks.append(LocalClock(day, hhmm, tuple(n for n, _ in ordered), sum(merged.values())))
    return sorted(clocks, key=lambda c: -c.readers)


def wave_times(
    session: Session, *, issue_id: int, newsletter_zone: str, due_times: list[datetime]
) -> list[WaveTimes]:
    """The times of each wave (``due_times``, in their order) for the page."""
    home = _zone(newsletter_zone, ZoneInfo("UTC"))
    zones = readers_zones(session, issue_id=issue_id, newsletter_zone=newsletter_zone)
    shown = []
    for due in due_times:
        at = _aware(due).astimezone(UTC)
        there = at.astimezone(home)
        shown.append(
            WaveTimes(
                local=tuple(_clocks(at, zones.get(at, []), home)),
                newsletter_day=there.strftime("%Y-%m-%d"),
                newsletter_time=there.strftime("%H:%M"),
                utc=at.strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
    return shown
