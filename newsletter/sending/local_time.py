"""Send at a local time: "08:00 in each reader's time zone", one wave per due time.

An issue with a ``local_time`` ("08:00") gets, at the ledger fill, a due time on each row: that
time of day in the subscriber's zone (``Subscriber.time_zone``; the newsletter's zone when the
subscriber has none). The claims take only rows that are due, so the send goes out in waves and
the beat's tick starts each wave's batches once its time comes.

The rule for the day: the first local date, counted from the moment the send starts (the fill),
whose ``local_time`` has not passed yet in that zone. An issue started at 09:00 in Minsk reaches
its Minsk readers tomorrow at 08:00 and its New York readers (01:00 there) today at 08:00; one
started at exactly 08:00 local reaches that zone at once. Across a DST change the due time is
the wall-clock time of that date (08:00 local stays 08:00 local, the UTC instant moves); a time
that does not exist that day (inside a spring-forward gap) is read with the offset before the
change, i.e. it falls just after the gap.

The fill stays set-based: one ``SELECT DISTINCT`` of the recipients' zones (a few hundred at
most), the due instant of each computed here with ``zoneinfo``, and one ``CASE`` over the zone
in the ledger's ``INSERT ... SELECT`` (the same on PostgreSQL and SQLite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import DeliveryStatus, Issue, IssueStatus, SubjectTest, utcnow
from newsletter.newsletters import time_zone
from newsletter.statuses import NOT_STARTED
from newsletter.tables import SUB, D, I

_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
#: a subject test's samples would leave wave by wave, so its wait would end before most of them
#: were delivered and the winner would be picked by the earliest zones alone: the two are refused
NOT_WITH_SUBJECT_TEST = (
    "a subject test cannot be combined with a local-time delivery (the winner would be picked "
    "before most samples reach their readers): drop the subject test or send to everyone at once"
)


def clock() -> datetime:
    """Now, for due times: the one clock the claims and the waves read (a test may step it)."""
    return utcnow()


def check_local_time(value: str | None) -> str | None:
    """ "8:00" -> "08:00"; empty or None: no local time (send at once); InvalidInput otherwise."""
    if value is None or not value.strip():
        return None
    found = _HH_MM.match(value.strip())
    if found is None:
        raise InvalidInput(f"local time {value[:20]!r} is not a time of day like '08:00'")
    return f"{int(found.group(1)):02d}:{found.group(2)}"


def refuse_with_subject_test(session: Session, issue: Issue, wanted: str | None) -> None:
    """InvalidInput when an issue sent at a local time (``wanted``) also has a subject test
    (set either way round, or both stored before the two were refused together)."""
    if wanted and session.get(SubjectTest, issue.id) is not None:
        raise InvalidInput(NOT_WITH_SUBJECT_TEST)


def set_local_time(session: Session, issue: Issue, value: str | None) -> None:
    """Send an issue not started yet at this local time in each reader's zone (None: at once)."""
    wanted = check_local_time(value)
    if wanted == issue.local_time:
        return
    if issue.status not in (*NOT_STARTED, IssueStatus.scheduled):
        raise InvalidState(f"issue {issue.id} is {issue.status}: its send time is fixed")
    if wanted is not None:
        refuse_with_subject_test(session, issue, wanted)
    issue.local_time = wanted
    session.add(issue)
    session.flush()


def _time_of(local_time: str) -> time:
    hours, minutes = (int(part) for part in local_time.split(":"))
    return time(hours, minutes)


def due_at(zone: str, local_time: str, *, start: datetime) -> datetime:
    """The UTC instant of ``local_time`` in ``zone`` on the first local date, from ``start``
    on, at which it has not passed (see the module's rule)."""
    tz = ZoneInfo(zone)
    local_now = _aware(start).astimezone(tz)
    at = _time_of(local_time)
    day = local_now.date()
    candidate = _wall(day, at, tz)
    if candidate < local_now:
        candidate = _wall(day + timedelta(days=1), at, tz)
    return candidate.astimezone(UTC)


