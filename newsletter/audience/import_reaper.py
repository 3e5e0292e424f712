"""Import jobs whose worker went away are started again, or failed with the reason.

A worker killed in the middle of an import (a deploy, the OOM killer, a lost machine) leaves its
job ``running`` for good: the task's message comes back from the broker only after its
visibility timeout (an hour) and then finds the job already claimed. The job's run writes a sign
of life with every chunk (``ImportJob.heartbeat_at``, in the chunk's own commit), so the beat's
``reap_stalled`` knows a job that has not moved for ``stale_seconds``: it puts it back in the
queue, to be imported again from its first row (the chunks already written come out
``unchanged``: an import is safe to repeat), at most ``MAX_ATTEMPTS`` runs in all; then it
fails, saying so. A run that was only slow and comes back finds its job taken (``ours`` no
longer matches) and stops without writing its next chunk.

A large import drops the subscriber table's trigram index while it runs
(``trigram_pause.TrigramPause``); one killed midway leaves it dropped, and the reaper builds it
again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from newsletter.audience.trigram_pause import restore_trigram_index
from newsletter.models import ImportJob, ImportUpload, utcnow
from newsletter.statuses import ImportStatus, moving

log = logging.getLogger(__name__)

#: runs of one job in all (the first and the restarts); then it fails
MAX_ATTEMPTS = 3


def reap_stalled(
    session: Session, *, stale_seconds: float, now: datetime | None = None
) -> list[int]:
    """Running jobs silent for ``stale_seconds``: back to ``queued`` (committed; the caller
    hands their ids to the import queue), or ``failed`` after ``MAX_ATTEMPTS`` runs."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_seconds)
    stalled = session.execute(
        select(ImportJob.id, ImportJob.attempts, ImportJob.heartbeat_at).where(  # type: ignore[call-overload]
            ImportJob.status == ImportStatus.running,
            (ImportJob.heartbeat_at < cutoff) | ImportJob.heartbeat_at.is_(None),  # type: ignore[union-attr, operator]
        )
    ).all()
    # the read ends before the writes: on SQLite a read transaction that then writes while an
    # import's chunk holds the write lock fails at once ("database is locked"); a fresh write
    # waits for the lock (busy_timeout). Each write is guarded, so what changed meanwhile holds.
    session.commit()
    requeued: list[int] = []
    for job_id, attempts, heartbeat in stalled:
        silent = f"its run stopped (no progress since {_at(heartbeat)})"
        same_run = (ImportJob.id == job_id) & (ImportJob.attempts == attempts)
        if attempts < MAX_ATTEMPTS:
            moved = session.execute(
                update(ImportJob)
                .where(
                    same_run,
                    moving(ImportJob.status, ImportStatus.queued, among=[ImportStatus.running]),
                )
                .values(status=ImportStatus.queued, failure=f"{silent}; started again")
            )
            if moved.rowcount:  # type: ignore[attr-defined]
                requeued.append(job_id)
                log.warning("import job %s: %s; started again (run %s)", job_id, silent, attempts)
            continue
        failure = f"{silent}, {attempts} runs in all"
        moved = session.execute(
            update(ImportJob)
            .where(
                same_run,
                moving(ImportJob.status, ImportStatus.failed, among=[ImportStatus.running]),
            )
            .values(status=ImportStatus.failed, failure=failure, finished_at=now)
        )
        if moved.rowcount:  # type: ignore[attr-defined]
            session.execute(
                ImportUpload.__table__.delete().where(ImportUpload.job_id == job_id)  # type: ignore[attr-defined]
            )
            log.error("import job %s: %s", job_id, failure)
    session.commit()
    if restore_trigram_index(session):
        log.warning("the subscriber trigram index was missing (an import stopped midway): built")
    session.commit()
    return requeued


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "its start"
