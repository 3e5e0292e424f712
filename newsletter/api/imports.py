"""CSV imports as background jobs over HTTP: ``/api/subscribers/imports...``, admin token only.

Routes do HTTP only; the jobs are ``newsletter.audience.import_jobs``'s.

- ``POST /subscribers/imports``                 upload (multipart ``file`` or a ``text/csv``
                                                body): a draft job and its preview (the mapping
                                                read off the header, the first rows' verdicts)
- ``POST /subscribers/imports/{id}/preview``    the preview again with other choices (JSON:
                                                ``columns``, ``newsletters``, ``existing``)
- ``POST /subscribers/imports/{id}/start``      record the choices and queue the import (202)
- ``GET  /subscribers/imports/{id}``            status: progress, then the counts
- ``GET  /subscribers/imports/{id}/report.csv`` the rejected rows and warnings, by line

``POST /subscribers/import`` (``subscribers.py``) still imports synchronously.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from newsletter.api.auth import require_token
from newsletter.api.deps import ImportStarterDep, SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.audience import import_jobs
from newsletter.audience.csv_preview import Preview, default_newsletters
from newsletter.exceptions import InvalidInput

router = APIRouter(
    prefix="/subscribers/imports",
    tags=["subscribers"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 422),
)
MISSING = api_errors(404)
UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class ImportChoices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[str] | None = Field(
        None,
        max_length=500,
        description="one target per column: email, name, language, time_zone, tags, "
        "newsletters, status, consent, consent_at, consent_ip, consent_source, "
        "consent_text_version, opted_out, attribute:<key> or ignore",
    )
    newsletters: list[str] | None = Field(
        None, max_length=100, description="slugs or ids, for rows that name none"
    )
    existing: str | None = Field(None, description="keep (default) or overwrite")


def preview_json(preview: Preview) -> dict[str, Any]:
    return {
        "format": str(preview.mapping.format),
        "format_label": preview.format_label,
        "header": preview.header,
        "columns": preview.mapping.fields,
        "newsletters": preview.newsletters,
        "existing": str(preview.existing),
        "ignored_columns": preview.ignored,
        "rows": [
            {
                "line": row.line,
                "cells": row.cells,
                "verdict": row.verdict.kind,
                "detail": row.verdict.detail,
                "warnings": row.warnings,
            }
            for row in preview.rows
        ],
    }


async def _upload(request: Request) -> tuple[bytes, str]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the multipart form needs a file field named 'file'")
        return await upload.read(), upload.filename or "upload.csv"
    return await request.body(), "upload.csv"


@router.post(
    "",
    summary="Upload a CSV: a draft import job and its preview",
    status_code=201,
    responses={**api_errors(400), **MISSING},
    openapi_extra=UPLOAD,
)
async def preview_import(
    request: Request,
    session: SessionDep,
    newsletter: Annotated[
        list[str] | None,
        Query(
            description="default newsletters for rows that name none (without it: the only "
            "newsletter, if there is one)"
        ),
    ] = None,
    existing: Annotated[str, Query(description="keep (default) or overwrite")] = "keep",
) -> dict[str, Any]:
    data, filename = await _upload(request)
    actor = getattr(request.state, "actor", None)
    job = import_jobs.create(
        session, data, filename=filename, created_by=getattr(actor, "label", "api") or "api"
    )
    defaults = newsletter if newsletter is not None else default_newsletters(session)
    import_jobs.configure(session, job, newsletters=defaults, existing=existing)
    preview = preview_json(import_jobs.preview(session, job))
    return {"job": import_jobs.status(job), "preview": preview}


@router.post(
    "/{job_id}/preview",
    summary="The preview with other choices (nothing is imported)",
    responses={**api_errors(400), **MISSING},
)
def repreview_import(job_id: Id, choices: ImportChoices, session: SessionDep) -> dict[str, Any]:
    job = import_jobs.get(session, job_id)
    import_jobs.configure(session, job, **choices.model_dump())
    preview = preview_json(import_jobs.preview(session, job))
    return {"job": import_jobs.status(job), "preview": preview}


@router.post(
    "/{job_id}/start",
    summary="Record the choices and queue the import",
    status_code=202,
    responses={**api_errors(400), **MISSING},
)
def start_import(
    job_id: Id,
    request: Request,
    session: SessionDep,
    start: ImportStarterDep,
    background: BackgroundTasks,
    choices: ImportChoices | None = None,
) -> dict[str, Any]:
    job = import_jobs.get(session, job_id)
    if job.status == "draft" and choices is not None:
        import_jobs.configure(session, job, **choices.model_dump())
    if import_jobs.start(session, job):
        background.add_task(start, job_id)  # after the commit: the worker must find it queued
    request.state.audit_target = ("import", job_id)
    return import_jobs.status(job)


@router.get("/{job_id}", summary="An import job's status and counts", responses=MISSING)
def import_status(job_id: Id, session: SessionDep) -> dict[str, Any]:
    return import_jobs.status(import_jobs.get(session, job_id))


@router.get(
    "/{job_id}/report.csv",
    summary="The import's rejected rows and warnings, by line (CSV)",
    responses=MISSING,
)
def import_report(job_id: Id, session: SessionDep) -> StreamingResponse:
    job = import_jobs.get(session, job_id)
    if job.status not in ("done", "failed"):
        raise InvalidInput(f"import {job_id} is {job.status}: its report comes when it is done")
    return StreamingResponse(
        import_jobs.report_csv(job),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"'},
    )
