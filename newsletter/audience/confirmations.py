"""The double opt-in email: compiled once per set of newsletters, personalised per sign-up.

``send_confirmation`` is what the Celery task ``worker.tasks.send_confirmation`` calls: it reads
what is still waiting for a confirmation (a subscription confirmed or bounced meanwhile is left
out; nothing left, no email), signs a confirmation link, and hands the message to the same SMTP
transport as the issues (DKIM-signed when that is configured). The message is transactional: it
carries ``Auto-Submitted: auto-generated`` and no List-Unsubscribe, and its envelope sender is the
bounce address, so a bad mailbox comes back to the bounce path. It speaks the reader's language
(the one picked at sign-up), else the first newsletter's, else English (``i18n.negotiate``).
"""

from __future__ import annotations

import hmac
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, formataddr, make_msgid
from functools import lru_cache
from typing import Any

from babel.lists import format_list
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from newsletter import db, i18n
from newsletter.audience import outbox
from newsletter.audience.lifecycle import CONFIRMABLE, ConfirmationRequest
from newsletter.audience.links import make_confirm_token
from newsletter.audience.subscribers import live_subscriber
from newsletter.config import Settings
from newsletter.content import rendering
from newsletter.exceptions import DatabaseUnavailable, PermanentFailure, TemporaryFailure
from newsletter.mail.dkim import signer_from_settings
from newsletter.mail.message import address_header, domain_of
from newsletter.models import Newsletter, Subscriber, Subscription, utcnow
from newsletter.transports import Transport

TEMPLATE = "confirm"
FINISH_PATIENCE = 30.0  # seconds the "sent" mark waits for a database that went away
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    to: str
    data: bytes  # the whole message, CRLF line ends


def one_line(text: str) -> str:
    """Header text: CR, LF and other control characters would start a header of their own."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def listing(names: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and C" (English wire style); "A, B ir C" in Lithuanian."""
    if i18n.current() != i18n.SOURCE:
        return format_list(list(names), locale=i18n.current())
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def language_of(subscriber: Subscriber, newsletters: Sequence[Newsletter]) -> str:
    """The email's locale: the reader's language, else the first newsletter's, else English."""
    return i18n.negotiate(subscriber.language or newsletters[0].language)


@lru_cache(maxsize=32)
def _compile(source: str) -> str:
    # the MJML differs only by the newsletters' names and branding: compile each variant once
    return rendering.compile_mjml(source, template=f"email/{TEMPLATE}.mjml.j2")


def compile_confirmation(
    newsletters: Sequence[Newsletter],
    *,
    valid_days: int,
    language: str | None = None,
    now: datetime | None = None,
) -> rendering.CompiledIssue:
    """The email in ``language`` (English when None) with per-recipient placeholders (name,
    email, confirm_url) still in it; the link's last day written as the locale writes dates."""
    with i18n.use(language):
        names = listing([one_line(nl.name) for nl in newsletters])
        until = (now or utcnow()) + timedelta(days=valid_days)
        context: dict[str, Any] = {
            "newsletter": newsletters[0],
            "newsletters": newsletters,
            "names": names,
            "subject": i18n.gettext("Confirm your subscription to %(names)s") % {"names": names},
            "preheader": i18n.gettext(
                "One click and you are subscribed; no click and you never hear from us."
            ),
            "valid_until": rendering.local_date(until, newsletters[0].time_zone),
            "lang": i18n.current(),
            "r": rendering.PLACEHOLDERS,
        }
        source = rendering.render_template(f"email/{TEMPLATE}.mjml.j2", context)
        text = rendering.render_template(f"email/{TEMPLATE}.txt.j2", context)
    return rendering.CompiledIssue(context["subject"], context["preheader"], _compile(source), text)


def greeting(name: str, language: str) -> str:
    """ "Hello Ales," in the email's language; "Hello," without a name."""
    first = name.split()[0] if name else ""
    with i18n.use(language):
        if first:
            return i18n.gettext("Hello %(first)s,") % {"first": first}
        return i18n.gettext("Hello,")


def confirm_url(settings: Settings, request: ConfirmationRequest) -> str:
    token = make_confirm_token(
        settings.secret_key,
        subscriber_id=request.subscriber_id,
        newsletter_ids=request.newsletter_ids,
        source=request.source,
        consent_text_version=request.consent_text_version,
    )
    return f"{settings.base_url.rstrip('/')}/confirm/{token}"


