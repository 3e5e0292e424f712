"""The providers' verification details, without a database: the SNS string to sign, the
signing certificate's URL, SendGrid's key formats, the generic form's clock."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization

from newsletter.audience import provider_formats, provider_sns
from newsletter.audience.provider_types import (
    NotConfigured,
    SignatureMissing,
    SignatureRefused,
    WebhookRequest,
)
from newsletter.config import Settings
from tests.integration import provider_support as ps


def test_the_sns_string_to_sign_follows_the_documented_order() -> None:
    notification = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "SignatureVersion": "1",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
    }
    assert provider_sns.string_to_sign(notification) == (
        "Message\nHello world!\n"
        "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        "Subject\nMy First Message\n"
        "Timestamp\n2012-05-02T00:54:06.655Z\n"
        "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
        "Type\nNotification\n"
    )
    without_subject = {k: v for k, v in notification.items() if k != "Subject"}
    assert "Subject" not in provider_sns.string_to_sign(without_subject)
    confirmation = ps.sns_confirmation()
    assert provider_sns.string_to_sign(confirmation).encode() == ps.canonical(confirmation)
    assert provider_sns.string_to_sign(confirmation).startswith("Message\n")
    assert "\nSubscribeURL\n" in provider_sns.string_to_sign(confirmation)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/cert.pem",  # not https
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
    ],
)
def test_a_signing_certificate_off_sns_is_refused_unfetched(url: str) -> None:
    settings = Settings(ses_topic_arns=ps.TOPIC)
    message = {**ps.sns_sign(ps.sns_confirmation()), "SigningCertURL": url}
    fetched: list[str] = []

    def fetch(u: str) -> bytes:
        fetched.append(u)
        return ps.sns_certificate()

    with pytest.raises(SignatureRefused):
        provider_sns.read_ses(settings, WebhookRequest({}, json.dumps(message).encode()), fetch)
    assert fetched == []


def test_sendgrid_keys_are_read_as_base64_der_or_pem() -> None:
    der = ps.sendgrid_public_key()
    pem = (
        ps.sendgrid_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert provider_formats.sendgrid_key(der).public_numbers() == (
        provider_formats.sendgrid_key(pem).public_numbers()
    )
    with pytest.raises(NotConfigured):
        provider_formats.sendgrid_key(base64.b64encode(b"not a key").decode())


def test_the_generic_form_refuses_a_request_out_of_its_window() -> None:
    settings = Settings(generic_webhook_secret=ps.GENERIC_SECRET)
    body = b'{"type": "complaint", "email": "reader@example.org"}'
    headers = {k.lower(): v for k, v in ps.generic_headers(body, at=1_000_000).items()}
    request = WebhookRequest(headers, body)

    inside = provider_formats.read_generic(settings, request, now=1_000_000 + 299)
    assert [e.kind for e in inside.events] == ["complaint"]
    with pytest.raises(SignatureRefused, match="too old"):
        provider_formats.read_generic(settings, request, now=1_000_000 + 301)
    with pytest.raises(SignatureMissing):
        provider_formats.read_generic(settings, WebhookRequest({}, body))
