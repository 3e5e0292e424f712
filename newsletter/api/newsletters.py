"""Newsletters over HTTP: ``/api/newsletters...``, admin token only.

Routes do HTTP only: ``newsletter.newsletters`` checks and stores (the same code as the CLI and
the editor UI). A field that does not pass (an address, an http logo URL, a colour, a taken
slug, an unknown time zone, a control character) is a 422 naming it, and nothing is stored.

- ``GET   /newsletters``                every newsletter, oldest first
- ``POST  /newsletters``                create (slug, name, from_email, postal_address required)
- ``GET   /newsletters/{newsletter}``   one, by slug or id
- ``PATCH /newsletters/{newsletter}``   change the fields given, the rest stay
- ``GET|PATCH /newsletters/{newsletter}/welcome``  the welcome email: issue, on/off, latest too
- ``POST  /newsletters/{newsletter}/welcome/issue``   create a standing welcome issue
- ``POST  /newsletters/{newsletter}/welcome/publish`` freeze its text for new subscribers
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from newsletter import newsletters
from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import MAX_ID, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.exceptions import InvalidInput
from newsletter.models import Newsletter
from newsletter.sending import welcome
from newsletter.sending.checks import qa_config

router = APIRouter(
    prefix="/newsletters",
    tags=["newsletters"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 422),
)
MISSING = api_errors(404)
Ref = Annotated[
    str,
    Path(max_length=80, description="the newsletter's slug or id", examples=["belarus-weekly"]),
]
OneLine = Annotated[str, Field(max_length=500)]
Url = Annotated[str, Field(max_length=2000, description="absolute https URL, or empty")]
Sections = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=20)]
# newsletters.CHOICES, spelt out for the schema
Layout = Literal["digest", "alert", "letter"]
Font = Literal["serif", "sans"]
StoryImages = Literal["thumbnail", "none"]
MissingTranslation = Literal["fallback", "block"]


class NewsletterPublic(BaseModel):
    id: int
    slug: str
    name: str
    from_name: str
    from_email: str
    reply_to: str | None
    postal_address: str
    language: str
    time_zone: str
    brand_color: str
    logo_url: str
    masthead: str
    description: str = Field(description="about this newsletter: public pages, archive, feed")
    footer_text: str = Field(description="why you get this: the email footer")
    website_url: str
    membership_cta: bool
    membership_text: str
    membership_button: str
    membership_url: str
    default_sections: list[str]
    requires_review: bool
    track_clicks: bool = Field(description="links rewritten to /r/ and clicks counted")
    track_opens: bool = Field(description="an open pixel in the email")
    signup_pitch: str = Field(description="the sign-up box's one line (GET /embed/{slug})")
    layout: Layout = Field(description="the email's layout")
    font: Font
    story_images: StoryImages = Field(description="the digest's story images")
    missing_translation: MissingTranslation = Field(
        description="an edition's untranslated field: the default's text, or QA blocks the send"
    )
    spam_threshold: float = Field(description="a SpamAssassin score at or over it blocks a send")
    relay: str = Field(description="the SMTP relay its issues go through; empty: all, by weight")
    created_at: datetime


class NewsletterFields(BaseModel):
    """Every field an editor sets; on PATCH only the ones sent change."""

    model_config = ConfigDict(extra="forbid")

    name: OneLine | None = None
    from_name: OneLine | None = None
    reply_to: Annotated[str, Field(max_length=320)] | None = None
    language: Annotated[str, Field(max_length=35, examples=["en", "be", "ru"])] | None = None
    time_zone: Annotated[str, Field(max_length=64, examples=["Europe/Minsk"])] | None = None
    brand_color: Annotated[str, Field(max_length=7, examples=["#b4121b"])] | None = None
    logo_url: Url | None = None
    masthead: OneLine | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    footer_text: Annotated[str, Field(max_length=2000)] | None = None
    website_url: Url | None = None
    membership_cta: bool | None = None
    membership_text: OneLine | None = None
    membership_button: Annotated[str, Field(max_length=60)] | None = None
    membership_url: Url | None = None
    default_sections: Sections | None = None
    requires_review: bool | None = None
    track_clicks: bool | None = None
    track_opens: bool | None = None
    signup_pitch: Annotated[str, Field(max_length=200)] | None = None
    layout: Layout | None = None
    font: Font | None = None
    story_images: StoryImages | None = None
    missing_translation: MissingTranslation | None = None
    spam_threshold: Annotated[float, Field(ge=-10, le=20, allow_inf_nan=False)] | None = None
    slug: Annotated[str, Field(max_length=80, examples=["belarus-weekly"])] | None = None
    from_email: Annotated[str, Field(max_length=320)] | None = None
    postal_address: OneLine | None = None
    relay: Annotated[str, Field(max_length=64, examples=["default"])] | None = None


class NewsletterCreate(NewsletterFields):
    slug: Annotated[str, Field(max_length=80, examples=["belarus-weekly"])]
    name: OneLine
    from_email: Annotated[str, Field(max_length=320, examples=["weekly@news.example.org"])]
    postal_address: OneLine


def _public(newsletter: Newsletter) -> NewsletterPublic:
    return NewsletterPublic.model_validate(newsletter, from_attributes=True)


def _given(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent; an explicit null on a text field clears it."""
    fields = body.model_dump(exclude_unset=True)
    return {k: ("" if v is None and k not in newsletters.FLAGS else v) for k, v in fields.items()}


