"""The CSV import in the editor UI: upload, preview and mapping, start, progress, report.

``/admin/subscribers/import`` takes the file (stored in the database as a draft job, see
``newsletter.audience.import_jobs``) and sends the editor to the job's page: while a draft, the
preview (a mapping select per column, the default newsletters ticked, keep or overwrite, what
each of the first rows will do); once started, the progress bar (``import.js`` polls
``status.json``; without JavaScript the page refreshes itself); when done, the counts and the
error report as CSV.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import ImportStarterDep, SessionDep
from newsletter.api.inputs import Id
from newsletter.audience import csv_import, import_jobs, subscribers
from newsletter.audience.csv_mapping import FIELDS, IGNORE, attribute_key, target_label
from newsletter.audience.csv_preview import default_newsletters
from newsletter.exceptions import InvalidInput
from newsletter.models import ImportJob

router = protected_router()
CHOICES = [(t, target_label(t)) for t in (*FIELDS, IGNORE)]
VERDICT_LABELS = {"new": "New", "update": "Update", "unchanged": "Unchanged", "skip": "Skip"}


@router.get("/subscribers/import", include_in_schema=False)
def import_form(request: Request, session: SessionDep, newsletter: str = "") -> Response:
    return views.render(
        request,
        "subscribers_import.html.j2",
        title="Import subscribers",
        came_from=newsletter.strip()[:100],
        recent=import_jobs.recent(session),
        consent_rule=csv_import.CONSENT_RULE,
    )


@router.post("/subscribers/import", include_in_schema=False)
def upload_import(
    request: Request,
    session: SessionDep,
    file: Annotated[UploadFile | None, File()] = None,
    came_from: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if file is None or not file.filename:
        raise InvalidInput("choose a CSV file to import")
    editor = getattr(request.state, "editor", None)
    job = import_jobs.create(
        session,
        file.file.read(),
        filename=file.filename,
        created_by=f"editor {editor.email}" if editor else "editor",
    )
    import_jobs.configure(session, job, newsletters=default_newsletters(session, came_from))
    return views.redirect(request, f"/admin/subscribers/import/{job.id}")


@router.get("/subscribers/import/{job_id}", include_in_schema=False)
def import_page(request: Request, session: SessionDep, job_id: Id) -> Response:
    job = import_jobs.get(session, job_id)
    if job.status != "draft":
        return _progress(request, job)
    preview = import_jobs.preview(session, job)
    return views.render(
        request,
        "subscribers_import_preview.html.j2",
        title=f"Import {job.filename}: preview",
        job=job,
        preview=preview,
        columns=[
            (name, target, "attribute:" + attribute_key(name))
            for name, target in zip(preview.header, preview.mapping.fields, strict=False)
        ],
        choices=CHOICES,
        newsletters=subscribers.list_newsletters(session),
        labels=VERDICT_LABELS,
        counts={k: sum(r.verdict.kind == k for r in preview.rows) for k in VERDICT_LABELS},
    )


def _progress(request: Request, job: ImportJob) -> Response:
    state = import_jobs.status(job)
    return views.render(
        request,
        "subscribers_import_job.html.j2",
        title=f"Import {job.filename}",
        job=job,
        state=state,
        errors=job.report.get("errors", [])[:20],
        warnings=job.report.get("warnings", [])[:20],
    )


async def _choices(request: Request) -> dict[str, object]:
    form = await request.form()
    width = len([k for k in form if str(k).startswith("col-")])
    columns = []
    for index in range(width):
        target = str(form.get(f"col-{index}", IGNORE))
        columns.append(target)
    return {
        "columns": columns or None,
        "newsletters": [str(v) for v in form.getlist("newsletters")],
        "existing": str(form.get("existing", "keep")),
    }


@router.post("/subscribers/import/{job_id}", include_in_schema=False)
async def choose_import(request: Request, session: SessionDep, job_id: Id) -> Response:
    choices = await _choices(request)
    import_jobs.configure(session, import_jobs.get(session, job_id), **choices)  # type: ignore[arg-type]
    return views.redirect(request, f"/admin/subscribers/import/{job_id}")


@router.post("/subscribers/import/{job_id}/start", include_in_schema=False)
async def start_import(
    request: Request,
    session: SessionDep,
    job_id: Id,
    start: ImportStarterDep,
    background: BackgroundTasks,
) -> Response:
    job = import_jobs.get(session, job_id)
    if job.status == "draft":
        choices = await _choices(request)
        import_jobs.configure(session, job, **choices)  # type: ignore[arg-type]
    if import_jobs.start(session, job):
        background.add_task(start, job_id)  # after the commit: the worker must find it queued
    request.state.audit_target = ("import", job_id)
    return views.redirect(request, f"/admin/subscribers/import/{job_id}")


@router.get("/subscribers/import/{job_id}/status.json", include_in_schema=False)
def import_status(session: SessionDep, job_id: Id) -> Response:
    return views.json_response(import_jobs.status(import_jobs.get(session, job_id)))


@router.get("/subscribers/import/{job_id}/report.csv", include_in_schema=False)
def import_report(session: SessionDep, job_id: Id) -> Response:
    job = import_jobs.get(session, job_id)
    if job.status not in ("done", "failed"):
        raise InvalidInput(f"import {job_id} is {job.status}: its report comes when it is done")
    return StreamingResponse(
        import_jobs.report_csv(job),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
