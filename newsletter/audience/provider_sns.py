"""Amazon SES bounce and complaint notifications, delivered by Amazon SNS over HTTPS.

SNS POSTs one JSON document (``Type``: ``SubscriptionConfirmation``, ``Notification`` or
``UnsubscribeConfirmation``) and signs it; verification follows "Verifying the signatures of
Amazon SNS messages" (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
and ...-verify-message-signature.html):

- ``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com/...pem``; the certificate is
  fetched through the outbound guard (TLS-verified, public addresses only) and cached per URL;
- the string to sign is ``key\\nvalue\\n`` for each of these keys, in this order, nothing else:
  Notification: ``Message``, ``MessageId``, ``Subject`` (only when present), ``Timestamp``,
  ``TopicArn``, ``Type``; SubscriptionConfirmation and UnsubscribeConfirmation: ``Message``,
  ``MessageId``, ``SubscribeURL``, ``Timestamp``, ``Token``, ``TopicArn``, ``Type``;
- ``Signature`` is base64 RSA PKCS#1 v1.5 over that string: SHA1 when ``SignatureVersion`` is
  ``1``, SHA256 when it is ``2``.

A signature only proves that SNS sent the message, not that it comes from *our* topic (anyone
can make a topic), so only ``NEWSLETTER_SES_TOPIC_ARNS`` are accepted. A SubscriptionConfirmation
is confirmed by GETting its ``SubscribeURL`` (https on an ``amazonaws.com`` host only).

The ``Message`` of a Notification is SES's JSON ("Amazon SNS notification contents for Amazon
SES", https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html, and its examples,
notification-examples.html): ``notificationType`` (``eventType`` for event publishing) ``Bounce``
with ``bounce.bounceType`` ``Permanent`` (hard) or ``Transient``/``Undetermined`` (soft) and
``bouncedRecipients[].emailAddress``/``status``, or ``Complaint`` with
``complaint.complainedRecipients[]``; ``mail.headers``/``mail.commonHeaders.messageId`` carry the
original Message-ID when SES is set to include the original headers. ``Delivery`` is ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from newsletter.audience.bounce_parsing import Kind
from newsletter.audience.provider_types import (
    Batch,
    Fetcher,
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

__all__ = ["CERTIFICATES", "read_ses", "string_to_sign"]

_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com$")
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


class SnsMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    Type: str
    MessageId: str = Field(max_length=200)
    TopicArn: str
    Message: str
    Timestamp: str
    SignatureVersion: str = ""
    Signature: str = ""
    SigningCertURL: str = ""
    Subject: str | None = None
    SubscribeURL: str | None = None
    Token: str | None = None


class CertificateCache:
    """Signing certificates' public keys by URL (a handful in use at any time)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()  # requests are served from a thread pool

    def get(self, url: str, fetch: Fetcher) -> rsa.RSAPublicKey:
        with self._lock:
            known = self._keys.get(url)
        if known is not None:
            return known
        try:
            cert = x509.load_pem_x509_certificate(fetch(url))
        except ValueError:
            raise SignatureRefused("the SNS signing certificate could not be read") from None
        if cert.not_valid_after_utc < datetime.now(UTC):
            raise SignatureRefused("the SNS signing certificate has expired")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureRefused("the SNS signing certificate has no RSA key")
        with self._lock:
            if len(self._keys) >= self.size:
                self._keys.pop(next(iter(self._keys)))
            self._keys[url] = key
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


CERTIFICATES = CertificateCache()


def string_to_sign(message: dict[str, Any]) -> str:
    """The canonical string SNS signs (see the module's docstring)."""
    keys = _NOTIFICATION_KEYS if message.get("Type") == "Notification" else _CONFIRMATION_KEYS
    return "".join(f"{key}\n{message[key]}\n" for key in keys if message.get(key) is not None)


def _allowed_topics(settings: Settings) -> set[str]:
    return {t.strip() for t in settings.ses_topic_arns.split(",") if t.strip()}


