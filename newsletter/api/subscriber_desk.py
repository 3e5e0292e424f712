"""One subscriber's story and the desk's actions over HTTP, admin token by role.

Routes do HTTP only: the story is ``newsletter.audience.profile``, the actions
``newsletter.audience.desk`` (each records an event naming the token as the actor; the audit
entry comes from ``api.permissions``). A confirmation email is queued after the answer, as a
public sign-up's is.

- ``GET    /subscribers/{id}/profile``              identity, language and zone, tags,
                                                    subscriptions with consent, events, deliveries
- ``POST   /subscribers/{id}/subscribe``            to one more newsletter: a confirmation email,
                                                    or active at once with ``consent_reason``
- ``POST   /subscribers/{id}/unsubscribe``          from one newsletter
- ``POST   /subscribers/{id}/resend-confirmation``  for a pending subscription (resend window)
- ``POST   /subscribers/{id}/tags``                 add a tag
- ``DELETE /subscribers/{id}/tags/{tag}``           remove one
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from newsletter.api.auth import TokenDep, require_token
from newsletter.api.deps import (
    ConfirmationSenderDep,
    SessionDep,
    SettingsDep,
    queue_confirmation,
)
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token
from newsletter.audience import desk, profile
from newsletter.models import ApiToken

__all__ = ["ProfilePublic", "router"]

router = APIRouter(
    prefix="/subscribers",
    tags=["subscribers"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses=api_errors(401, 403, 404, 422),
)
STATE = api_errors(409)


class ProfileSubscription(BaseModel):
    newsletter_id: int
    newsletter: str
    newsletter_name: str
    status: str
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str | None
    consent_text_version: str | None
    created_at: datetime
    updated_at: datetime
    unsubscribed_at: datetime | None
    confirmation_sent_at: datetime | None
    soft_bounces: int
    last_bounce_at: datetime | None


class ProfileEvent(BaseModel):
    id: int
    kind: str
    at: datetime
    newsletter: str | None
    source: str | None
    ip: str | None
    consent_text_version: str | None
    actor: str = Field(description="who acted: the subscriber, an editor, a token, the CLI, ...")
    detail: dict[str, Any]


class ProfileDelivery(BaseModel):
    issue_id: int
    newsletter: str
    issue_number: int
    issue_title: str
    status: str
    attempts: int
    smtp_response: str | None
    sent_at: datetime | None
    updated_at: datetime | None


class ProfilePublic(BaseModel):
    id: int
    email: str
    name: str
    attributes: dict[str, Any]
    language: str | None = Field(description="BCP 47; null: the newsletter's")
    time_zone: str | None = Field(description="IANA; null: the newsletter's")
    created_at: datetime
    erased: bool
    tags: list[str]
    subscriptions: list[ProfileSubscription]
    events: list[ProfileEvent] = Field(description=f"the newest {profile.EVENTS}, newest first")
    deliveries: list[ProfileDelivery] = Field(
        description=f"the last {profile.DELIVERIES}, newest first"
    )


class NewsletterChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    newsletter: str = Field(max_length=100, description="slug or id", examples=["belarus-weekly"])


class SubscribeBody(NewsletterChoice):
    consent_reason: str | None = Field(
        None,
        max_length=500,
        description="the editor holds their consent (how): active at once, no email",
    )


class SubscribeAnswer(BaseModel):
    newsletter_id: int
    status: str
    confirmation_queued: bool


class TagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(max_length=200, examples=["donor"])


def _actor(token: ApiToken) -> str:
    return f"token {token.name}"


def _profile(session: Session, subscriber_id: int) -> ProfilePublic:
    return ProfilePublic.model_validate(profile.load(session, subscriber_id).as_dict())


@router.get("/{subscriber_id}/profile", summary="One subscriber's whole story")
def get_profile(subscriber_id: Id, session: SessionDep) -> ProfilePublic:
    return _profile(session, subscriber_id)


@router.post(
    "/{subscriber_id}/subscribe", summary="Subscribe to one more newsletter", responses=STATE
)
def subscribe(
    subscriber_id: Id,
    body: SubscribeBody,
    session: SessionDep,
    settings: SettingsDep,
    token: TokenDep,
    send: ConfirmationSenderDep,
    background: BackgroundTasks,
) -> SubscribeAnswer:
    done = desk.subscribe_to(
        session,
        subscriber_id,
        body.newsletter,
        actor=_actor(token),
        consent_text_version=settings.consent_text_version,
        resend_after_seconds=settings.confirmation_resend_seconds,
        consent_reason=body.consent_reason,
    )
    queue_confirmation(background, send, done.confirmation, settings)
    return SubscribeAnswer(
        newsletter_id=done.newsletter_id,
        status=done.status,
        confirmation_queued=done.confirmation is not None,
    )


@router.post(
    "/{subscriber_id}/unsubscribe", summary="Unsubscribe from one newsletter", responses=STATE
)
def unsubscribe(
    subscriber_id: Id, body: NewsletterChoice, session: SessionDep, token: TokenDep
) -> ProfilePublic:
    desk.unsubscribe_from(session, subscriber_id, body.newsletter, actor=_actor(token))
    return _profile(session, subscriber_id)


@router.post(
    "/{subscriber_id}/resend-confirmation",
    summary="Send the confirmation email again (pending only, once per resend window)",
    responses=STATE,
)
def resend_confirmation(
    subscriber_id: Id,
    body: NewsletterChoice,
    session: SessionDep,
    settings: SettingsDep,
    token: TokenDep,
    send: ConfirmationSenderDep,
    background: BackgroundTasks,
) -> SubscribeAnswer:
    request = desk.resend_confirmation(
        session,
        subscriber_id,
        body.newsletter,
        actor=_actor(token),
        consent_text_version=settings.consent_text_version,
        resend_after_seconds=settings.confirmation_resend_seconds,
    )
    queue_confirmation(background, send, request, settings)
    return SubscribeAnswer(
        newsletter_id=request.newsletter_ids[0], status="pending", confirmation_queued=True
    )


@router.post("/{subscriber_id}/tags", summary="Tag a subscriber", responses=STATE)
def add_tag(
    subscriber_id: Id, body: TagBody, session: SessionDep, token: TokenDep
) -> ProfilePublic:
    desk.add_tag(session, subscriber_id, body.tag, actor=_actor(token))
    return _profile(session, subscriber_id)


@router.delete("/{subscriber_id}/tags/{tag}", summary="Remove a tag", responses=STATE)
def remove_tag(
    subscriber_id: Id,
    tag: Annotated[str, Path(max_length=200)],
    session: SessionDep,
    token: TokenDep,
) -> ProfilePublic:
    desk.remove_tag(session, subscriber_id, tag, actor=_actor(token))
    return _profile(session, subscriber_id)
