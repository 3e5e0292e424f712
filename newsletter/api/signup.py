"""The public sign-up: the form (``GET|POST /subscribe``) and ``POST /api/subscribe`` (JSON, 202).

Both answer the same whatever the address's state, so the answer reveals nothing, and as fast:
the confirmation email is queued after the answer (``BackgroundTasks``), from the outbox row
the sign-up wrote in its transaction (``newsletter.audience.outbox``: a broker outage delays it,
the beat relays it, and the answer is the same). Sign-ups are limited per client IP and per
address (``newsletter.audience.abuse``); over the limit the answer is 429 with ``Retry-After``.

The client IP is ``request.client.host``. Behind a reverse proxy that is the proxy, unless
uvicorn trusts its ``X-Forwarded-For``: ``newsletter serve --forwarded-allow-ips PROXY_IP``.
Without that option no forwarded header is trusted, from anywhere (a header any client can
write would otherwise choose the address limited and recorded as the consent IP).

The form also takes what the sign-up box of article pages sends (``newsletter.api.embed``): the
honeypot and the signed ``issued`` time (``newsletter.audience.signup_guard``: a bot's sign-up
runs exactly like a person's and is rolled back, so it gets the same answer and stores and sends
nothing), the article's address as ``source`` (else the Referer) for the consent record, and
``embed=1``, which answers with the box's own pages (which other sites may frame).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Header, Request
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import HTMLResponse

from newsletter import i18n
from newsletter.api.deps import (
    Client,
    ClientDep,
    ConfirmationSender,
    ConfirmationSenderDep,
    SessionDep,
    SettingsDep,
    queue_confirmation,
)
from newsletter.api.embed import embed_done, embed_page, source_of
from newsletter.api.errors import api_errors, page_errors, short
from newsletter.api.inputs import StrictRoute
from newsletter.api.pages import page
from newsletter.audience import abuse, lifecycle, signup_guard, subscribers
from newsletter.audience.consent import consent_text, tracking_notice
from newsletter.audience.embed import SOURCE_MAX
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.config import Settings
from newsletter.content.archive_editions import language_name
from newsletter.exceptions import InvalidInput, RateLimited
from newsletter.i18n import N_
from newsletter.models import Newsletter

pages = APIRouter(tags=["public pages"], route_class=StrictRoute, responses=page_errors())
api = APIRouter(tags=["public"], route_class=StrictRoute)
log = logging.getLogger(__name__)
NEUTRAL = N_(
    "Thank you. If this address can receive our newsletters, a confirmation email is on its "
    "way: open the link in it to start your subscription."
)


# ---------------------------------------------------------------- dependencies


def get_limiter(request: Request) -> abuse.SignupLimiter:
    """The app's sign-up limiter, made on first use (tests may set ``app.state.signup_limiter``)."""
    limiter: abuse.SignupLimiter | None = getattr(request.app.state, "signup_limiter", None)
    if limiter is None:
        limiter = request.app.state.signup_limiter = abuse.signup_limiter(
            request.app.state.settings
        )
    return limiter


LimiterDep = Annotated[abuse.SignupLimiter, Depends(get_limiter)]


def get_bot_counter(request: Request) -> signup_guard.BotCounter:
    """The app's count of bot refusals (``create_app`` makes it; ``/metrics`` reads it)."""
    counter: signup_guard.BotCounter = request.app.state.bot_counter
    return counter


BotCounterDep = Annotated[signup_guard.BotCounter, Depends(get_bot_counter)]


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
    language: str | None = None,
    bot: signup_guard.BotReason | None = None,
    bots: signup_guard.BotCounter | None = None,
) -> ConfirmationRequest | None:
    """The sign-up, committed; the confirmation to queue (after the answer) when one is due.

    A bot's (``bot``) runs the same way, limits and checks included, so its answer is a person's,
    and is then rolled back: nothing stored, nothing to send, one more refusal counted."""
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
        language=language,
    )
    if bot is not None:
        session.rollback()
        if bots is not None:
            bots.add(bot)
        log.info("sign-up refused as a bot's (%s)", bot)
        return None
    session.commit()  # the worker reads the subscription in its own transaction
    return result.confirmation


