"""The digest autopilot over HTTP: ``/api/newsletters/{id}/autopilot...`` (admin API token).

Routes do HTTP only; ``newsletter.autopilot`` checks the schedule, the rules and the sources.

- ``GET    /newsletters/{id}/autopilot``               the settings, the next runs, the sources
- ``PATCH  /newsletters/{id}/autopilot``               change the settings given
- ``POST   /newsletters/{id}/autopilot/sources``       add a feed URL or a library query
- ``PATCH  /newsletters/{id}/autopilot/sources/{sid}`` change a feed's fetch interval
- ``DELETE /newsletters/{id}/autopilot/sources/{sid}`` forget a source
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.autopilot import rules, schedule, sources
from newsletter.models import Source, utcnow
from newsletter.newsletters import get_newsletter

router = APIRouter(
    prefix="/newsletters/{newsletter_id}/autopilot",
    tags=["autopilot"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)


class SourcePublic(BaseModel):
    id: int
    kind: str
    url: str
    tag: str
    section: str
    author: str
    checked_at: datetime | None
    last_result: str
    fetch_minutes: int = Field(description="a feed is fetched again this long after a check")


class AutopilotPublic(BaseModel):
    enabled: bool
    rule: str
    schedule: str = Field(description="the rule as read, with the newsletter's time zone")
    next_runs: list[datetime] = Field(description="the next three runs, UTC")
    lead_hours: int
    sections: list[list[str]] = Field(description="[tag or category, section title] in order")
    other_section: str
    ordering: str
    priority_tag: str
    per_section: int
    lead: str
    nothing_new: str
    note_text: str
    auto_schedule: bool
    lookback_days: int
    catch_up_hours: int = Field(
        description="a run missed while the beat was down is drafted "
        "late if its time passed at most this long ago"
    )
    sources: list[SourcePublic]


class AutopilotUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    rule: str | None = Field(None, max_length=200, examples=["mon 08:00", "0 8 * * 1"])
    lead_hours: int | None = Field(None, ge=0, le=rules.MAX_LEAD_HOURS)
    sections: list[list[str]] | None = Field(None, max_length=50)
    other_section: str | None = Field(None, max_length=200)
    ordering: Literal["newest", "priority"] | None = None
    priority_tag: str | None = Field(None, max_length=200)
    per_section: int | None = Field(None, ge=1, le=50)
    lead: Literal["newest", "priority"] | None = None
    nothing_new: Literal["skip", "note"] | None = None
    note_text: str | None = Field(None, max_length=2000)
    auto_schedule: bool | None = None
    lookback_days: int | None = Field(None, ge=1, le=60)
    catch_up_hours: int | None = Field(None, ge=0, le=rules.MAX_CATCH_UP_HOURS)


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000, description="a feed: RSS, Atom or JSON Feed")
    tag: str = Field("", max_length=200, description="a library query: with this tag")
    section: str = Field("", max_length=200, description="... in this section")
    author: str = Field("", max_length=200, description="... by this author")
    fetch_minutes: int | None = Field(
        None,
        ge=sources.MIN_FETCH_MINUTES,
        le=sources.MAX_FETCH_MINUTES,
        description=f"a feed's fetch interval in minutes ({sources.FETCH_MINUTES} if not given)",
    )


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fetch_minutes: int = Field(ge=sources.MIN_FETCH_MINUTES, le=sources.MAX_FETCH_MINUTES)


def _source(source: Source) -> SourcePublic:
    return SourcePublic.model_validate(source, from_attributes=True)


def _public(session: Session, newsletter_id: int) -> AutopilotPublic:
    nl = get_newsletter(session, newsletter_id)
    pilot = rules.get_autopilot(session, newsletter_id)
    plan = schedule.parse(pilot.rule, nl.time_zone)
    fields: dict[str, Any] = pilot.model_dump(exclude={"id", "newsletter_id", "updated_at"})
    return AutopilotPublic(
        **fields,
        schedule=plan.label,
        next_runs=list(islice(plan.runs_after(utcnow()), 3)),
        sources=[_source(s) for s in sources.list_sources(session, newsletter_id)],
    )


@router.get("", summary="A newsletter's autopilot: schedule, rules, next runs, sources")
def get_autopilot(newsletter_id: Id, session: SessionDep) -> AutopilotPublic:
    return _public(session, newsletter_id)


@router.patch("", summary="Change the autopilot's settings (only those given)")
def update_autopilot(
    newsletter_id: Id, body: AutopilotUpdate, session: SessionDep
) -> AutopilotPublic:
    nl = get_newsletter(session, newsletter_id)
    rules.update_autopilot(session, nl, body.model_dump(exclude_none=True))
    return _public(session, newsletter_id)


@router.post("/sources", status_code=201, summary="Add a feed URL or a library query")
def add_source(
    request: Request, newsletter_id: Id, body: SourceCreate, session: SessionDep
) -> SourcePublic:
    get_newsletter(session, newsletter_id)
    if body.url is not None:
        source = sources.add_feed(
            session, newsletter=newsletter_id, url=body.url, fetch_minutes=body.fetch_minutes
        )
    else:
        source = sources.add_query(
            session,
            newsletter=newsletter_id,
            tag=body.tag,
            section=body.section,
            author=body.author,
        )
    request.state.audit_target = ("source", source.id)
    return _source(source)


@router.patch("/sources/{source_id}", summary="Change a feed's fetch interval")
def update_source(
    newsletter_id: Id, source_id: Id, body: SourceUpdate, session: SessionDep
) -> SourcePublic:
    get_newsletter(session, newsletter_id)
    source = sources.set_fetch_minutes(
        session, source_id, body.fetch_minutes, newsletter_id=newsletter_id
    )
    return _source(source)


@router.delete("/sources/{source_id}", status_code=204, summary="Forget a source")
def remove_source(newsletter_id: Id, source_id: Id, session: SessionDep) -> None:
    get_newsletter(session, newsletter_id)
    sources.remove_source(session, source_id, newsletter_id=newsletter_id)