def _wall(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The wall-clock time ``at`` on ``day``, normalised (a time in a gap moves past it)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC).astimezone(tz)


def _aware(moment: datetime) -> datetime:
    """SQLite gives times back without their zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def zone_column(newsletter_zone: str) -> ColumnElement[str]:
    """A recipient's zone in the fill's query: theirs, or the newsletter's when unknown."""
    return func.coalesce(func.nullif(SUB.c.time_zone, ""), literal(newsletter_zone))


def due_column(
    recipients_zones: list[str],
    *,
    newsletter_zone: str,
    local_time: str,
    start: datetime,
) -> ColumnElement[datetime]:
    """The due time of each row as a ``CASE`` over the recipient's zone (for the fill's
    ``INSERT ... SELECT``); a zone zoneinfo does not know gets the newsletter's zone's time."""
    fallback = due_at(newsletter_zone, local_time, start=start)
    whens = {}
    for zone in recipients_zones:
        try:
            whens[zone] = due_at(time_zone(zone), local_time, start=start)
        except (InvalidInput, ValueError):
            continue  # stored before zones were checked: the newsletter's zone
    due_type = D.c.due_at.type
    if not whens:
        return literal(fallback, due_type)
    return case(
        {zone: literal(when, due_type) for zone, when in whens.items()},
        value=zone_column(newsletter_zone),
        else_=literal(fallback, due_type),
    )


def due_filter(
    session: Session | Connection, issue_id: int, now: datetime | None = None
) -> list[ColumnElement[bool]]:
    """The claims' condition on due times: none for a send at once; ``due_at <= now`` for a
    local-time send, whose every row has a due time (the fill's, or a late row's: at once), so
    the (issue, status, due_at, id) index answers it as a range, also between two waves."""
    local = session.execute(select(I.c.local_time).where(I.c.id == issue_id)).scalar()
    return [D.c.due_at <= (now or clock())] if local else []


def due_order(conditions: list[ColumnElement[bool]]) -> list[Any]:
    """The claims' order: by due time, then id, for a local-time send (the index's order)."""
    return [D.c.due_at, D.c.id] if conditions else [D.c.id]


# ---------------------------------------------------------------- the waves, for the progress


@dataclass(frozen=True)
class Wave:
    due_at: datetime
    total: int
    sent: int
    waiting: int  # pending or in flight

    def as_dict(self) -> dict[str, object]:
        return {
            "due_at": self.due_at.isoformat(),
            "total": self.total,
            "sent": self.sent,
            "waiting": self.waiting,
        }


def waves(session: Session, *, issue_id: int) -> list[Wave]:
    """Per due time: rows, sent, waiting; empty for a send at once. One GROUP BY on the
    ledger's (issue, status, due) index, read only for issues with a local time."""
    waiting = D.c.status.in_([DeliveryStatus.pending, DeliveryStatus.sending])
    rows = session.execute(
        select(
            D.c.due_at,
            func.count(),
            func.sum(case((D.c.status == DeliveryStatus.sent, 1), else_=0)),
            func.sum(case((waiting, 1), else_=0)),
        )
        .where(and_(D.c.issue_id == issue_id, D.c.due_at.is_not(None)))
        .group_by(D.c.due_at)
        .order_by(D.c.due_at)
    ).all()
    return [Wave(_aware(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]


def eta_seconds(found: list[Wave], *, now: datetime, rate: float, remaining: int) -> float | None:
    """Seconds until the send is done: the last wave's due time, then its rows at the current
    rate; with no wave to come, the remaining rows at the rate (None when nothing moves)."""
    later = [w for w in found if w.due_at > now and w.waiting]
    if not later:
        return remaining / rate if rate > 0 else None
    last = later[-1]
    return (last.due_at - now).total_seconds() + (last.waiting / rate if rate > 0 else 0.0)