def _queue_after_answer(
    background: BackgroundTasks,
    send: ConfirmationSender,
    request: ConfirmationRequest | None,
    settings: Settings,
) -> None:
    """Queue the confirmation once the answer is sent: until then a new address and a known one
    cost the same (no broker round trip), so the answer's timing tells them apart no more than
    its content does. The sign-up put it in the outbox, so a broker that is down delays it (the
    beat relays it) and loses nothing."""
    queue_confirmation(background, send, request, settings)


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
    language: str | None = Field(
        None,
        max_length=35,
        description="a new reader's language (en, be, ru, uk, pl, lt); default: the newsletter's",
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
        language=body.language,
    )
    _queue_after_answer(background, send, confirmation, settings)
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
        title=N_("Subscribe"),
        newsletters=newsletters,
        chosen=chosen,
        email=values.get("email", ""),
        name=values.get("name", ""),
        error=error,
        consent_version=version,
        consent_text=consent_text(version),
        tracking_notice=tracking_notice(newsletters, retention_days=settings.track_retention_days),
        languages=[(tag, language_name(tag)) for tag in i18n.LOCALES],
        picked_language=values.get("language"),
    )


@pages.get("/subscribe", response_class=HTMLResponse, summary="The sign-up form")
def subscribe_page(
    session: SessionDep, settings: SettingsDep, newsletter: str | None = None
) -> HTMLResponse:
    return _form(session, settings, values={"newsletters": [newsletter] if newsletter else []})


@pages.post(
    "/subscribe",
    response_class=HTMLResponse,
    summary="The sign-up form's submission (also the sign-up box's, and the pasted snippet's)",
    responses=page_errors(400, 413, 422, 429),
)
def subscribe_form(
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    bots: BotCounterDep,
    send: ConfirmationSenderDep,
    client: ClientDep,
    background: BackgroundTasks,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    newsletters: Annotated[list[str] | None, Form()] = None,
    consent_text_version: Annotated[str | None, Form()] = None,
    website: Annotated[str | None, Form(description="the honeypot: people leave it empty")] = None,
    issued: Annotated[str | None, Form(max_length=200, description="signed serving time")] = None,
    source: Annotated[str | None, Form(max_length=4 * SOURCE_MAX)] = None,
    embed: Annotated[str | None, Form(max_length=8, description="1: the sign-up box's")] = None,
    language: Annotated[
        str | None, Form(max_length=35, description="a new reader's language: en, be, ru...")
    ] = None,
    referer: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> HTMLResponse:
    values = {"email": email, "name": name, "newsletters": newsletters or [], "language": language}
    page_url = source_of(settings, source, referer)
    boxed = embed == "1"
    bot = signup_guard.verdict(
        secret=settings.secret_key,
        honeypot=website,
        stamp=issued,
        min_seconds=settings.signup_min_fill_seconds,
    )
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
            source=page_url or ("embed" if boxed else "form"),
            consent_version=consent_text_version,
            language=language,
            bot=bot,
            bots=bots,
        )
    except RateLimited as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        if boxed:
            return _box(session, settings, values, page_url, str(exc), 429, retry, issued)
        return _form(session, settings, status=429, error=str(exc), values=values, headers=retry)
    except InvalidInput as exc:
        session.rollback()
        if boxed:
            return _box(session, settings, values, page_url, short(str(exc)), 422, None, issued)
        return _form(session, settings, status=422, error=short(str(exc)), values=values)
    _queue_after_answer(background, send, confirmation, settings)
    if boxed:
        return embed_done(_newsletter_of(session, values), NEUTRAL)
    return page("message.html.j2", title=N_("Check your inbox"), message=NEUTRAL, back=page_url)


def _newsletter_of(session: Session, values: dict[str, Any]) -> Newsletter | None:
    """The newsletter a sign-up box is for (its one hidden choice), if it exists."""
    chosen = values["newsletters"]
    found = subscribers.list_newsletters(session)
    return next((n for n in found if chosen and n.slug == chosen[0]), None)


def _box(
    session: Session,
    settings: Settings,
    values: dict[str, Any],
    page_url: str | None,
    error: str,
    status: int,
    headers: dict[str, str] | None,
    issued: str | None,
) -> HTMLResponse:
    """The sign-up box again with the reason its sign-up was refused (and its first time)."""
    newsletter = _newsletter_of(session, values)
    if newsletter is None:  # a box for no newsletter (a mangled form): say so in the box's frame
        return embed_done(None, error, title="Not signed up", status=status, headers=headers)
    return embed_page(
        session,
        settings,
        newsletter,
        source=page_url,
        email=values["email"],
        error=error,
        status=status,
        headers=headers,
        issued=issued,
    )


# ---------------------------------------------------------------- personal links
