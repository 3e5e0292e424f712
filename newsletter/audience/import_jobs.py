"""Import jobs: upload a CSV, look at its preview, set the mapping, then import in the background.

``create`` stores the upload in the database (``ImportUpload``: the web app and the worker may
be different containers sharing nothing but the database) as a ``draft`` job whose mapping is
what ``csv_mapping.detect`` reads off the header. ``preview`` answers with the first rows and
their verdicts, ``configure`` records the editor's mapping, default newsletters and keep/overwrite
choice, ``start`` queues it (the caller hands the id to a worker), and ``run`` (the worker's
verb) imports it: progress is committed after each chunk, so the editor's progress bar moves and
SQLite's single writer is never held for the whole file; the report is stored and the upload
deleted when it is done. A job that fails keeps the rows its finished chunks wrote (importing the
same file again is harmless: rows that are already there come out unchanged) and says why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, select

from newsletter.audience.csv_export import neutralise
from newsletter.audience.csv_import import import_csv, read_mapping
from newsletter.audience.csv_preview import PREVIEW_ROWS, Preview, preview_csv, read_head
from newsletter.audience.csv_profile import Existing
from newsletter.audience.csv_report import ImportReport
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import ImportJob, ImportUpload, utcnow
from newsletter.newsletters import get_newsletter
from newsletter.statuses import ImportStatus, moving

MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # a million subscribers export to about 100 MB
SNIFF_BYTES = 64 * 1024


def create(session: Session, data: bytes, *, filename: str, created_by: str) -> ImportJob:
    """A ``draft`` job holding ``data``; InvalidInput when it is not a CSV file we can import
    (binary, not UTF-8, no header row, no email column). Flushed, not committed."""
    if not data.strip():
        raise InvalidInput("the file is empty: it needs a header row naming an email column")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    _looks_like_text(data[:SNIFF_BYTES])
    header, _ = read_head(data, 0)
    mapping = read_mapping(header)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    job = ImportJob(
        filename=filename[:255] or "upload.csv",
        created_by=created_by[:255],
        size_bytes=len(data),
        total_rows=max(lines - 1, 0),
        columns=mapping.fields,
    )
    session.add(job)
    session.flush()
    assert job.id is not None
    session.add(ImportUpload(job_id=job.id, data=data))
    session.flush()
    return job


def _looks_like_text(head: bytes) -> None:
    if b"\x00" in head:
        raise InvalidInput("this is not a CSV file: it holds binary data (export it as CSV)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of the sample
            raise InvalidInput(
                f"the file is not UTF-8 text (byte 0x{head[exc.start]:02x} at offset "
                f"{exc.start}): save it as CSV UTF-8"
            ) from exc


def get(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"import {job_id} not found")
    return job


def data_of(session: Session, job: ImportJob) -> bytes:
    upload = session.get(ImportUpload, job.id)
    if upload is None:
        raise InvalidInput(f"import {job.id} has no file any more (it is {job.status})")
    return upload.data


def configure(
    session: Session,
    job: ImportJob,
    *,
    columns: Sequence[str] | None = None,
    newsletters: Sequence[str] | None = None,
    existing: str | None = None,
) -> ImportJob:
    """Record the editor's choices on a draft; InvalidInput for one that cannot be imported."""
    if job.status != ImportStatus.draft:
        raise InvalidInput(f"import {job.id} has started: its mapping can no longer change")
    if columns is not None:
        header, _ = read_head(data_of(session, job), 0)
        job.columns = read_mapping(header, list(columns)).fields
    if newsletters is not None:
        job.newsletters = [get_newsletter(session, ref).slug for ref in newsletters]
    if existing is not None:
        job.existing = _existing(existing)
    session.add(job)
    session.flush()
    return job


def _existing(value: str) -> str:
    try:
        return Existing(value.strip().lower()).value
    except ValueError:
        raise InvalidInput(f"existing must be keep or overwrite, not {value[:20]!r}") from None


def preview(session: Session, job: ImportJob, *, rows: int = PREVIEW_ROWS) -> Preview:
    """The job's first rows and their verdicts, with its current choices."""
    return preview_csv(
        session,
        data_of(session, job),
        columns=job.columns,
        newsletters=job.newsletters,
        existing=Existing(job.existing),
        rows=rows,
    )


