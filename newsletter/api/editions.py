"""An issue's editions by language over HTTP: ``/api/issues/{id}/editions...``, admin token only.

- ``GET    /issues/{id}/editions``                       every edition with its stories' text
- ``POST   /issues/{id}/editions``                       add one ({"language": "be"})
- ``PATCH  /issues/{id}/editions/{language}``            subject, preheader, intro_md, title
- ``PUT    /issues/{id}/editions/{language}/items/{item_id}``  a story's headline, blurb, alt
- ``PUT    /issues/{id}/editions/{language}/sections/{section_id}``  a section's title
- ``DELETE /issues/{id}/editions/{language}``

Routes do HTTP only (``content.editions``); an empty field is untranslated (the newsletter's
``missing_translation`` says whether QA blocks it or the default's text is sent).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.content import editions
from newsletter.content.editions import EditionText

router = APIRouter(
    prefix="/issues",
    tags=["editions"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)
STATE = api_errors(409)
Language = str


class EditionNew(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: str = Field(max_length=35, examples=["be", "ru"], description="BCP 47")


class EditionFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, max_length=200)
    preheader: str | None = Field(None, max_length=300)
    intro_md: str | None = Field(None, max_length=100_000, description="Markdown")
    title: str | None = Field(None, max_length=200)


class StoryText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headline: str | None = Field(None, max_length=200)
    blurb: str | None = Field(None, max_length=100_000)
    image_alt: str | None = Field(None, max_length=300, description="the image described")


def _public(text: EditionText) -> dict[str, Any]:
    e = text.edition
    return {
        "language": e.language,
        "subject": e.subject,
        "preheader": e.preheader,
        "intro_md": e.intro_md,
        "title": e.title,
        "section_titles": e.section_titles,
        "items": {
            str(item_id): {"headline": o.headline, "blurb": o.blurb, "image_alt": o.image_alt}
            for item_id, o in sorted(text.items.items())
        },
    }


def _one(session: Session, issue_id: int, language: str) -> dict[str, Any]:
    wanted = editions.get_edition(session, issue_id=issue_id, language=language)
    found = [t for t in editions.list_editions(session, issue_id) if t.edition.id == wanted.id]
    return _public(found[0])


@router.get("/{issue_id}/editions", summary="The issue's editions by language")
def list_editions(issue_id: Id, session: SessionDep) -> list[dict[str, Any]]:
    return [_public(t) for t in editions.list_editions(session, issue_id)]


@router.post("/{issue_id}/editions", status_code=201, summary="Add an edition", responses=STATE)
def add_edition(issue_id: Id, body: EditionNew, session: SessionDep) -> dict[str, Any]:
    edition = editions.add_edition(session, issue_id=issue_id, language=body.language)
    return _one(session, issue_id, edition.language)


@router.patch("/{issue_id}/editions/{language}", summary="Set an edition's text", responses=STATE)
def update_edition(
    issue_id: Id, language: Language, body: EditionFields, session: SessionDep
) -> dict[str, Any]:
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    editions.set_fields(session, issue_id=issue_id, language=language, values=values)
    return _one(session, issue_id, language)


@router.put(
    "/{issue_id}/editions/{language}/items/{item_id}",
    summary="Set a story's headline, blurb and image alt text in an edition",
    responses=STATE,
)
def set_story(
    issue_id: Id, language: Language, item_id: Id, body: StoryText, session: SessionDep
) -> dict[str, Any]:
    editions.set_item(
        session,
        issue_id=issue_id,
        language=language,
        item_id=item_id,
        headline=body.headline,
        blurb=body.blurb,
        image_alt=body.image_alt,
    )
    return _one(session, issue_id, language)


class SectionText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=200, description='the section\'s title ("": untranslated)')


@router.put(
    "/{issue_id}/editions/{language}/sections/{section_id}",
    summary="Set a section's title in an edition",
    responses=STATE,
)
def set_section(
    issue_id: Id, language: Language, section_id: Id, body: SectionText, session: SessionDep
) -> dict[str, Any]:
    editions.set_section(
        session, issue_id=issue_id, language=language, section_id=section_id, title=body.title
    )
    return _one(session, issue_id, language)


@router.delete(
    "/{issue_id}/editions/{language}",
    status_code=204,
    summary="Remove an edition",
    responses=STATE,
)
def remove_edition(issue_id: Id, language: Language, session: SessionDep) -> None:
    editions.remove_edition(session, issue_id=issue_id, language=language)
