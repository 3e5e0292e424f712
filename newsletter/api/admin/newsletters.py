"""Newsletters in the editor UI: the list, a form for a new one, a settings page per newsletter.

Routes do HTTP only: the form's text goes to ``newsletters.parse_typed`` as typed, and
``newsletter.newsletters`` checks and stores (the same code as the CLI and the JSON API). A
refused form comes back with what was typed and why (422); nothing is stored. The settings page
also shows the deliverability card (``newsletter.mail.deliverability``): the DNS records the
From domain should publish, and whether the site's base URL is https; and the welcome email's
card (``sending.welcome``): compose it, choose it, turn it on, send the latest issue with it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from sqlmodel import Session
from starlette.responses import Response

from newsletter import newsletters
from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.admin.signup_box import iframe_code, snippet
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import Id
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput, NotFound, UserError
from newsletter.mail import deliverability
from newsletter.models import Newsletter
from newsletter.sending import welcome
from newsletter.sending.checks import qa_config

router = protected_router()

#: the longest text a form field takes; the domain checks each field's own limit after
FIELD_MAX = 6000
DEFAULTS: dict[str, str] = {
    "language": "en",
    "time_zone": "UTC",
    "brand_color": "#b4121b",
    "membership_button": "Become a member",
    "layout": "digest",
    "font": "serif",
    "story_images": "thumbnail",
    "missing_translation": "fallback",
    "spam_threshold": "5.0",
}


def settings_url(newsletter_id: int | None) -> str:
    return f"/admin/newsletters/{newsletter_id}"


def _values(newsletter: Newsletter | None) -> dict[str, str]:
    """What the form shows: each field as text."""
    if newsletter is None:
        return {k: DEFAULTS.get(k, "") for k in newsletters.FIELDS}
    values: dict[str, str] = {}
    for key in newsletters.FIELDS:
        value = getattr(newsletter, key)
        if isinstance(value, bool):
            values[key] = "on" if value else ""
        elif isinstance(value, list):
            values[key] = "\n".join(value)
        elif isinstance(value, float):
            values[key] = f"{value:g}"
        else:
            values[key] = value or ""
    return values


async def posted_fields(request: Request) -> dict[str, str]:
    """The newsletter fields of the posted form, as typed; an unticked box is absent (no)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name in newsletters.FIELDS:
        value = form.get(name, "")
        if not isinstance(value, str):
            raise InvalidInput(f"'{name}' must be text, not a file")
        if len(value) > FIELD_MAX:
            raise InvalidInput(f"'{name}' is longer than {FIELD_MAX} characters")
        fields[name] = value
    return fields


PostedFields = Annotated[dict[str, str], Depends(posted_fields)]


@router.get("/newsletters", include_in_schema=False)
def newsletter_list(request: Request, session: SessionDep) -> Response:
    return views.render(
        request,
        "newsletters.html.j2",
        title="Newsletters",
        items=newsletters.list_newsletters(session),
    )


@router.get("/newsletters/new", include_in_schema=False)
def new_newsletter(request: Request, settings: SettingsDep) -> Response:
    return _form_page(request, settings, None)


@router.post("/newsletters", include_in_schema=False)
def create_newsletter(
    request: Request, session: SessionDep, settings: SettingsDep, typed: PostedFields
) -> Response:
    try:
        created = newsletters.create_newsletter(
            session, newsletters.parse_typed(typed), relays=settings.relay_names()
        )
    except UserError as exc:
        return _refused(request, session, settings, None, typed, exc)
    return views.redirect(
        request, settings_url(created.id), notice=f"Newsletter {created.name} created."
    )


@router.get("/newsletters/{newsletter_id}", include_in_schema=False)
def newsletter_settings(
    request: Request, newsletter_id: Id, session: SessionDep, settings: SettingsDep
) -> Response:
    found = newsletters.get_newsletter(session, newsletter_id)
    return _form_page(request, settings, found, session=session)


@router.post("/newsletters/{newsletter_id}", include_in_schema=False)
def update_newsletter(
    request: Request,
    newsletter_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    typed: PostedFields,
) -> Response:
    try:
        newsletters.update_newsletter(
            session, newsletter_id, newsletters.parse_typed(typed), relays=settings.relay_names()
        )
    except NotFound:
        raise
    except UserError as exc:
        return _refused(request, session, settings, newsletter_id, typed, exc)
    return views.redirect(request, settings_url(newsletter_id), notice="Settings saved.")


