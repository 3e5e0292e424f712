"""The public routes: sign-up, confirmation, unsubscribe (RFC 8058 one-click), preferences.

No login, no cookie, no CSRF token: a personal link's signed token is the capability, bound to
one subscriber and one purpose (``newsletter.audience.links``). A token that does not verify
(forged,
altered, expired, made for another purpose, or naming an erased subscriber) gets a 400 page that
says so, and nothing changes.

=================================  ==========================================================
``GET  /subscribe``                the form: email, name, newsletters, the consent text
``POST /subscribe``                the form's submission (HTML answer)
``POST /api/subscribe``            the same as JSON (202); both answer the same whatever the
                                   address's state, so the answer reveals nothing, and as
                                   fast: the confirmation email is queued after the answer
``GET  /confirm/{token}``          a page with one button; ``POST`` confirms. Mail scanners
                                   open links (GET), so a GET must never confirm (nor
                                   unsubscribe): the person's click does
``GET  /unsubscribe/{token}``      a page with one button (and "all newsletters")
``POST /unsubscribe/{token}``      RFC 8058 one-click (``List-Unsubscribe=One-Click``, form-
                                   encoded or multipart) or that button: unsubscribed at once
``GET|POST /preferences/{token}``  newsletters, name, unsubscribe from all
=================================  ==========================================================

The ``mailto:`` variant of List-Unsubscribe is processed by the bounce/mailbox path
(``newsletter bounces process``). Sign-ups are limited per client IP and per address
(``newsletter.audience.abuse``); over the limit the answer is 429 with ``Retry-After``.

The client IP is ``request.client.host``. Behind a reverse proxy that is the proxy, unless
uvicorn trusts its ``X-Forwarded-For``: ``newsletter serve --forwarded-allow-ips PROXY_IP``.
Without that option no forwarded header is trusted, from anywhere (a header any client can
write would otherwise choose the address limited and recorded as the consent IP).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import HTMLResponse

from newsletter.api.deps import ConfirmationSender, ConfirmationSenderDep, SessionDep, SettingsDep
from newsletter.api.errors import api_errors, page_errors, short
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.pages import page
from newsletter.audience import abuse, lifecycle, preference_centre, subscribers
from newsletter.audience.consent import consent_text
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.audience.links import (
    ConfirmData,
    Purpose,
    TokenData,
    make_token,
    read_confirm_token,
    read_token,
)
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput, InvalidLink, RateLimited
from newsletter.models import SubscriptionStatus

pages = APIRouter(tags=["public pages"], route_class=StrictRoute, responses=page_errors())
api = APIRouter(tags=["public"], route_class=StrictRoute)
log = logging.getLogger(__name__)

#: a personal link's page: 400 for a link that does not verify; a POST's body is capped (413)
LINK_PAGE = page_errors(400)
LINK_POST = page_errors(400, 413, 422)

NEUTRAL = (
    "Thank you. If this address can receive our newsletters, a confirmation email is on its "
    "way: open the link in it to start your subscription."
)
ONE_CLICK = "One-Click"


# ---------------------------------------------------------------- dependencies


@dataclass(frozen=True)
class Client:
    ip: str | None
    user_agent: str | None


def client_of(request: Request) -> Client:
    return Client(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


def get_limiter(request: Request) -> abuse.SignupLimiter:
    """The app's sign-up limiter, made on first use (tests may set ``app.state.signup_limiter``)."""
    limiter: abuse.SignupLimiter | None = getattr(request.app.state, "signup_limiter", None)
    if limiter is None:
        limiter = request.app.state.signup_limiter = abuse.signup_limiter(
            request.app.state.settings
        )
    return limiter


ClientDep = Annotated[Client, Depends(client_of)]
LimiterDep = Annotated[abuse.SignupLimiter, Depends(get_limiter)]


# ---------------------------------------------------------------- sign-up


