"""The personal links' pages: confirmation, unsubscribe (RFC 8058 one-click), preferences.

No login, no cookie, no CSRF token: a personal link's signed token is the capability, bound to
one subscriber and one purpose (``newsletter.audience.links``). A token that does not verify
(forged, altered, expired, made for another purpose, or naming an erased subscriber) gets a 400
page that says so, and nothing changes.

=================================  ==========================================================
``GET  /confirm/{token}``          a page with one button; ``POST`` confirms. Mail scanners
                                   open links (GET), so a GET must never confirm (nor
                                   unsubscribe): the person's click does
``GET  /unsubscribe/{token}``      a page with one button (and "all newsletters")
``POST /unsubscribe/{token}``      RFC 8058 one-click (``List-Unsubscribe=One-Click``, form-
                                   encoded or multipart) or that button: unsubscribed at once
``GET|POST /preferences/{token}``  newsletters, name, unsubscribe from all
=================================  ==========================================================

The ``mailto:`` variant of List-Unsubscribe is processed by the bounce/mailbox path
(``newsletter bounces process``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form
from sqlmodel import Session
from starlette.responses import HTMLResponse

from newsletter import i18n
from newsletter.api.deps import (
    Client,
    ClientDep,
    Dispatcher,
    DispatcherDep,
    SessionDep,
    SettingsDep,
)
from newsletter.api.errors import page_errors, short
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.pages import page
from newsletter.audience import lifecycle, preference_centre, subscribers
from newsletter.audience.consent import consent_text, tracking_notice
from newsletter.audience.links import (
    ConfirmData,
    Purpose,
    TokenData,
    make_token,
    read_confirm_token,
    read_token,
)
from newsletter.config import Settings
from newsletter.content.archive_editions import language_name
from newsletter.exceptions import InvalidInput, InvalidLink
from newsletter.i18n import N_
from newsletter.models import Newsletter, SubscriptionStatus
from newsletter.newsletters import time_zones

log = logging.getLogger(__name__)
router = APIRouter(tags=["public pages"], route_class=StrictRoute, responses=page_errors())

#: a personal link's page: 400 for a link that does not verify; a POST's body is capped (413)
LINK_PAGE = page_errors(400)
LINK_POST = page_errors(400, 413, 422)

ONE_CLICK = "One-Click"


def _bad_link(exc: InvalidLink) -> HTMLResponse:
    reason = short(str(exc))
    return page("bad_link.html.j2", status=400, title=N_("This link does not work"), reason=reason)


def _choices(
    session: Session, subscriber_id: int, newsletter_ids: Sequence[int] | None = None
) -> preference_centre.Preferences:
    """The subscriber and their newsletters (only ``newsletter_ids`` when given)."""
    prefs = preference_centre.preferences(session, subscriber_id)
    if newsletter_ids is None:
        return prefs
    return preference_centre.Preferences(
        prefs.subscriber, [c for c in prefs.choices if c[0].id in newsletter_ids]
    )


def _tracking(settings: Settings, offered: Iterable[Newsletter]) -> str:
    """What the page says about counting clicks and opens ("" when none of them does)."""
    return tracking_notice(offered, retention_days=settings.track_retention_days)


def _confirm_data(settings: Settings, token: str) -> ConfirmData:
    return read_confirm_token(
        settings.secret_key, token, max_age=settings.confirmation_max_age_seconds
    )


@router.get(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirmation page",
    responses=LINK_PAGE,
)
def confirm_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """A page with one button; opening the link (as mail scanners do) confirms nothing."""
    try:
        data = _confirm_data(settings, token)
        view = _choices(session, data.subscriber_id, data.newsletter_ids)
    except InvalidLink as exc:
        return _bad_link(exc)
    waiting = [nl for nl, status in view.choices if status != SubscriptionStatus.active]
    return page(
        "confirm.html.j2",
        title=N_("Confirm your subscription"),
        language=view.subscriber.language,
        email=view.subscriber.email,
        newsletters=[nl for nl, _ in view.choices],
        waiting=waiting,
        done=None,
        tracking_notice=_tracking(settings, waiting),
    )


@router.post(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirm a sign-up",
    responses=LINK_POST,
)
def confirm_submit(
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    dispatch: DispatcherDep,
    background: BackgroundTasks,
) -> HTMLResponse:
    try:
        data = _confirm_data(settings, token)
        done = lifecycle.confirm(session, data=data, ip=client.ip, user_agent=client.user_agent)
        view = _choices(session, data.subscriber_id, data.newsletter_ids)
    except InvalidLink as exc:
        return _bad_link(exc)
    session.commit()  # the worker reads the welcome's ledger rows in its own transaction
    for issue_id in done.dispatch:  # the welcome email (and the latest issue): to the workers
        background.add_task(_dispatch, dispatch, issue_id)
    names = {nl.id: nl.name for nl, _ in view.choices}
    return page(
        "confirm.html.j2",
        title=N_("Subscription confirmed")
        if done.confirmed or done.already
        else N_("Not confirmed"),
        language=view.subscriber.language,
        email=done.email,
        newsletters=[nl for nl, _ in view.choices],
        waiting=[],
        tracking_notice=_tracking(settings, [nl for nl, _ in view.choices]),
        done={
            "confirmed": [names[i] for i in done.confirmed if i in names],
            "already": [names[i] for i in done.already if i in names],
            "refused": [names[i] for i in done.refused if i in names],
        },
        preferences_url=_preferences_path(settings, data.subscriber_id),
    )


def _dispatch(dispatch: Dispatcher, issue_id: int) -> None:
    try:
        dispatch(issue_id)
    except Exception:  # the answer is gone; the periodic tick starts the rows within seconds
        log.exception("issue %s: welcome rows not dispatched", issue_id)


def _preferences_path(settings: Settings, subscriber_id: int) -> str:
    return (
        f"/preferences/{make_token(settings.secret_key, Purpose.preferences, subscriber_id, None)}"
    )


def _unsubscribe_data(settings: Settings, token: str) -> TokenData:
    return read_token(settings.secret_key, Purpose.unsubscribe, token)


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe page",
    responses=LINK_PAGE,
)
def unsubscribe_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """One button; opening the link (as link scanners do) unsubscribes nobody."""
    try:
        data = _unsubscribe_data(settings, token)
        view = _choices(session, data.subscriber_id)
    except InvalidLink as exc:
        return _bad_link(exc)
    return _unsubscribe_view(settings, view, data, changed=None)


def _unsubscribe_view(
    settings: Settings,
    view: preference_centre.Preferences,
    data: TokenData,
    *,
    changed: Sequence[int] | None,
) -> HTMLResponse:
    this = [nl for nl, _ in view.choices if nl.id == data.newsletter_id]
    receiving = [nl for nl, s in view.choices if s in (SubscriptionStatus.active, "pending")]
    names = {nl.id: nl.name for nl, _ in view.choices}
    return page(
        "unsubscribe.html.j2",
        title=N_("Unsubscribe") if changed is None else N_("Unsubscribed"),
        language=view.subscriber.language,
        email=view.subscriber.email,
        newsletter=this[0] if this else None,
        receiving=receiving,
        changed=None if changed is None else [names[i] for i in changed if i in names],
        preferences_url=_preferences_path(settings, data.subscriber_id),
    )


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe: RFC 8058 one-click, or the page's button",
    responses=LINK_POST,
)
def unsubscribe_submit(
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
    scope: Annotated[str | None, Form(description="all: every newsletter")] = None,
) -> HTMLResponse:
    """Any POST to a valid link unsubscribes at once: a mailbox provider's one-click
    (``List-Unsubscribe=One-Click``) or the page's button; ``scope=all`` leaves every newsletter.
    """
    try:
        data = _unsubscribe_data(settings, token)
        person = subscribers.live_subscriber(session, data.subscriber_id)
    except InvalidLink as exc:
        return _bad_link(exc)
    changed = lifecycle.unsubscribe(
        session,
        subscriber_id=data.subscriber_id,
        newsletter_id=None if scope == "all" else data.newsletter_id,
        source="one-click" if list_unsubscribe == ONE_CLICK else "unsubscribe-page",
        ip=client.ip,
        user_agent=client.user_agent,
        issue_id=data.issue_id,
    )
    # read while ``person`` is referenced: the session's identity map holds its objects weakly,
    # so the page's subscriber comes from it instead of a second query
    view = _choices(session, data.subscriber_id)
    del person
    return _unsubscribe_view(settings, view, data, changed=changed)


def _preferences_data(settings: Settings, token: str) -> TokenData:
    return read_token(settings.secret_key, Purpose.preferences, token)


def _preferences_view(
    settings: Settings,
    view: preference_centre.Preferences,
    *,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    version = settings.consent_text_version
    return page(
        "preferences.html.j2",
        status=status,
        title=N_("Your newsletters"),
        language=view.subscriber.language,
        subscriber=view.subscriber,
        choices=view.choices,
        notice=notice,
        failed=status >= 400,
        consent_version=version,
        consent_text=consent_text(version),
        tracking_notice=_tracking(settings, [nl for nl, _ in view.choices]),
        zones=time_zones(),
        languages=[(tag, language_name(tag)) for tag in i18n.LOCALES],
    )


@router.get(
    "/preferences/{token}",
    response_class=HTMLResponse,
    summary="Preference centre",
    responses=LINK_PAGE,
)
def preferences_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        data = _preferences_data(settings, token)
        view = _choices(session, data.subscriber_id)
    except InvalidLink as exc:
        return _bad_link(exc)
    return _preferences_view(settings, view)


@router.post(
    "/preferences/{token}",
    response_class=HTMLResponse,
    summary="Save preferences",
    responses=LINK_POST,
)
def preferences_submit(
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    action: Annotated[str, Form(description="save | unsubscribe-all")] = "save",
    name: Annotated[str | None, Form()] = None,
    time_zone: Annotated[
        str | None,
        Form(max_length=64, description='IANA, e.g. Europe/Minsk; "": the newsletter\'s'),
    ] = None,
    language: Annotated[
        str | None,
        Form(max_length=35, description='en, be, ru, uk, pl or lt; "": the newsletter\'s'),
    ] = None,
    newsletters: Annotated[list[Id] | None, Form(description="ids wanted")] = None,
    consent_text_version: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    try:
        data = _preferences_data(settings, token)
        subscribers.live_subscriber(session, data.subscriber_id)
    except InvalidLink as exc:
        return _bad_link(exc)
    try:
        notice = _save_preferences(
            session,
            settings,
            client,
            data.subscriber_id,
            action=action,
            name=name,
            time_zone=time_zone,
            language=language,
            newsletters=newsletters or [],
            version=consent_text_version,
        )
    except InvalidInput as exc:
        session.rollback()
        return _preferences_view(
            settings, _choices(session, data.subscriber_id), notice=short(str(exc)), status=422
        )
    return _preferences_view(settings, _choices(session, data.subscriber_id), notice=notice)


def _save_preferences(
    session: Session,
    settings: Settings,
    client: Client,
    subscriber_id: int,
    *,
    action: str,
    name: str | None,
    time_zone: str | None,
    language: str | None,
    newsletters: list[int],
    version: str | None,
) -> str:
    if action == "unsubscribe-all":
        lifecycle.unsubscribe(
            session,
            subscriber_id=subscriber_id,
            newsletter_id=None,
            source="preferences",
            ip=client.ip,
            user_agent=client.user_agent,
        )
        return "You are unsubscribed from all our newsletters."
    preference_centre.update_preferences(
        session,
        subscriber_id=subscriber_id,
        newsletter_ids=newsletters,
        name=name,
        time_zone="" if time_zone == "newsletter" else time_zone,  # the form's "not mine"
        language="" if language == "newsletter" else language,
        ip=client.ip,
        user_agent=client.user_agent,
        consent_text_version=version or settings.consent_text_version,
    )
    return "Your preferences are saved."