def start(session: Session, job: ImportJob) -> bool:
    """Queue a draft (the caller hands its id to a worker after the commit); False if it was
    already queued or further along (a repeated click)."""
    moved = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job.id,  # type: ignore[arg-type]
            moving(ImportJob.status, ImportStatus.queued),
        )
        .values(status=ImportStatus.queued)
    )
    session.refresh(job)
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def run(session: Session, job_id: int) -> ImportJob | None:
    """Import a queued job (the worker's verb); None when another worker took it already.

    Commits as it goes: the claim, the progress after each chunk, the end (done or failed).
    """
    now = utcnow()
    claimed = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,  # type: ignore[arg-type]
            moving(ImportJob.status, ImportStatus.running, among=[ImportStatus.queued]),
        )
        .values(
            status=ImportStatus.running,
            started_at=now,
            heartbeat_at=now,
            attempts=ImportJob.attempts + 1,
        )
    )
    session.commit()
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    job = get(session, job_id)
    report = ImportReport()
    mine = job.attempts

    def progress(bytes_read: int) -> None:
        """The chunk's rows and the progress in one commit, while the job is still this run's
        (a run taken for dead and started again: this one stops, its last chunk undone)."""
        alive = session.execute(
            update(ImportJob)
            .where(ours(job_id, mine))
            .values(processed_rows=report.rows, processed_bytes=bytes_read, heartbeat_at=utcnow())
        )
        if not alive.rowcount:  # type: ignore[attr-defined]
            raise Superseded(f"import job {job_id}: run {mine} was started again")
        session.commit()

    try:
        import_csv(
            session,
            io.BytesIO(data_of(session, job)),
            newsletters=job.newsletters,
            columns=job.columns,
            existing=Existing(job.existing),
            on_progress=progress,
            report=report,
        )
    except Superseded:
        session.rollback()
        return None
    except Exception as exc:
        session.rollback()
        _finish(session, job, ImportStatus.failed, report, failure=str(exc)[:2000] or repr(exc))
        if not isinstance(exc, InvalidInput):
            raise
        return job
    _finish(session, job, ImportStatus.done, report)
    return job


def _finish(
    session: Session,
    job: ImportJob,
    status: ImportStatus,
    report: ImportReport,
    *,
    failure: str | None = None,
) -> None:
    finished = session.execute(
        update(ImportJob)
        .where(
            ours(job.id or 0, job.attempts),
            moving(ImportJob.status, status, among=[ImportStatus.running]),
        )
        .values(
            status=status,
            finished_at=utcnow(),
            processed_rows=report.rows,
            report=report.as_dict(),
            failure=failure,
        )
    )
    if finished.rowcount:  # type: ignore[attr-defined]
        session.execute(delete(ImportUpload).where(ImportUpload.job_id == job.id))  # type: ignore[arg-type]
    session.commit()
    session.refresh(job)


class Superseded(Exception):
    """The run's job was taken for dead and started again (``import_reaper``)."""


def ours(job_id: int, attempt: int) -> Any:
    """The WHERE of a write by run ``attempt`` of a job: still running, and still that run."""
    return (
        (ImportJob.id == job_id)
        & (ImportJob.status == ImportStatus.running)
        & (ImportJob.attempts == attempt)
    )


def status(job: ImportJob) -> dict[str, Any]:
    """What the progress bar and the API show."""
    report = job.report or {}
    done = job.status in (ImportStatus.done, ImportStatus.failed)
    total = max(job.total_rows, job.processed_rows, 1)
    percent = (
        100
        if job.status == ImportStatus.done
        else int(99 * job.processed_bytes / max(job.size_bytes, 1))
    )
    counts = {k: report.get(k, 0) for k in COUNTS}
    return {
        "id": job.id,
        "status": job.status,
        "filename": job.filename,
        "processed_rows": job.processed_rows,
        "total_rows": total if done else job.total_rows,
        "percent": percent,
        "finished": done,
        "failure": job.failure,
        "counts": counts if done else None,
        "report_rows": len(report.get("errors", [])) + len(report.get("warnings", [])),
    }


COUNTS = ("rows", "imported", "updated", "unchanged", "suppressed", "errors_total", "duplicates")


def report_csv(job: ImportJob) -> Iterator[str]:
    """The error report: one CSV line per rejected row and per warning (the first 1,000 each)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "kind", "reason"])
    issues = [(i["line"], "error", i["reason"]) for i in job.report.get("errors", [])]
    issues += [(i["line"], "warning", i["reason"]) for i in job.report.get("warnings", [])]
    for line, kind, reason in sorted(issues):
        writer.writerow([line, kind, neutralise(reason)])
    yield out.getvalue()


def recent(session: Session, limit: int = 10) -> list[ImportJob]:
    return list(session.exec(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)).all())  # type: ignore[union-attr]