def _signup(
    session: Session,
    settings: Settings,
    limiter: abuse.SignupLimiter,
    send: ConfirmationSender,
    client: Client,
    *,
    email: str,
    name: str,
    newsletters: Sequence[str],
    source: str,
    consent_version: str | None,
) -> ConfirmationRequest | None:
    """The sign-up, committed; the confirmation to queue (after the answer) when one is due."""
    limiter.check_ip(client.ip)  # before anything else: junk requests use up the IP's share
    address = subscribers.normalise_email(email)
    limiter.check_address(address)
    result = lifecycle.signup(
        session,
        email=address,
        newsletters=newsletters,
        name=name,
        ip=client.ip,
        user_agent=client.user_agent,
        source=source,
        consent_text_version=consent_version or settings.consent_text_version,
        resend_after_seconds=settings.confirmation_resend_seconds,
    )
    session.commit()  # the worker reads the subscription in its own transaction
    return result.confirmation


def _queue_after_answer(
    background: BackgroundTasks, send: ConfirmationSender, request: ConfirmationRequest | None
) -> None:
    """Queue the confirmation once the answer is sent: until then a new address and a known one
    cost the same (no broker round trip), so the answer's timing tells them apart no more than
    its content does."""
    if request is not None:
        background.add_task(_send_confirmation, send, request)


def _send_confirmation(send: ConfirmationSender, request: ConfirmationRequest) -> None:
    try:
        send(request)
    except Exception:  # the answer is gone: all that is left is to say so in the log
        log.exception("confirmation email of subscriber %s not queued", request.subscriber_id)


class SignupBody(BaseModel):
    email: str = Field(max_length=320, examples=["reader@example.org"])
    name: str = Field("", max_length=200, description="optional; one line")
    newsletters: list[str] = Field(
        min_length=1,
        max_length=50,
        description="slugs (or ids) of the newsletters wanted",
        examples=[["belarus-weekly"]],
    )
    consent_text_version: str | None = Field(
        None, max_length=32, description="the consent text shown; default: the current one"
    )


class SignupAccepted(BaseModel):
    status: str = "accepted"
    message: str = NEUTRAL


@api.post(
    "/subscribe",
    status_code=202,
    summary="Sign up (double opt-in): a confirmation email follows",
    responses=api_errors(400, 413, 422, 429),
)
def subscribe_json(
    body: SignupBody,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    send: ConfirmationSenderDep,
    client: ClientDep,
    background: BackgroundTasks,
) -> SignupAccepted:
    """The same answer whether the address is new, pending or already subscribed."""
    confirmation = _signup(
        session,
        settings,
        limiter,
        send,
        client,
        email=body.email,
        name=body.name,
        newsletters=body.newsletters,
        source="api",
        consent_version=body.consent_text_version,
    )
    _queue_after_answer(background, send, confirmation)
    return SignupAccepted()