def _verify(raw: dict[str, Any], sns: SnsMessage, fetch: Fetcher) -> None:
    if not sns.Signature or not sns.SigningCertURL:
        raise SignatureMissing("the SNS message is not signed")
    algorithm = _HASHES.get(sns.SignatureVersion)
    if algorithm is None:
        raise SignatureRefused(f"unknown SNS SignatureVersion {sns.SignatureVersion!r}")
    url = urlsplit(sns.SigningCertURL)
    if url.scheme != "https" or not _CERT_HOST.match(url.hostname or "") or url.port:
        raise SignatureRefused("SigningCertURL is not an https URL on sns.<region>.amazonaws.com")
    if not url.path.endswith(".pem"):
        raise SignatureRefused("SigningCertURL does not name a .pem certificate")
    try:
        signature = base64.b64decode(sns.Signature, validate=True)
    except binascii.Error:
        raise SignatureRefused("the SNS signature is not base64") from None
    key = CERTIFICATES.get(sns.SigningCertURL, fetch)
    try:
        key.verify(signature, string_to_sign(raw).encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureRefused("the SNS signature does not verify") from None


def read_ses(settings: Settings, request: WebhookRequest, fetch: Fetcher) -> Batch:
    """Verify one SNS POST and read the SES events in it (or confirm the subscription)."""
    topics = _allowed_topics(settings)
    if not topics:
        raise NotConfigured("the SES webhook is off: set NEWSLETTER_SES_TOPIC_ARNS")
    raw = json_body(request.body, "SNS")
    if not isinstance(raw, dict):
        raise InvalidInput("not an SNS message: the body is not a JSON object")
    sns = validated(SnsMessage, raw, "SNS")
    if sns.Type not in _TYPES:
        raise InvalidInput(f"not an SNS message type: {sns.Type!r}")
    if sns.TopicArn not in topics:
        raise SignatureRefused("the SNS topic is not one of NEWSLETTER_SES_TOPIC_ARNS")
    _verify(raw, sns, fetch)
    if sns.Type == "SubscriptionConfirmation":
        return _confirm(sns, fetch)
    if sns.Type == "UnsubscribeConfirmation":
        return Batch(note="unsubscribe confirmation: nothing to do")
    notification = json_body(sns.Message.encode(), "SES")
    if not isinstance(notification, dict):
        raise InvalidInput("not an SES notification: the Message is not a JSON object")
    return _ses_events(sns.MessageId, notification)


def _confirm(sns: SnsMessage, fetch: Fetcher) -> Batch:
    url = urlsplit(sns.SubscribeURL or "")
    host = url.hostname or ""
    if url.scheme != "https" or not (host == "amazonaws.com" or host.endswith(".amazonaws.com")):
        raise InvalidInput("SubscribeURL is not an https URL on an amazonaws.com host")
    fetch(str(sns.SubscribeURL))  # an OutboundError is an InvalidInput: SNS will try again
    return Batch(note=f"subscription to {sns.TopicArn} confirmed")


_CAMEL = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)


class _Recipient(BaseModel):
    model_config = _CAMEL
    email_address: str = Field(max_length=320)
    status: str | None = None
    diagnostic_code: str | None = None


class _Bounce(BaseModel):
    model_config = _CAMEL
    bounce_type: str
    bounce_sub_type: str | None = None
    bounced_recipients: list[_Recipient]


class _Complaint(BaseModel):
    model_config = _CAMEL
    complained_recipients: list[_Recipient]
    complaint_feedback_type: str | None = None


class _Mail(BaseModel):
    model_config = _CAMEL
    headers: list[dict[str, Any]] = []
    common_headers: dict[str, Any] = {}


class _Notification(BaseModel):
    model_config = _CAMEL
    notification_type: str | None = None
    event_type: str | None = None
    mail: _Mail = _Mail()
    bounce: _Bounce | None = None
    complaint: _Complaint | None = None


def _message_id(mail: _Mail) -> str | None:
    for header in mail.headers:
        if str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value", "")) or None
    value = mail.common_headers.get("messageId")
    return str(value) if value else None


def _ses_events(sns_id: str, data: dict[str, Any]) -> Batch:
    note = validated(_Notification, data, "SES")
    kind = note.notification_type or note.event_type or ""
    mid = _message_id(note.mail)
    if kind == "Bounce" and note.bounce is not None:
        bounce = note.bounce
        hard = bounce.bounce_type == "Permanent"
        detail = {"bounce_type": bounce.bounce_type, "sub_type": bounce.bounce_sub_type}
        events = [
            ProviderEvent(
                key=event_key("ses", sns_id, r.email_address.lower()),
                kind=Kind.hard if hard else Kind.soft,
                email=r.email_address,
                message_id=mid,
                status=r.status or bounce.bounce_type,
                detail=detail,
            )
            for r in bounce.bounced_recipients
        ]
        return Batch(events)
    if kind == "Complaint" and note.complaint is not None:
        feedback = note.complaint.complaint_feedback_type or "abuse"
        events = [
            ProviderEvent(
                key=event_key("ses", sns_id, r.email_address.lower()),
                kind=Kind.complaint,
                email=r.email_address,
                message_id=mid,
                detail={"feedback_type": feedback},
            )
            for r in note.complaint.complained_recipients
        ]
        return Batch(events)
    return Batch(skipped=[f"SES {kind or 'notification'}: not a bounce or a complaint"])
