"""Subscriber administration over HTTP: ``/api/subscribers...``, admin token only.

Routes do HTTP only: search/create/update live in ``newsletter.audience.manage``, CSV in
``newsletter.audience.csv_import``, GDPR requests in ``newsletter.audience.gdpr``.

- ``GET    /subscribers``               search (a whole address, or part of one; status,
                                        newsletter), paginated by ``page`` or by keyset
                                        (``after`` = the previous answer's ``next_after``);
                                        ``total`` stops at 10,000 (then ``total_capped``)
- ``POST   /subscribers``               create (422 with the reason for a bad address)
- ``GET    /subscribers/export``        CSV of subscriptions, streamed (``newsletter``, ``status``)
- ``POST   /subscribers/import``        CSV upload (multipart field ``file``, or a ``text/csv``
                                        body), read as a stream; returns the import report:
                                        counts, and the first 1,000 errors and warnings by line
                                        with ``errors_total`` and ``warnings_total``;
                                        ``existing=overwrite`` replaces existing subscribers'
                                        fields (kept by default). Background jobs with a
                                        preview: ``imports.py``
- ``GET    /subscribers/{id}``          one subscriber with subscriptions
- ``PATCH  /subscribers/{id}``          name, attributes, language, time zone, statuses per
                                        newsletter (``audience.desk`` checks and records them)
- ``DELETE /subscribers/{id}``          GDPR erasure
- ``GET    /subscribers/{id}/export``   GDPR export (JSON)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.datastructures import UploadFile

from newsletter import db
from newsletter.api.auth import TokenDep, require_token
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, Page, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.audience import csv_export, csv_import, desk, manage
from newsletter.audience.csv_profile import Existing
from newsletter.exceptions import InvalidInput
from newsletter.models import Subscriber, Subscription, SubscriptionStatus
from newsletter.newsletters import get_newsletter

router = APIRouter(
    prefix="/subscribers",
    tags=["subscribers"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 422),
)
#: an unknown id (or newsletter)
MISSING = api_errors(404)
#: a change the subscriber's state does not allow (an erased record, a re-activation)
STATE = api_errors(409)

SPOOL_BYTES = 1024 * 1024  # an uploaded body larger than this waits on disk, not in memory


class SubscriptionPublic(BaseModel):
    newsletter: str
    newsletter_id: int
    status: SubscriptionStatus
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str | None
    consent_text_version: str | None
    created_at: datetime
    updated_at: datetime
    unsubscribed_at: datetime | None
    soft_bounces: int
    last_bounce_at: datetime | None


class SubscriberPublic(BaseModel):
    id: int
    email: str
    name: str
    attributes: dict[str, Any]
    language: str | None = None
    time_zone: str | None = None
    created_at: datetime
    subscriptions: list[SubscriptionPublic]


class SubscribersPublic(BaseModel):
    items: list[SubscriberPublic]
    total: int = Field(
        description="how many match, exact up to 10,000; past that 10,000 and total_capped"
    )
    total_capped: bool = Field(
        False, description="true: at least `total` match (the count stops at 10,000)"
    )
    page: int
    per_page: int
    next_after: int | None = Field(
        None, description="pass as `after` for the next page (keyset); null on the last page"
    )


class SubscriberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["reader@example.org"])
    name: str = Field("", max_length=1000, description="line breaks become spaces")
    newsletters: list[str] = Field(
        min_length=1, description="slugs or ids", examples=[["belarus-weekly"]]
    )
    status: SubscriptionStatus = SubscriptionStatus.active


class SubscriberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=1000)
    attributes: dict[str, Any] | None = Field(
        None,
        description="replaces the whole object: names of 1-64 characters, values text, "
        "numbers, true/false or null",
    )
    language: str | None = Field(
        None, max_length=35, description="BCP 47 tag; empty or null: the newsletter's"
    )
    time_zone: str | None = Field(
        None, max_length=64, description="IANA name; empty or null: the newsletter's"
    )
    subscriptions: dict[str, SubscriptionStatus] | None = Field(
        None, description="status per newsletter slug or id"
    )
    reactivate: bool = Field(
        False, description="allow moving out of unsubscribed/bounced/complained"
    )


def _public(subscriber: Subscriber, subs: list[tuple[Subscription, str]]) -> SubscriberPublic:
    assert subscriber.id is not None
    return SubscriberPublic(
        id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        attributes=subscriber.attributes,
        language=subscriber.language,
        time_zone=subscriber.time_zone,
        created_at=subscriber.created_at,
        subscriptions=[
            SubscriptionPublic(**sub.model_dump(), newsletter=slug) for sub, slug in subs
        ],
    )


def _one(session: Session, subscriber_id: int) -> SubscriberPublic:
    return _public(
        manage.get(session, subscriber_id),
        manage.subscriptions(session, subscriber_id),
    )


@router.get("", summary="Search subscribers (paginated)", responses=MISSING)
def list_subscribers(
    session: SessionDep,
    email: Annotated[
        str | None, Query(description="a whole address (exact, any case) or part of one")
    ] = None,
    status: Annotated[SubscriptionStatus | None, Query()] = None,
    newsletter: Annotated[str | None, Query(description="slug or id")] = None,
    page: Annotated[Page, Query()] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**31 - 1,
            description="the subscribers after this id (the previous "
            "page's next_after): as quick on page 20,000 as on page 1; `page` is then ignored",
        ),
    ] = None,
) -> SubscribersPublic:
    found = manage.search(
        session,
        email=email,
        status=status,
        newsletter=newsletter,
        limit=per_page,
        offset=(page - 1) * per_page,
        after=after,
    )
    return SubscribersPublic(
        items=[_public(s, subs) for s, subs in found.items],
        total=found.total,
        total_capped=found.capped,
        page=page,
        per_page=per_page,
        next_after=found.next_after,
    )


@router.post("", status_code=201, summary="Create a subscriber", responses=STATE)
def create_subscriber(
    body: SubscriberCreate, session: SessionDep, token: TokenDep
) -> SubscriberPublic:
    subscriber = manage.create(
        session,
        email=body.email,
        name=body.name,
        newsletters=body.newsletters,
        status=body.status,
        actor=f"token {token.name}",
    )
    assert subscriber.id is not None
    return _one(session, subscriber.id)


@router.get(
    "/export",
    summary="Subscriptions as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **MISSING},
)
def export_subscribers(
    session: SessionDep,
    settings: SettingsDep,
    newsletter: Annotated[str | None, Query(description="slug or id")] = None,
    status: Annotated[SubscriptionStatus | None, Query()] = None,
) -> StreamingResponse:
    # resolved now, so that an unknown newsletter is a 404 and not a broken stream
    newsletter_id = get_newsletter(session, newsletter).id if newsletter else None

    def stream() -> Iterator[str]:
        # the request's session is closed by the time the body streams: use one of our own
        with db.session_scope(settings.database_url) as own:
            yield from csv_export.export_csv(own, newsletter_id=newsletter_id, status=status)

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@router.post(
    "/import",
    summary="Import a CSV (multipart field 'file', or a text/csv body)",
    responses={**api_errors(400), **MISSING},
    openapi_extra={
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
    },
)
async def import_subscribers(
    request: Request,
    session: SessionDep,
    newsletter: Annotated[
        list[str] | None, Query(description="default newsletters for rows that name none")
    ] = None,
    existing: Annotated[
        Existing, Query(description="existing subscribers' fields: keep (default) or overwrite")
    ] = Existing.keep,
) -> dict[str, Any]:
    """The report of ``csvio.import_csv``: rejected rows are in it, not an error status."""
    with await _csv_body(request) as stream:
        report = await run_in_threadpool(
            csv_import.import_csv,
            session,
            stream,
            newsletters=newsletter or (),
            existing=existing,
        )
    return report.as_dict()


async def _csv_body(request: Request) -> IO[bytes]:
    """The uploaded CSV as a binary file, spooled to disk past ``SPOOL_BYTES``."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the multipart form needs a file field named 'file'")
        await upload.seek(0)
        return upload.file
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    async for piece in request.stream():
        spool.write(piece)
    spool.seek(0)
    return spool


