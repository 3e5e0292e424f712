"""Segments over HTTP: ``/api/segments...``, admin token only (the audience's read/write).

Routes do HTTP only; ``newsletter.audience.segments`` checks the rules, counts and tags.

- ``GET    /segments``              every segment (``?newsletter=`` its own and the shared)
- ``POST   /segments``              create ``{"name", "rules", "newsletter"}``
- ``POST   /segments/count``        live count of unsaved rules ``{"rules", "newsletter"}``
- ``POST   /segments/tags``         add or remove a tag on a segment or a search result
- ``GET|PATCH|DELETE /segments/{id}``  one, with its size; change; delete (unless an issue
                                     is sent to it)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from newsletter.api.auth import TokenDep, require_token
from newsletter.api.deps import SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.audience import segments
from newsletter.exceptions import InvalidInput
from newsletter.models import Segment, SubscriptionStatus
from newsletter.newsletters import get_newsletter

router = APIRouter(
    prefix="/segments",
    tags=["segments"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)
STATE = api_errors(409)

Rules = Annotated[
    dict[str, Any],
    Field(
        description="a group: {match: all|any, conditions: [...]}; see the README's Segments",
        examples=[{"match": "all", "conditions": [{"kind": "tag", "tag": "donor"}]}],
    ),
]


class SegmentPublic(BaseModel):
    id: int
    name: str
    newsletter_id: int | None
    rules: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str
    size: int | None = Field(None, description="who it holds now (one segment's answer only)")


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    rules: Rules
    newsletter: str | None = Field(None, max_length=100, description="slug or id; none: shared")


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    rules: Rules | None = None
    newsletter: str | None = Field(None, max_length=100)


class CountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Rules
    newsletter: str | None = Field(None, max_length=100, description="count its recipients")


class TagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(max_length=64)
    remove: bool = False
    segment: int | None = Field(None, ge=1, description="a saved segment, or the search below")
    email: str | None = Field(None, max_length=320, description="search: address contains")
    status: SubscriptionStatus | None = None
    newsletter: str | None = Field(None, max_length=100, description="search: slug or id")


def _public(segment: Segment, size: int | None = None) -> SegmentPublic:
    return SegmentPublic.model_validate(dict(segments.as_mapping(segment, size)))


def _nid(session: Session, newsletter: str | None) -> int | None:
    return get_newsletter(session, newsletter).id if newsletter else None


@router.get("", summary="Every segment")
def list_segments(
    session: SessionDep,
    newsletter: Annotated[str | None, Query(description="slug or id")] = None,
) -> list[SegmentPublic]:
    found = segments.list_segments(session, newsletter_id=_nid(session, newsletter))
    return [_public(s) for s in found]


@router.post("", status_code=201, summary="Create a segment")
def create_segment(
    request: Request, body: SegmentCreate, session: SessionDep, token: TokenDep
) -> SegmentPublic:
    segment = segments.create(
        session,
        name=body.name,
        rules=body.rules,
        newsletter=body.newsletter,
        created_by=f"token {token.name}",
    )
    request.state.audit_target = ("segment", segment.id)
    return _public(segment, segments.count(session, segment))


@router.post("/count", summary="How many unsaved rules hold now (a live count)")
def count_rules(body: CountBody, session: SessionDep) -> dict[str, int]:
    rules = segments.check_rules(body.rules, session)
    return {
        "count": segments.count_rules(session, rules, newsletter_id=_nid(session, body.newsletter))
    }


@router.post("/tags", summary="Add or remove a tag on a segment or a search result")
def tag_subscribers(body: TagBody, session: SessionDep) -> dict[str, Any]:
    if body.segment is not None:
        if body.email or body.status or body.newsletter:
            raise InvalidInput("name a segment or a search, not both")
        segment = segments.get(session, body.segment)
        rules, nid = segments.rules_of(segment), segment.newsletter_id
    else:
        nid = None
        rules = segments.search_rules(
            email=body.email, status=body.status, newsletter=_nid(session, body.newsletter)
        )
    return segments.tag(session, rules, body.tag, remove=body.remove, newsletter_id=nid).as_dict()


@router.get("/{segment_id}", summary="One segment with its size now")
def get_segment(segment_id: Id, session: SessionDep) -> SegmentPublic:
    segment = segments.get(session, segment_id)
    return _public(segment, segments.count(session, segment))


@router.patch("/{segment_id}", summary="Change name, rules or newsletter")
def update_segment(segment_id: Id, body: SegmentUpdate, session: SessionDep) -> SegmentPublic:
    segment = segments.update(
        session, segment_id, name=body.name, rules=body.rules, newsletter=body.newsletter
    )
    return _public(segment, segments.count(session, segment))


@router.delete("/{segment_id}", status_code=204, summary="Delete", responses=STATE)
def delete_segment(segment_id: Id, session: SessionDep) -> None:
    segments.delete_segment(session, segment_id)
