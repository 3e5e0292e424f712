"""Which run of a newsletter's schedule is due now, and the runs the beat missed.

On time, the due run is the next one, once its lead time has begun. When the beat was not
running at a run's draft time (the machine was off over the weekend), the runs whose time came
meanwhile are missed: the latest of them is still drafted, late, if its time passed at most
``catch_up_hours`` ago and no later run is already in its lead time; every other one is recorded
as missed (an ``AutopilotRun`` with the reason), so the page and the CLI say what happened and
the next beat does not look at it again. Never one draft per missed week: a digest drafted
three times over from the same new stories would help nobody.

The missed runs are looked for after the newsletter's latest recorded run, and never before
the autopilot's settings last changed (a run of a rule nobody had set yet was not missed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from newsletter.autopilot import schedule
from newsletter.models import Autopilot, AutopilotRun, Newsletter, RunOutcome

#: the look-back for missed runs is at most this long, and walks at most this many runs (an
#: autopilot switched off for a year and on again has no year of missed runs to record)
LOOK_BACK, MAX_RUNS = timedelta(days=60), 2000


@dataclass(frozen=True)
class Due:
    """The run to draft now: its time, and how late it is (None: on time, before its run)."""

    run_at: datetime
    late: timedelta | None = None


def due(
    session: Session,
    pilot: Autopilot,
    newsletter: Newsletter,
    *,
    now: datetime,
    missed: list[AutopilotRun] | None = None,
) -> Due | None:
    """The run to draft now, if any; the runs missed before it are recorded first (flushed)
    and, when ``missed`` is given, appended to it."""
    plan = schedule.parse(pilot.rule, newsletter.time_zone)
    upcoming = due_run(pilot, newsletter, now=now)
    on_time = upcoming is not None
    passed = _passed(session, pilot, plan, now=now)
    catch_up = None
    if passed and not on_time and now - passed[-1] <= timedelta(hours=pilot.catch_up_hours):
        catch_up = passed.pop()
    for run_at in passed:
        row = _record_missed(session, pilot, run_at, _reason(pilot, run_at, catch_up, on_time, now))
        if row is not None and missed is not None:
            missed.append(row)
    if catch_up is not None:
        return Due(catch_up, now - catch_up)
    return Due(upcoming) if upcoming is not None else None


def due_run(pilot: Autopilot, newsletter: Newsletter, *, now: datetime) -> datetime | None:
    """The next run, when its lead time has begun (None: not yet)."""
    run = schedule.parse(pilot.rule, newsletter.time_zone).next_run(now)
    return run if now >= run - timedelta(hours=pilot.lead_hours) else None


def _passed(
    session: Session, pilot: Autopilot, plan: schedule.Schedule, *, now: datetime
) -> list[datetime]:
    """The runs whose time came after the latest recorded run (and the last change of the
    settings), up to ``now``: none of them was drafted."""
    latest = session.exec(
        select(func.max(AutopilotRun.run_at)).where(
            AutopilotRun.newsletter_id == pilot.newsletter_id
        )
    ).one()
    start = max(m for m in (_aware(latest), _aware(pilot.updated_at), now - LOOK_BACK) if m)
    return list(takewhile(lambda run: run <= now, islice(plan.runs_after(start), MAX_RUNS)))


def _reason(
    pilot: Autopilot, run_at: datetime, catch_up: datetime | None, on_time: bool, now: datetime
) -> str:
    if catch_up is not None:
        later = f"{catch_up:%Y-%m-%d %H:%M} UTC"
        return f"a later run ({later}) was missed too: only the latest is drafted"
    if on_time:
        return "the next run was already due to be drafted: only the latest run is drafted"
    late = _hours(now - run_at)
    return (
        f"the beat was not running at its draft time, and came back {late} after the run, "
        f"later than the catch-up time ({pilot.catch_up_hours} h)"
    )


def _record_missed(
    session: Session, pilot: Autopilot, run_at: datetime, reason: str
) -> AutopilotRun | None:
    """One row for the missed run; None when another beat recorded it first."""
    row = AutopilotRun(
        newsletter_id=pilot.newsletter_id,
        run_at=run_at,
        outcome=RunOutcome.missed,
        detail={"missed": reason},
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def late_text(late: timedelta) -> str:
    """What a late draft's run says: how late, why, and that it was not scheduled."""
    return (
        f"{_hours(late)} after its run (the beat was not running at its draft time); "
        "not scheduled by itself"
    )


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # SQLite gives times back without their zone