@router.get("", summary="Every newsletter")
def list_newsletters(session: SessionDep) -> list[NewsletterPublic]:
    return [_public(n) for n in newsletters.list_newsletters(session)]


@router.post("", status_code=201, summary="Create a newsletter")
def create_newsletter(
    body: NewsletterCreate, session: SessionDep, settings: SettingsDep
) -> NewsletterPublic:
    relays = settings.relay_names()
    return _public(newsletters.create_newsletter(session, _given(body), relays=relays))


@router.get("/{newsletter}", summary="One newsletter (slug or id)", responses=MISSING)
def get_newsletter(newsletter: Ref, session: SessionDep) -> NewsletterPublic:
    return _public(newsletters.get_newsletter(session, newsletter))


@router.patch("/{newsletter}", summary="Change a newsletter's settings", responses=MISSING)
def update_newsletter(
    newsletter: Ref, body: NewsletterFields, session: SessionDep, settings: SettingsDep
) -> NewsletterPublic:
    relays = settings.relay_names()
    return _public(newsletters.update_newsletter(session, newsletter, _given(body), relays=relays))


# ---------------------------------------------------------------- the welcome email


class WelcomePublic(BaseModel):
    enabled: bool
    with_latest: bool = Field(description="the latest sent issue goes with the welcome")
    issue_id: int | None = Field(description="the standing welcome issue (edit it as any issue)")
    published_at: datetime | None = Field(description="when the copy new subscribers get froze")
    sent: int = Field(description="welcome emails sent so far")
    waiting: int


class WelcomeFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    with_latest: bool | None = None
    issue_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None


class IssueCreated(BaseModel):
    issue_id: int
    title: str


def _welcome(state: welcome.Welcome) -> WelcomePublic:
    return WelcomePublic(
        enabled=state.enabled,
        with_latest=state.with_latest,
        issue_id=state.issue.id if state.issue else None,
        published_at=state.published_at,
        sent=state.sent,
        waiting=state.waiting,
    )


@router.get("/{newsletter}/welcome", summary="The welcome email's settings", responses=MISSING)
def get_welcome(newsletter: Ref, session: SessionDep) -> WelcomePublic:
    return _welcome(welcome.welcome_of(session, newsletter))


@router.patch(
    "/{newsletter}/welcome",
    summary="Choose the welcome issue, turn it on or off, the latest issue with it",
    responses=api_errors(404, 409),
)
def update_welcome(
    newsletter: Ref, body: WelcomeFields, session: SessionDep, settings: SettingsDep
) -> WelcomePublic:
    state = welcome.configure(
        session,
        newsletter=newsletter,
        issue_id=body.issue_id,
        enabled=body.enabled,
        with_latest=body.with_latest,
        checks=qa_config(settings),
    )
    return _welcome(state)


@router.post(
    "/{newsletter}/welcome/issue",
    status_code=201,
    summary="Create a standing welcome issue (then edit it as any issue)",
    responses=MISSING,
)
def create_welcome_issue(newsletter: Ref, session: SessionDep, request: Request) -> IssueCreated:
    issue = welcome.create(session, newsletter=newsletter)
    request.state.audit_target = ("issue", issue.id)
    return IssueCreated(issue_id=issue.id, title=issue.title)


@router.post(
    "/{newsletter}/welcome/publish",
    summary="Freeze the welcome issue's current text for new subscribers",
    responses=api_errors(404, 409),
)
def publish_welcome(newsletter: Ref, session: SessionDep, settings: SettingsDep) -> WelcomePublic:
    state = welcome.welcome_of(session, newsletter)
    if state.issue is None:
        raise InvalidInput("no welcome issue chosen: create one first")
    welcome.publish(session, issue_id=state.issue.id, checks=qa_config(settings))  # type: ignore[arg-type]
    return _welcome(welcome.welcome_of(session, newsletter))