def build(
    settings: Settings,
    session: Session,
    request: ConfirmationRequest,
    *,
    now: datetime | None = None,
) -> Outgoing | None:
    """The message for what is still waiting to be confirmed, or None when nothing is."""
    subscriber = live_subscriber(session, request.subscriber_id)
    waiting = session.exec(
        select(Subscription.newsletter_id).where(
            Subscription.subscriber_id == request.subscriber_id,
            col(Subscription.newsletter_id).in_(request.newsletter_ids),
            col(Subscription.status).in_(list(CONFIRMABLE)),
        )
    ).all()
    if not waiting:
        return None
    request = replace(request, newsletter_ids=tuple(sorted(waiting)))
    newsletters = [n for n in (session.get(Newsletter, i) for i in request.newsletter_ids) if n]
    language = language_of(subscriber, newsletters)
    compiled = compile_confirmation(
        newsletters,
        valid_days=max(1, settings.confirmation_max_age_seconds // 86400),
        language=language,
        now=now,
    )
    name = one_line(subscriber.name)
    values = dict.fromkeys(rendering.PLACEHOLDERS, "") | {
        "name": name,
        "greeting": greeting(name, language),
        "email": subscriber.email,
        "view_url": settings.base_url,  # the masthead's link when a newsletter has no website
        "confirm_url": confirm_url(settings, request),
    }
    html, text = rendering.personalise(compiled, values)
    domain = domain_of(newsletters[0].from_email)
    if request.outbox_id is None:
        message_id = make_msgid("confirm", domain=domain)
    else:  # a copy re-sent after a crash carries the same id, so receivers fold it
        mac = hmac.new(
            settings.secret_key.encode(), f"confirm:{request.outbox_id}".encode(), "sha256"
        )
        message_id = f"<confirm.{request.outbox_id}.{mac.hexdigest()[:16]}@{domain}>"
    return _mime(
        newsletters[0], subscriber.email, name, compiled.subject, html, text, now, message_id
    )


def _mime(
    sender: Newsletter,
    to: str,
    name: str,
    subject: str,
    html: str,
    text: str,
    now: datetime | None,
    message_id: str,
) -> Outgoing:
    # SMTP: CRLF line ends, headers folded for the wire; a non-ASCII mailbox name needs UTF-8
    # headers (RFC 6532), which the transport sends only to a relay offering SMTPUTF8
    msg = EmailMessage(policy=SMTP if to.isascii() else SMTPUTF8)
    msg["From"] = formataddr((one_line(sender.from_name), sender.from_email), charset="utf-8")
    if sender.reply_to:
        msg["Reply-To"] = one_line(sender.reply_to)
    msg["To"] = address_header(name, to)
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(now or utcnow())
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    msg["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="base64")
    return Outgoing(message_id, to, msg.as_bytes())


def send_confirmation(
    settings: Settings, request: ConfirmationRequest, *, transport: Transport
) -> str:
    """Build and hand over one confirmation email; returns what happened, for the log.

    A request from the outbox (``outbox_id``) is sent once however often it was relayed: the
    row is claimed first and marked sent after (``outbox.claim_send``); one another task is
    sending is a TemporaryFailure (tried again after that task's lease), one sent is skipped.
    A temporary failure (TemporaryFailure) propagates, for the task to retry; a permanent one
    is logged: the subscription stays pending and expires with its link. A database that is
    away (a restart) is ``DatabaseUnavailable``, for the task to retry as well; after the email
    was handed over, its "sent" mark waits up to ``FINISH_PATIENCE`` seconds for the database.
    """
    try:
        return _send_once(settings, request, transport)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"the database is unreachable: {exc.orig}") from exc


def _send_once(settings: Settings, request: ConfirmationRequest, transport: Transport) -> str:
    if request.outbox_id is None:
        return _send(settings, request, transport)
    with db.session_scope(settings.database_url) as session:
        claim = outbox.claim_send(session, request.outbox_id, lease_seconds=settings.lease_seconds)
    if claim.state is outbox.Claim.busy:
        raise TemporaryFailure(f"outbox row {request.outbox_id} is being sent by another task")
    if claim.token is None:
        return f"skipped: outbox row {request.outbox_id} is {claim.state}"
    try:
        outcome = _send(settings, request, transport)
    except TemporaryFailure:
        with db.session_scope(settings.database_url) as session:
            outbox.release_send(session, request.outbox_id, claim.token)
        raise
    _finish(settings, request.outbox_id, claim.token)
    return outcome


#: a confirmation's retries: full-jitter exponential backoff from 5 s up to 10 min (a reader is
#: waiting), or, when every relay is out, soon after the first is due back
RETRY_BASE_SECONDS = 5.0
RETRY_LONGEST_SECONDS = 600.0
RETRY_SPREAD_SECONDS = 2.0


def retry_delay(retries: int, exc: BaseException, *, now: datetime | None = None) -> float:
    """Seconds until a confirmation that failed ``retries + 1`` times is tried again. While the
    relays are out (``retry_at``: their cool-down's end) a backoff grown over the outage would
    keep a reader waiting minutes past the relay's return; the task goes then instead, spread
    over a couple of seconds."""
    back_at = getattr(exc, "retry_at", None)
    if isinstance(back_at, datetime):
        wait = (back_at - (now or utcnow())).total_seconds()
        return max(1.0, wait) + random.uniform(0.0, RETRY_SPREAD_SECONDS)
    ceiling = min(RETRY_LONGEST_SECONDS, RETRY_BASE_SECONDS * 2**retries)
    return random.uniform(0.0, ceiling)


def _finish(settings: Settings, outbox_id: int, token: str) -> None:
    """Mark the row sent, waiting out a database restart: given up, the row's lease runs out
    and it is sent again (the same Message-ID, so the copy folds into the first)."""
    deadline = time.monotonic() + FINISH_PATIENCE
    wait = 0.25
    while True:
        try:
            with db.session_scope(settings.database_url) as session:
                outbox.finish_send(session, outbox_id, token)
            return
        except OperationalError:
            if time.monotonic() + wait > deadline:
                raise
            time.sleep(wait)
            wait = min(wait * 2, 4.0)


def _send(settings: Settings, request: ConfirmationRequest, transport: Transport) -> str:
    with db.session_scope(settings.database_url) as session:
        outgoing = build(settings, session, request)
    if outgoing is None:
        return "skipped: nothing is waiting for a confirmation any more"
    data = outgoing.data
    signer = signer_from_settings(settings)  # the DKIM set-up the issues use
    if signer is not None:
        data = signer.sign(data)
    try:
        reply = transport.send(settings.bounce_address, outgoing.to, data)
    except PermanentFailure as exc:
        log.warning("confirmation to subscriber %s refused: %s", request.subscriber_id, exc)
        return f"refused: {exc.response or exc}"
    return f"sent {outgoing.message_id}: {reply}"
