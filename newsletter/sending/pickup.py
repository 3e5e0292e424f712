"""Whether a send waits for a worker that is not there, read off the ledger alone.

A running worker claims the rows of a dispatched send within a second or two, and the beat
starts a scheduled issue within one tick of its time. So an issue that has been sending for
``PICKUP_SECONDS`` with due rows waiting, none in flight and none sent or recorded lately has
no worker consuming its queue; a scheduled issue ``PICKUP_SECONDS`` past its time plus a tick
has no beat; an issue sent now still ``preparing`` after ``PREPARE_SECONDS`` (its ledger not
filled) has no worker either. Nothing here knows the queue: the signal is the domain's own, so
the CLI, the admin API and the editor UI say the same thing whatever runs the workers.

Cheap enough for a status poll every second: the checks stop at the first one that shows
movement, the first ones use the ledger's (issue, status) and (issue, sent_at) indexes, and
none runs for an issue that is neither sending nor scheduled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlmodel import Session

from newsletter.models import DeliveryStatus, IssueStatus, utcnow
from newsletter.sending import local_time
from newsletter.tables import D, I

#: how long a dispatched send may wait for its first claim before we say no worker runs
PICKUP_SECONDS = 5.0
#: the beat's period (``worker.celery_app``'s schedule): a retry or a schedule may wait this long
TICK_SECONDS = 5.0
#: how long "send now" may stay preparing before we say no worker runs: a worker filling a
#: large ledger holds it that long (about 14 s per million rows), so this is generous
PREPARE_SECONDS = 120.0

NO_WORKER = "no worker has picked this send up: start `newsletter worker` (or `newsletter dev`)"
NO_BEAT = (
    "its time has passed and no beat has started it: run `newsletter worker --beat` "
    "(or `newsletter dev`), and look at the worker's log"
)


def worker_notice(session: Session, *, issue_id: int, now: datetime | None = None) -> str | None:
    """``NO_WORKER`` or ``NO_BEAT`` when the issue waits for a worker nobody runs, else None."""
    now = now or utcnow()
    quiet = now - timedelta(seconds=PICKUP_SECONDS)
    late = quiet - timedelta(seconds=TICK_SECONDS)
    scheduled_and_late = and_(
        I.c.id == issue_id, I.c.status == IssueStatus.scheduled, I.c.scheduled_at <= late
    )
    if _holds(session, scheduled_and_late):
        return NO_BEAT
    prepared_long_ago = and_(
        I.c.id == issue_id,
        I.c.status == IssueStatus.preparing,
        I.c.status_changed_at <= now - timedelta(seconds=PREPARE_SECONDS),
    )
    if _holds(session, prepared_long_ago):
        return NO_WORKER
    entered_before_quiet = and_(
        I.c.id == issue_id,
        I.c.status == IssueStatus.sending,
        I.c.send_started_at <= quiet,
        or_(I.c.status_changed_at.is_(None), I.c.status_changed_at <= quiet),
    )
    if not _holds(session, entered_before_quiet):
        return None
    rows = D.c.issue_id == issue_id
    waiting = and_(
        D.c.status == DeliveryStatus.pending,
        or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= late),
        *local_time.due_filter(session, issue_id, late),  # a later wave waits for its time
    )
    if not _holds(session, rows, waiting):
        return None
    for moving in (
        and_(D.c.status == DeliveryStatus.sending, D.c.lease_until > now),  # a batch holds rows
        D.c.sent_at >= quiet,  # sent lately
        D.c.updated_at >= quiet,  # a failure or a retry recorded lately
    ):
        if _holds(session, rows, moving):
            return None
    return NO_WORKER


def _holds(session: Session, *conditions: ColumnElement[bool]) -> bool:
    """Whether some row meets every condition (one EXISTS; the table is read off the columns)."""
    return bool(session.execute(select(exists().where(*conditions))).scalar())