def _form(
    session: Session,
    settings: Settings,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    newsletters = subscribers.list_newsletters(session)
    values = values or {}
    chosen = set(values.get("newsletters") or ([n.slug for n in newsletters][:1]))
    version = settings.consent_text_version
    return page(
        "subscribe.html.j2",
        status=status,
        headers=headers,
        title="Subscribe",
        newsletters=newsletters,
        chosen=chosen,
        email=values.get("email", ""),
        name=values.get("name", ""),
        error=error,
        consent_version=version,
        consent_text=consent_text(version),
    )


@pages.get("/subscribe", response_class=HTMLResponse, summary="The sign-up form")
def subscribe_page(
    session: SessionDep, settings: SettingsDep, newsletter: str | None = None
) -> HTMLResponse:
    return _form(session, settings, values={"newsletters": [newsletter] if newsletter else []})


@pages.post(
    "/subscribe",
    response_class=HTMLResponse,
    summary="The sign-up form's submission",
    responses=page_errors(400, 413, 422, 429),
)
def subscribe_form(
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    send: ConfirmationSenderDep,
    client: ClientDep,
    background: BackgroundTasks,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    newsletters: Annotated[list[str] | None, Form()] = None,
    consent_text_version: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    values = {"email": email, "name": name, "newsletters": newsletters or []}
    try:
        confirmation = _signup(
            session,
            settings,
            limiter,
            send,
            client,
            email=email,
            name=name,
            newsletters=newsletters or [],
            source="form",
            consent_version=consent_text_version,
        )
    except RateLimited as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return _form(session, settings, status=429, error=str(exc), values=values, headers=retry)
    except InvalidInput as exc:
        session.rollback()
        return _form(session, settings, status=422, error=short(str(exc)), values=values)
    _queue_after_answer(background, send, confirmation)
    return page("message.html.j2", title="Check your inbox", message=NEUTRAL)


# ---------------------------------------------------------------- personal links


def _bad_link(exc: InvalidLink) -> HTMLResponse:
    reason = short(str(exc))
    return page("bad_link.html.j2", status=400, title="This link does not work", reason=reason)


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


def _confirm_data(settings: Settings, token: str) -> ConfirmData:
    return read_confirm_token(
        settings.secret_key, token, max_age=settings.confirmation_max_age_seconds
    )


@pages.get(
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
        title="Confirm your subscription",
        email=view.subscriber.email,
        newsletters=[nl for nl, _ in view.choices],
        waiting=waiting,
        done=None,
    )


@pages.post(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirm a sign-up",
    responses=LINK_POST,
)
def confirm_submit(
    token: str, session: SessionDep, settings: SettingsDep, client: ClientDep
) -> HTMLResponse:
    try:
        data = _confirm_data(settings, token)
        done = lifecycle.confirm(session, data=data, ip=client.ip, user_agent=client.user_agent)
        view = _choices(session, data.subscriber_id, data.newsletter_ids)
    except InvalidLink as exc:
        return _bad_link(exc)
    names = {nl.id: nl.name for nl, _ in view.choices}
    return page(
        "confirm.html.j2",
        title="Subscription confirmed" if done.confirmed or done.already else "Not confirmed",
        email=done.email,
        newsletters=[nl for nl, _ in view.choices],
        waiting=[],
        done={
            "confirmed": [names[i] for i in done.confirmed if i in names],
            "already": [names[i] for i in done.already if i in names],
            "refused": [names[i] for i in done.refused if i in names],
        },
        preferences_url=_preferences_path(settings, data.subscriber_id),
    )


def _preferences_path(settings: Settings, subscriber_id: int) -> str:
    return (
        f"/preferences/{make_token(settings.secret_key, Purpose.preferences, subscriber_id, None)}"
    )


def _unsubscribe_data(settings: Settings, token: str) -> TokenData:
    return read_token(settings.secret_key, Purpose.unsubscribe, token)


@pages.get(
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
        title="Unsubscribe" if changed is None else "Unsubscribed",
        email=view.subscriber.email,
        newsletter=this[0] if this else None,
        receiving=receiving,
        changed=None if changed is None else [names[i] for i in changed if i in names],
        preferences_url=_preferences_path(settings, data.subscriber_id),
    )


@pages.post(
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
        subscribers.live_subscriber(session, data.subscriber_id)
    except InvalidLink as exc:
        return _bad_link(exc)
    changed = lifecycle.unsubscribe(
        session,
        subscriber_id=data.subscriber_id,
        newsletter_id=None if scope == "all" else data.newsletter_id,
        source="one-click" if list_unsubscribe == ONE_CLICK else "unsubscribe-page",
        ip=client.ip,
        user_agent=client.user_agent,
    )
    view = _choices(session, data.subscriber_id)
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
        title="Your newsletters",
        subscriber=view.subscriber,
        choices=view.choices,
        notice=notice,
        failed=status >= 400,
        consent_version=version,
        consent_text=consent_text(version),
    )


@pages.get(
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


@pages.post(
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
        ip=client.ip,
        user_agent=client.user_agent,
        consent_text_version=version or settings.consent_text_version,
    )
    return "Your preferences are saved."
