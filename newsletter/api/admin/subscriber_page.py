"""The subscriber page: one subscriber's whole story and the desk's actions on them.

``/admin/subscribers/{id}`` shows identity, language and zone, attributes, tags, each
subscription with its consent record, the event history with who acted, and the last
deliveries. Its forms edit, tag, subscribe (a confirmation email, or consent recorded with a
reason), unsubscribe, resend a confirmation, export (a JSON download) and erase (the address
typed again). Routes do HTTP only: the story is ``audience.profile``, the actions
``audience.desk``, whose events name the editor; the role check and the audit entry come from
``api.permissions``. A refused form comes back with what was typed and the reason (409/422).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from fastapi import BackgroundTasks, Form, Request
from sqlmodel import Session
from starlette.responses import Response

from newsletter.access.editors import SignedIn
from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import (
    ConfirmationSenderDep,
    SessionDep,
    SettingsDep,
    queue_confirmation,
)
from newsletter.api.inputs import Id
from newsletter.audience import desk, fields, profile, subscribers
from newsletter.exceptions import InvalidInput, InvalidState, NotFound, UserError
from newsletter.models import SubscriptionStatus

__all__ = ["router"]

router = protected_router()

#: what each subscription status allows from this page
LEAVABLE = (SubscriptionStatus.pending, SubscriptionStatus.active)
SUBSCRIBE_LOCKED = (SubscriptionStatus.bounced, SubscriptionStatus.complained)
Text = Annotated[str, Form(max_length=1000)]
Big = Annotated[str, Form(max_length=fields.ATTRIBUTES_MAX_BYTES * 2)]


def page_url(subscriber_id: int) -> str:
    return f"/admin/subscribers/{subscriber_id}"


def _actor(request: Request) -> str:
    editor: SignedIn | None = getattr(request.state, "editor", None)
    return f"editor {editor.email}" if editor else "editor"


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones() | {"UTC"})


def _page(
    request: Request,
    session: Session,
    subscriber_id: int,
    *,
    typed: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    story = profile.load(session, subscriber_id)
    person = story.subscriber
    values = {
        "name": person.name,
        "language": person.language or "",
        "time_zone": person.time_zone or "",
        "attributes": json.dumps(person.attributes, indent=2, ensure_ascii=False),
        "tag": "",
        "newsletter": "",
        "mode": "confirm",
        "reason": "",
        "typed": "",
    } | (typed or {})
    held = {s.newsletter_id: s.status for s in story.subscriptions}
    offered = [
        n
        for n in subscribers.list_newsletters(session)
        if held.get(n.id or 0) not in (SubscriptionStatus.active, *SUBSCRIBE_LOCKED)
    ]
    return views.render(
        request,
        "subscriber.html.j2",
        status=status,
        title=story.subscriber.email if not story.erased else f"Subscriber {subscriber_id}",
        story=story,
        values=values,
        offered=offered,
        leavable=[s.value for s in LEAVABLE],
        labels=profile.LABELS,
        describe=profile.describe,
        zones=_zones(),
        key_max=fields.KEY_MAX,
        flash={"kind": "error", "text": error} if error else None,
    )


def _refused(
    request: Request,
    session: Session,
    subscriber_id: int,
    exc: UserError,
    typed: dict[str, str],
) -> Response:
    """The page again with what was typed and why it was refused (nothing was stored)."""
    if isinstance(exc, NotFound):
        raise exc
    session.rollback()
    request.state.refused = True  # nothing changed: no audit entry
    status = 409 if isinstance(exc, InvalidState) else 422
    return _page(request, session, subscriber_id, typed=typed, error=str(exc), status=status)


@router.get("/subscribers/{subscriber_id}", include_in_schema=False)
def subscriber_page(request: Request, subscriber_id: Id, session: SessionDep) -> Response:
    return _page(request, session, subscriber_id)


@router.post("/subscribers/{subscriber_id}/edit", include_in_schema=False)
def edit(
    request: Request,
    subscriber_id: Id,
    session: SessionDep,
    name: Text = "",
    language: Text = "",
    time_zone: Text = "",
) -> Response:
    typed = {"name": name, "language": language, "time_zone": time_zone}
    try:
        changed = desk.edit(
            session,
            subscriber_id,
            actor=_actor(request),
            name=name,
            language=language,
            time_zone=time_zone,
        )
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, typed)
    notice = f"Saved ({', '.join(changed).replace('_', ' ')})." if changed else "Nothing changed."
    return views.redirect(request, page_url(subscriber_id), notice=notice)


@router.post("/subscribers/{subscriber_id}/attributes", include_in_schema=False)
def save_attributes(
    request: Request, subscriber_id: Id, session: SessionDep, attributes: Big = ""
) -> Response:
    try:
        value = fields.parse_attributes(attributes)
        changed = desk.edit(session, subscriber_id, actor=_actor(request), attributes=value)
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {"attributes": attributes})
    notice = "Attributes saved." if changed else "Nothing changed."
    return views.redirect(request, page_url(subscriber_id) + "#attributes", notice=notice)


@router.post("/subscribers/{subscriber_id}/tags", include_in_schema=False)
def add_tag(request: Request, subscriber_id: Id, session: SessionDep, tag: Text = "") -> Response:
    try:
        added = desk.add_tag(session, subscriber_id, tag, actor=_actor(request))
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {"tag": tag})
    notice = f"Tagged {tag.strip()!r}." if added else f"They already had the tag {tag.strip()!r}."
    return views.redirect(request, page_url(subscriber_id) + "#tags", notice=notice)


@router.post("/subscribers/{subscriber_id}/tags/remove", include_in_schema=False)
def remove_tag(request: Request, subscriber_id: Id, session: SessionDep, tag: Text) -> Response:
    try:
        removed = desk.remove_tag(session, subscriber_id, tag, actor=_actor(request))
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {})
    notice = f"Tag {tag!r} removed." if removed else f"They did not have the tag {tag!r}."
    return views.redirect(request, page_url(subscriber_id) + "#tags", notice=notice)


@router.post("/subscribers/{subscriber_id}/subscribe", include_in_schema=False)
def subscribe(
    request: Request,
    subscriber_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    send: ConfirmationSenderDep,
    background: BackgroundTasks,
    newsletter: Text = "",
    mode: Text = "confirm",
    reason: Text = "",
) -> Response:
    typed = {"newsletter": newsletter, "mode": mode, "reason": reason}
    try:
        if not newsletter.strip():
            raise InvalidInput("choose a newsletter")
        done = desk.subscribe_to(
            session,
            subscriber_id,
            newsletter.strip(),
            actor=_actor(request),
            consent_text_version=settings.consent_text_version,
            resend_after_seconds=settings.confirmation_resend_seconds,
            consent_reason=reason if mode == "consent" else None,
        )
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, typed)
    queue_confirmation(background, send, done.confirmation, settings)
    notice = (
        "Confirmation email sent: they are pending until they click its link."
        if done.confirmation
        else "Subscribed (active), with your reason on record."
    )
    return views.redirect(request, page_url(subscriber_id) + "#subscriptions", notice=notice)


@router.post("/subscribers/{subscriber_id}/unsubscribe", include_in_schema=False)
def unsubscribe(
    request: Request, subscriber_id: Id, session: SessionDep, newsletter: Text
) -> Response:
    try:
        desk.unsubscribe_from(session, subscriber_id, newsletter, actor=_actor(request))
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {})
    return views.redirect(
        request, page_url(subscriber_id) + "#subscriptions", notice="Unsubscribed."
    )


@router.post("/subscribers/{subscriber_id}/resend", include_in_schema=False)
def resend(
    request: Request,
    subscriber_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    send: ConfirmationSenderDep,
    background: BackgroundTasks,
    newsletter: Text,
) -> Response:
    try:
        confirmation = desk.resend_confirmation(
            session,
            subscriber_id,
            newsletter,
            actor=_actor(request),
            consent_text_version=settings.consent_text_version,
            resend_after_seconds=settings.confirmation_resend_seconds,
        )
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {})
    queue_confirmation(background, send, confirmation, settings)
    return views.redirect(
        request, page_url(subscriber_id) + "#subscriptions", notice="Confirmation email sent."
    )


@router.get("/subscribers/{subscriber_id}/export.json", include_in_schema=False)
def export_data(request: Request, subscriber_id: Id, session: SessionDep) -> Response:
    data: dict[str, Any] = desk.export(session, subscriber_id, actor=_actor(request))
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False, default=str),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="subscriber-{subscriber_id}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/subscribers/{subscriber_id}/erase", include_in_schema=False)
def erase(request: Request, subscriber_id: Id, session: SessionDep, typed: Text = "") -> Response:
    try:
        done = desk.erase(session, subscriber_id, actor=_actor(request), typed=typed)
    except UserError as exc:
        return _refused(request, session, subscriber_id, exc, {"typed": typed})
    return views.redirect(
        request,
        page_url(subscriber_id),
        notice=(
            f"Erased: {done.subscriptions} subscriptions and {done.events} events deleted, "
            f"{done.deliveries} deliveries kept without their SMTP replies."
        ),
    )
