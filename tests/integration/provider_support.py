"""Helpers for the provider webhook tests: keys, a self-signed SNS certificate, signed requests.

The payloads are shaped like the providers' documented examples (SES notification-examples,
Postmark's bounce and spam-complaint webhooks, SendGrid's Event Webhook reference, Mailgun's
webhook payloads); the SNS string to sign is written out here from AWS's documentation, not
taken from the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000.pem"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37"
)
POSTMARK_USER, POSTMARK_PASSWORD = "postmark", "pm-password"
MAILGUN_KEY = "mailgun-signing-key"
GENERIC_SECRET = "generic-secret"


# ---------------------------------------------------------------- keys


@cache
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def sns_certificate() -> bytes:
    key = sns_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@cache
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_key(key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """Base64 DER, as SendGrid's Mail Settings show the verification key."""
    der = (
        (key or sendgrid_key())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


# ---------------------------------------------------------------- the fetcher


@dataclass
class FakeFetcher:
    """Stands in for the outbound guard: serves the certificate, records every URL."""

    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if url.endswith(".pem"):
            return sns_certificate()
        return b"<ConfirmSubscriptionResponse/>"


# ---------------------------------------------------------------- SNS / SES

NOTIFICATION_KEYS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_KEYS = [
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
]


def canonical(message: dict[str, Any]) -> bytes:
    """AWS: each key then its value, each followed by a newline, in the fixed order; Subject
    only when present."""
    keys = NOTIFICATION_KEYS if message["Type"] == "Notification" else CONFIRMATION_KEYS
    lines = []
    for key in keys:
        if key in message:
            lines += [key, message[key]]
    return ("\n".join(lines) + "\n").encode()


def sns_sign(message: dict[str, Any], version: str = "2") -> dict[str, Any]:
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    signature = sns_key().sign(canonical(message), padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


def sns_notification(ses: dict[str, Any], *, topic: str = TOPIC) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": json.dumps(ses),
        "Timestamp": "2026-11-28T15:00:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def sns_confirmation(subscribe_url: str = SUBSCRIBE_URL) -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-28T15:00:00.000Z",
    }


def ses_bounce(email: str, bounce_type: str, status: str, message_id: str | None) -> dict[str, Any]:
    headers = [{"name": "Message-ID", "value": message_id}] if message_id else []
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "status": status,
                    "action": "failed",
                    "diagnosticCode": f"smtp; 550 {status} <{email}>... User",
                }
            ],
            "bounceSubType": "General",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
        },
        "mail": {
            "timestamp": "2016-01-27T14:59:38.237Z",
            "source": "news@news.example.org",
            "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
            "destination": [email],
            "headersTruncated": False,
            "headers": headers,
        },
    }


def ses_complaint(email: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2016-01-27T14:59:38.237Z",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": {
            "timestamp": "2016-01-27T14:59:38.237Z",
            "messageId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
            "source": "news@news.example.org",
            "destination": [email],
        },
    }


# ---------------------------------------------------------------- Postmark


def postmark_bounce(email: str, bounce_type: str, record_id: int) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": record_id,
        "Type": bounce_type,
        "TypeCode": 1 if bounce_type == "HardBounce" else 4096,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"a_key": "a_value"},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "Test bounce details",
        "Email": email,
        "From": "news@news.example.org",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Test subject",
        "Content": "Return-Path:....",
    }


def postmark_complaint(email: str, record_id: int) -> dict[str, Any]:
    return {
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": record_id,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "Test",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Metadata": {"a_key": "a_value", "b_key": "b_value"},
        "ServerID": 1234,
        "Description": "",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "news@news.example.org",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Test subject",
        "Content": "<Abuse report dump>",
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---------------------------------------------------------------- SendGrid


def sendgrid_event(email: str, event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": "cat facts",
        "sg_event_id": base64.b64encode(uuid.uuid4().bytes).decode(),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def sendgrid_headers(body: bytes, key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = (key or sendgrid_key()).sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


# ---------------------------------------------------------------- Mailgun


def mailgun(event_data: dict[str, Any], key: str = MAILGUN_KEY) -> dict[str, Any]:
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    stamp = str(int(time.time()))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"token": token, "timestamp": stamp, "signature": signature},
        "event-data": event_data,
    }


def mailgun_failed(email: str, severity: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "event": "failed",
        "id": uuid.uuid4().hex[:22],
        "timestamp": 1770146798.372891,
        "log-level": "error",
        "severity": severity,
        "reason": "generic",
        "recipient": email,
        "recipient-domain": email.rpartition("@")[2],
        "envelope": {"sender": "bounces@news.example.org", "transport": "smtp"},
        "delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "attempt-no": 1,
        },
        "message": {
            "headers": {
                "to": email,
                "message-id": message_id or "20260203192638.000be97f99f8cea1@sample.mailgun.com",
                "from": "news@news.example.org",
                "subject": "Sample webhook payload",
            },
            "size": 341,
        },
        "flags": {"is-authenticated": True, "is-test-mode": False},
        "tags": [],
        "user-variables": {},
    }


def mailgun_complained(email: str) -> dict[str, Any]:
    return {
        "event": "complained",
        "id": uuid.uuid4().hex[:22],
        "timestamp": 1770146798.372891,
        "log-level": "warn",
        "recipient": email,
        "message": {"headers": {"message-id": "20260203192638.000be97f99f8cea1@mailgun.com"}},
    }


# ---------------------------------------------------------------- generic


def generic_headers(
    body: bytes, secret: str = GENERIC_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Newsletter-Timestamp": stamp,
        "X-Newsletter-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }
