"""A CSV import whose worker went away is started again by the beat and finishes with every row;
a run taken for dead that comes back stops; after three runs the job fails, saying why. SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, func, select

from newsletter.audience import csv_import, import_jobs, import_reaper
from newsletter.models import ImportJob, ImportUpload, Subscription, utcnow
from newsletter.statuses import ImportStatus
from tests.conftest import make_newsletter, reloaded

ROWS = 120
STALE = 300


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no handler catches it."""


def _queued_job(session: Session) -> int:
    weekly = make_newsletter(session)
    data = "email,name\n" + "".join(f"r{i}@example.org,Reader {i}\n" for i in range(ROWS))
    job = import_jobs.create(session, data.encode(), filename="list.csv", created_by="desk")
    import_jobs.configure(session, job, newsletters=[weekly.slug])
    assert import_jobs.start(session, job)
    session.commit()
    assert job.id is not None
    return job.id


def _importing(
    monkeypatch: pytest.MonkeyPatch,
    on_chunk: Callable[[int], None],
    committed_hook: Callable[[int], None] = lambda n: None,
) -> list[int]:
    """The real import in chunks of 25 rows; ``on_chunk(n)`` runs before chunk n's progress
    (chunk n written, not committed), ``committed_hook(n)`` after its commit (no transaction
    open); returns the chunks whose progress committed."""
    real = csv_import.import_csv
    committed: list[int] = []

    def chunked(session: Session, stream: Any, **kwargs: Any) -> Any:
        progress = kwargs.pop("on_progress")
        chunks = iter(range(1, 1000))

        def watched(bytes_read: int) -> None:
            n = next(chunks)
            on_chunk(n)
            progress(bytes_read)
            committed.append(n)
            committed_hook(n)

        return real(session, stream, chunk_rows=25, on_progress=watched, **kwargs)

    monkeypatch.setattr(import_jobs, "import_csv", chunked)
    return committed


def _subscriptions(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Subscription)).one())


def _kill_at(chunk: int) -> Callable[[int], None]:
    def maybe(n: int) -> None:
        if n == chunk:
            raise WorkerKilled

    return maybe


def test_a_killed_import_is_started_again_and_finishes_with_every_row(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queued_job(session)
    _importing(monkeypatch, _kill_at(3))
    with pytest.raises(WorkerKilled):
        import_jobs.run(session, job_id)
    session.rollback()
    job = reloaded(session, ImportJob, job_id)
    assert job.status == ImportStatus.running and job.attempts == 1
    assert _subscriptions(session) == 50  # two chunks were committed before it died
    assert job.heartbeat_at is not None

    # silent, but not for long enough yet: left alone
    assert import_reaper.reap_stalled(session, stale_seconds=STALE) == []
    later = utcnow() + timedelta(seconds=STALE + 1)
    assert import_reaper.reap_stalled(session, stale_seconds=STALE, now=later) == [job_id]
    job = reloaded(session, ImportJob, job_id)
    assert job.status == ImportStatus.queued
    assert job.failure is not None and "started again" in job.failure
    assert import_reaper.reap_stalled(session, stale_seconds=STALE, now=later) == []  # once

    _importing(monkeypatch, lambda n: None)
    done = import_jobs.run(session, job_id)

    assert done is not None and done.status == ImportStatus.done and done.attempts == 2
    assert done.failure is None
    counts = import_jobs.status(done)["counts"]
    assert counts["rows"] == ROWS and counts["imported"] + counts["unchanged"] == ROWS
    assert counts["unchanged"] > 0  # the first run's chunks were kept, not written twice
    assert _subscriptions(session) == ROWS
    assert session.get(ImportUpload, job_id) is None


def test_a_run_taken_for_dead_that_comes_back_stops_without_writing_on(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queued_job(session)
    taken: list[int] = []

    def beat() -> None:  # another process's beat: it waits for SQLite's write lock if need be
        with Session(session.get_bind()) as other:
            later = utcnow() + timedelta(seconds=STALE + 1)
            taken.extend(import_reaper.reap_stalled(other, stale_seconds=STALE, now=later))

    reaper = threading.Thread(target=beat)

    def reap_at_chunk_two(n: int) -> None:
        if n == 2:  # while this run is slow
            reaper.start()

    def wait_for_the_beat(n: int) -> None:  # between chunks: SQLite's write lock is free
        if n == 2:
            reaper.join()

    committed = _importing(monkeypatch, reap_at_chunk_two, wait_for_the_beat)
    assert import_jobs.run(session, job_id) is None  # it found its job taken, and stopped
    reaper.join()

    assert taken == [job_id]
    assert 1 <= len(committed) <= 2  # PostgreSQL: taken before chunk 2's commit; SQLite: after
    job = reloaded(session, ImportJob, job_id)
    assert job.status == ImportStatus.queued and job.attempts == 1
    assert _subscriptions(session) == 25 * len(committed)  # the next chunk was undone
    assert session.get(ImportUpload, job_id) is not None  # kept for the next run

    _importing(monkeypatch, lambda n: None)
    done = import_jobs.run(session, job_id)
    assert done is not None and done.status == ImportStatus.done
    assert _subscriptions(session) == ROWS


def test_after_three_runs_the_job_fails_and_says_why(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queued_job(session)
    _importing(monkeypatch, _kill_at(2))
    moment = utcnow()
    for run in range(1, import_reaper.MAX_ATTEMPTS + 1):
        with pytest.raises(WorkerKilled):
            import_jobs.run(session, job_id)
        session.rollback()
        moment += timedelta(seconds=STALE + 1)
        requeued = import_reaper.reap_stalled(
            session, stale_seconds=STALE, now=moment + timedelta(hours=run)
        )
        assert requeued == ([job_id] if run < import_reaper.MAX_ATTEMPTS else [])

    job = reloaded(session, ImportJob, job_id)
    assert job.status == ImportStatus.failed and job.attempts == import_reaper.MAX_ATTEMPTS
    assert job.failure is not None
    assert job.failure.startswith("its run stopped (no progress since ")
    assert job.failure.endswith(", 3 runs in all")
    assert import_jobs.status(job)["finished"] is True
    assert _subscriptions(session) == 25  # what the chunks wrote is kept
    assert session.get(ImportUpload, job_id) is None
