"""Postmark, SendGrid and Mailgun bounce webhooks, and our own signed JSON form.

Each ``read_*`` verifies the request first (nothing of an unverified body is used) and turns it
into ``ProviderEvent``s; a provider with no key configured is refused (``NotConfigured``).

- **Postmark** (https://postmarkapp.com/developer/webhooks/bounce-webhook and
  .../spam-complaint-webhook): one JSON object per POST, ``RecordType`` ``Bounce`` (``Type``
  ``HardBounce``/``BadEmailAddress`` hard; ``SoftBounce``/``Transient``/``DnsError``/
  ``Blocked``/``DMARCPolicy`` soft; auto-replies, challenges and the like ignored) or
  ``SpamComplaint``; the event id is ``ID``, the address ``Email``. Postmark signs nothing: the
  webhook URL carries HTTP Basic credentials (``https://user:password@host/...``, Postmark sends
  them as ``Authorization: Basic``) and/or a secret ``?token=``; every one configured must match.
- **SendGrid** Event Webhook (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/
  event and getting-started-event-webhook-security-features): a JSON array of events;
  ``X-Twilio-Email-Event-Webhook-Signature`` is a base64 ECDSA (P-256, SHA-256) signature over
  ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body, checked with the
  verification key from Mail Settings. ``bounce`` (``type`` ``bounce`` hard, ``blocked``
  soft), ``dropped`` (reason ``Bounced Address``/``Invalid`` hard, ``Spam Reporting Address`` a
  complaint), ``spamreport`` (a complaint); ``sg_event_id`` is the event id, ``smtp-id`` our
  Message-ID.
- **Mailgun** (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/
  securing-webhooks and webhook-payloads): ``{"signature": {"timestamp", "token",
  "signature"}, "event-data": {...}}``; the signature is the hex HMAC-SHA256 of timestamp +
  token with the webhook signing key. It does not cover the event, so each token is kept and
  a second request with it is a replay (Mailgun's advice). ``failed`` with ``severity``
  ``permanent`` (hard) or
  ``temporary`` (soft), ``complained``; ``id`` is the event id, ``message.headers.message-id``
  our Message-ID (without its brackets).
- **generic**: ``X-Newsletter-Timestamp: <unix seconds>`` and ``X-Newsletter-Signature:
  sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` with ``NEWSLETTER_GENERIC_WEBHOOK_SECRET``;
  a timestamp more than ``NEWSLETTER_GENERIC_WEBHOOK_MAX_AGE_SECONDS`` away from now is refused.
  The body is one event or an array of them: ``{"type": "bounce"|"complaint", "email": ...,
  "bounce_type": "hard"|"soft", "message_id": ..., "id": ..., "status": ...}``; without an ``id``
  the event's key is a hash of it and the timestamp, so a replayed request is applied once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field

from newsletter.audience.bounce_parsing import Kind
from newsletter.audience.provider_types import (
    Batch,
    NotConfigured,
    ProviderEvent,
    SignatureMissing,
    SignatureRefused,
    WebhookRequest,
    json_body,
    validated,
)
from newsletter.audience.receipts import event_key
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput

__all__ = [
    "generic_signature",
    "read_generic",
    "read_mailgun",
    "read_postmark",
    "read_sendgrid",
    "sendgrid_key",
]

_OUR_ID = re.compile(r"<[0-9]{1,10}\.[0-9]{1,10}\.[0-9a-f]{16}@[^>\s]+>")
Address = Annotated[str, Field(min_length=3, max_length=320)]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# ---------------------------------------------------------------- Postmark

POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress"})
POSTMARK_SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked", "DMARCPolicy"})


class _Postmark(BaseModel):
    model_config = ConfigDict(extra="allow")
    RecordType: str
    ID: int | str
    Type: str = ""
    Email: Address
    MessageID: str | None = None
    Details: str | None = None
    Content: str | None = None


def _postmark_auth(settings: Settings, request: WebhookRequest) -> None:
    user, password = settings.postmark_webhook_username, settings.postmark_webhook_password
    token = settings.postmark_webhook_token
    if not password and not token:
        raise NotConfigured(
            "the Postmark webhook is off: set NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD or _TOKEN"
        )
    if password:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            raise SignatureMissing("the Postmark webhook needs its HTTP Basic credentials")
        expected = base64.b64encode(f"{user or ''}:{password}".encode()).decode()
        if not _same(header[6:].strip(), expected):
            raise SignatureRefused("wrong Postmark webhook credentials")
    if token:
        given = request.query.get("token")
        if not given:
            raise SignatureMissing("the Postmark webhook URL needs its ?token=")
        if not _same(given, token):
            raise SignatureRefused("wrong Postmark webhook token")


def read_postmark(settings: Settings, request: WebhookRequest) -> Batch:
    _postmark_auth(settings, request)
    data = validated(_Postmark, json_body(request.body, "Postmark"), "Postmark")
    if data.RecordType == "SpamComplaint":
        kind = Kind.complaint
    elif data.RecordType == "Bounce" and data.Type in POSTMARK_HARD | POSTMARK_SOFT:
        kind = Kind.hard if data.Type in POSTMARK_HARD else Kind.soft
    else:
        return Batch(skipped=[f"Postmark {data.RecordType} {data.Type}: not applied"])
    ours = _OUR_ID.search(data.Content or "")  # the bounce's dump, when Postmark includes it
    event = ProviderEvent(
        key=event_key("postmark", data.RecordType, data.ID),
        kind=kind,
        email=data.Email,
        message_id=ours.group(0) if ours else None,
        status=data.Type,
        detail={"postmark_type": data.Type},
    )
    return Batch([event])


# ---------------------------------------------------------------- SendGrid

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


class _SendGrid(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    event: str
    email: Address
    sg_event_id: str | None = None
    smtp_id: str | None = Field(None, alias="smtp-id")
    type: str | None = None
    reason: str | None = None
    status: str | None = None


def sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER (as Mail Settings shows it) or PEM."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise NotConfigured("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise NotConfigured("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    return key


def _sendgrid_kind(event: _SendGrid) -> Kind | None:
    reason = (event.reason or "").lower()
    if event.event == "spamreport" or (event.event == "dropped" and "spam" in reason):
        return Kind.complaint
    if event.event == "bounce":
        return Kind.soft if event.type == "blocked" else Kind.hard
    if event.event == "dropped" and ("bounced address" in reason or reason == "invalid"):
        return Kind.hard
    return None


def read_sendgrid(settings: Settings, request: WebhookRequest) -> Batch:
    if not settings.sendgrid_webhook_public_key:
        raise NotConfigured(
            "the SendGrid webhook is off: set NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY"
        )
    key = sendgrid_key(settings.sendgrid_webhook_public_key)
    signature, stamp = request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise SignatureMissing("the SendGrid request is not signed")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            stamp.encode() + request.body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error):
        raise SignatureRefused("the SendGrid signature does not verify") from None
    data = json_body(request.body, "SendGrid")
    if not isinstance(data, list):
        raise InvalidInput("not a SendGrid webhook payload: the body is not a JSON array")
    batch = Batch()
    for raw in data:
        event = validated(_SendGrid, raw, "SendGrid")
        kind = _sendgrid_kind(event)
        if kind is None:
            batch.skipped.append(f"SendGrid {event.event}: not applied")
            continue
        ident = event.sg_event_id or hashlib.sha256(_canonical(raw)).hexdigest()
        batch.events.append(
            ProviderEvent(
                key=event_key("sendgrid", ident),
                kind=kind,
                email=event.email,
                message_id=event.smtp_id,
                status=event.status or event.type or event.reason,
                detail={"sendgrid_event": event.event},
            )
        )
    return batch


# ---------------------------------------------------------------- Mailgun


class _MailgunSignature(BaseModel):
    timestamp: str | int
    token: str = Field(max_length=200)
    signature: str = Field(max_length=200)


class _MailgunEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: str
    id: str = Field(max_length=200)
    recipient: Address
    severity: str | None = None
    message: dict[str, Any] = {}
    delivery_status: dict[str, Any] = Field({}, alias="delivery-status")


class _Mailgun(BaseModel):
    model_config = ConfigDict(extra="allow")
    signature: _MailgunSignature
    event_data: dict[str, Any] = Field(alias="event-data")


def read_mailgun(settings: Settings, request: WebhookRequest) -> Batch:
    signing_key = settings.mailgun_webhook_signing_key
    if not signing_key:
        raise NotConfigured(
            "the Mailgun webhook is off: set NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY"
        )
    raw = json_body(request.body, "Mailgun")
    if not isinstance(raw, dict) or not isinstance(raw.get("signature"), dict):
        raise SignatureMissing("the Mailgun request carries no signature")
    body = validated(_Mailgun, raw, "Mailgun")
    sig = body.signature
    expected = hmac.new(
        signing_key.encode(), f"{sig.timestamp}{sig.token}".encode(), hashlib.sha256
    ).hexdigest()
    if not _same(sig.signature.lower(), expected):
        raise SignatureRefused("the Mailgun signature does not verify")
    event = validated(_MailgunEvent, body.event_data, "Mailgun")
    if event.event == "complained":
        kind = Kind.complaint
    elif event.event == "failed" and event.severity in ("permanent", "temporary"):
        kind = Kind.hard if event.severity == "permanent" else Kind.soft
    else:
        return Batch(skipped=[f"Mailgun {event.event}: not applied"])
    headers = event.message.get("headers")
    mid = headers.get("message-id") if isinstance(headers, dict) else None
    code = event.delivery_status.get("code")
    return Batch(
        [
            ProviderEvent(
                key=event_key("mailgun", event.id),
                kind=kind,
                email=event.recipient,
                message_id=str(mid) if mid else None,
                status=str(code) if code is not None else event.severity,
                detail={"mailgun_event": event.event},
                also=(event_key("mailgun-token", sig.token),),
            )
        ]
    )


# ---------------------------------------------------------------- generic

GENERIC_SIGNATURE = "x-newsletter-signature"
GENERIC_TIMESTAMP = "x-newsletter-timestamp"


class _Generic(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["bounce", "complaint"]
    email: Address
    bounce_type: Literal["hard", "soft"] | None = None
    message_id: str | None = Field(None, max_length=998)
    id: str | None = Field(None, max_length=200)
    status: str | None = Field(None, max_length=100)


def _canonical(raw: Any) -> bytes:
    return json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: what a sender puts in ``X-Newsletter-Signature``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def read_generic(settings: Settings, request: WebhookRequest, *, now: float | None = None) -> Batch:
    secret = settings.generic_webhook_secret
    if not secret:
        raise NotConfigured("the generic webhook is off: set NEWSLETTER_GENERIC_WEBHOOK_SECRET")
    signature = request.headers.get(GENERIC_SIGNATURE)
    stamp = request.headers.get(GENERIC_TIMESTAMP, "")
    if not signature or not stamp:
        raise SignatureMissing(
            "the request needs X-Newsletter-Timestamp and X-Newsletter-Signature"
        )
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRefused("X-Newsletter-Timestamp is not a Unix time in seconds")
    if not _same(signature.strip().lower(), generic_signature(secret, stamp, request.body)):
        raise SignatureRefused("the signature does not verify")
    age = abs((time.time() if now is None else now) - int(stamp))
    if age > settings.generic_webhook_max_age_seconds:
        raise SignatureRefused(f"the request was signed {int(age)} s away from now: too old")
    data = json_body(request.body, "generic")
    batch = Batch()
    for raw in data if isinstance(data, list) else [data]:
        event = validated(_Generic, raw, "generic")
        if event.type == "bounce" and event.bounce_type is None:
            raise InvalidInput("not a generic webhook payload: a bounce needs bounce_type")
        if event.type == "complaint":
            kind = Kind.complaint
        else:
            kind = Kind.hard if event.bounce_type == "hard" else Kind.soft
        ident = event.id or hashlib.sha256(stamp.encode() + _canonical(raw)).hexdigest()
        batch.events.append(
            ProviderEvent(
                key=event_key("generic", ident),
                kind=kind,
                email=event.email,
                message_id=event.message_id,
                status=event.status,
            )
        )
    return batch