@router.get("/{subscriber_id}", summary="One subscriber with subscriptions", responses=MISSING)
def get_subscriber(subscriber_id: Id, session: SessionDep) -> SubscriberPublic:
    return _one(session, subscriber_id)


@router.patch(
    "/{subscriber_id}",
    summary="Change name, attributes, statuses",
    responses={**MISSING, **STATE},
)
def update_subscriber(
    subscriber_id: Id, body: SubscriberUpdate, session: SessionDep, token: TokenDep
) -> SubscriberPublic:
    given = body.model_fields_set  # a null language or zone: back to the newsletter's
    desk.edit(
        session,
        subscriber_id,
        actor=f"token {token.name}",
        name=body.name,
        attributes=body.attributes,
        language=(body.language or "") if "language" in given else None,
        time_zone=(body.time_zone or "") if "time_zone" in given else None,
    )
    manage.update(
        session,
        subscriber_id,
        statuses=body.subscriptions,
        reactivate=body.reactivate,
        actor=f"token {token.name}",
    )
    return _one(session, subscriber_id)


@router.delete(
    "/{subscriber_id}",
    summary="Erase (GDPR): personal data gone, hash suppressed",
    responses=MISSING,
)
def erase_subscriber(subscriber_id: Id, session: SessionDep, token: TokenDep) -> dict[str, Any]:
    return desk.erase(session, subscriber_id, actor=f"token {token.name}").as_dict()


@router.get(
    "/{subscriber_id}/export",
    summary="Everything about one subscriber (GDPR)",
    responses=MISSING,
)
def export_subscriber(subscriber_id: Id, session: SessionDep, token: TokenDep) -> dict[str, Any]:
    return desk.export(session, subscriber_id, actor=f"token {token.name}")