def _form_page(
    request: Request,
    settings: Settings,
    newsletter: Newsletter | None,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    session: Session | None = None,
) -> Response:
    nid = newsletter.id if newsletter else None
    return views.render(
        request,
        "newsletter_form.html.j2",
        title=f"Settings: {newsletter.name}" if newsletter else "New newsletter",
        newsletter=newsletter,
        values=values or _values(newsletter),
        card=deliverability.records_for(newsletter, settings) if newsletter else None,
        box=_box(settings, newsletter) if newsletter and newsletter.id else None,
        flash={"kind": "error", "text": error} if error else None,
        welcome=welcome.welcome_of(session, nid) if session and nid else None,
        standing=welcome.standing_issues(session, nid) if session and nid else [],
        relays=settings.relay_names(),
    )


def _box(settings: Settings, newsletter: Newsletter) -> dict[str, str]:
    """The sign-up box panel: the code to paste and the preview's address."""
    return {
        "snippet": snippet(settings, newsletter),
        "iframe": iframe_code(settings, newsletter),
        "preview": f"/embed/{newsletter.slug}",
        "version": settings.consent_text_version,
    }


def _refused(
    request: Request,
    session: SessionDep,
    settings: Settings,
    newsletter_id: int | None,
    typed: dict[str, str],
    exc: UserError,
) -> Response:
    """The form again with what was typed and why it was refused (nothing was stored)."""
    session.rollback()
    current = newsletters.get_newsletter(session, newsletter_id) if newsletter_id else None
    response = _form_page(request, settings, current, values=typed, error=str(exc), session=session)
    response.status_code = 422
    return response


# ---------------------------------------------------------------- the welcome email


def _checked(value: str) -> bool:
    return value == "on"


@router.post("/newsletters/{newsletter_id}/welcome", include_in_schema=False)
def save_welcome(
    request: Request,
    newsletter_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    issue_id: Annotated[str, Form(max_length=12)] = "",
    enabled: Annotated[str, Form(max_length=3)] = "",
    with_latest: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """The welcome card's form: which standing issue, on or off, the latest issue with it."""
    back = settings_url(newsletter_id) + "#welcome"
    if issue_id.strip() and not (issue_id.strip().isascii() and issue_id.strip().isdigit()):
        raise InvalidInput("choose a welcome email from the list")
    chosen = int(issue_id) if issue_id.strip() else None
    # a refusal (no welcome chosen, QA blocks it) leaves the route: back with the reason, no
    # audit entry (the admin error handler)
    welcome.configure(
        session,
        newsletter=newsletter_id,
        issue_id=chosen,
        enabled=_checked(enabled),
        with_latest=_checked(with_latest),
        checks=qa_config(settings),
    )
    return views.redirect(request, back, notice="Welcome email settings saved.")


@router.post("/newsletters/{newsletter_id}/welcome/new", include_in_schema=False)
def create_welcome(
    request: Request, newsletter_id: Id, session: SessionDep, settings: SettingsDep
) -> Response:
    """A new standing welcome issue, chosen when none was, opened in the composer."""
    issue = welcome.create(session, newsletter=newsletter_id)
    row = welcome.welcome_of(session, newsletter_id)
    if row.issue is None:
        welcome.configure(
            session,
            newsletter=newsletter_id,
            issue_id=issue.id,
            checks=qa_config(settings),
        )
    request.state.audit_target = ("issue", issue.id)
    return views.redirect(
        request, f"/admin/issues/{issue.id}", notice="Welcome email created: write it here."
    )


@router.post("/issues/{issue_id}/publish-welcome", include_in_schema=False)
def publish_welcome(
    request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep
) -> Response:
    """Freeze the welcome's text as it stands: what new subscribers get from now on."""
    welcome.publish(session, issue_id=issue_id, checks=qa_config(settings))
    return views.redirect(
        request,
        f"/admin/issues/{issue_id}#send-panel",
        notice="Published: new subscribers get this text.",
    )
