"""The HTTP API transports (SES v2, Postmark, Mailgun, SendGrid) against local fakes.

Each fake (``tests.support.fake_providers``) is a real HTTP server that checks the request the
way the provider documents it (path, credentials, content type, fields; SES: the SigV4
signature recomputed with the same secret) and answers the documented success and error
bodies; the tests check the request's shape and how each reply is sorted: the reply text with
the provider's message id, or a temporary or a permanent failure with the provider's message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from pydantic import ValidationError

from newsletter.config import Settings
from newsletter.sending import outcomes
from newsletter.transports import PermanentFailure, TemporaryFailure, Transport, sigv4
from newsletter.transports.factory import make_transport
from newsletter.transports.http import failure
from newsletter.transports.mailgun import MailgunConfig, MailgunTransport
from newsletter.transports.postmark import PostmarkConfig, PostmarkTransport
from newsletter.transports.sendgrid import SendGridConfig, SendGridTransport
from newsletter.transports.ses import SESConfig, SESTransport
from newsletter.transports.smtp import SMTPTransport
from tests.support.fake_providers import (
    MAILGUN_DOMAIN,
    MAILGUN_KEY,
    POSTMARK_TOKEN,
    SENDGRID_KEY,
    SES_KEY,
    FakeProvider,
    sigv4_check,
)

TO = "jane@example.com"
BOUNCES = "bounces@news.example.org"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def message(to: str = TO) -> bytes:
    """A message shaped like ours: DKIM-signed, two parts, the list headers, CRLF."""
    msg = EmailMessage()
    msg["From"] = "Weekly Notes <news@news.example.org>"
    msg["To"] = f"Jane Doe <{to}>"
    msg["Subject"] = (
        "Ünïcode and a long subject line, to be sure it folds when the header is written"
    )
    msg["Message-ID"] = make_msgid(domain="news.example.org")
    msg["Reply-To"] = "Editor <editor@news.example.org>"
    msg["List-Unsubscribe"] = (
        "<https://news.example.org/u/tok>, <mailto:unsubscribe@x.org?subject=tok>"
    )
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Hello Jane,\nthe text part.\n", cte="quoted-printable")
    msg.add_alternative("<p>Hello <b>Jane</b>, the HTML part.</p>\n", subtype="html")
    data = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b"DKIM-Signature: v=1; a=rsa-sha256; d=news.example.org; s=s1; b=abc\r\n" + data


# --- SigV4 against AWS's published vectors ---------------------------------------------------


def test_the_signing_key_is_the_one_aws_documents() -> None:
    key = sigv4.signing_key(EXAMPLE_SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


@pytest.mark.parametrize(
    ("query", "signature"),
    [  # the Signature Version 4 test suite: get-vanilla, get-vanilla-query-order-key-case
        ("", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_signatures_match_the_aws_test_suite(query: str, signature: str) -> None:
    header = sigv4.authorization(
        method="GET",
        path="/",
        query=query,
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        payload=b"",
        access_key="AKIDEXAMPLE",
        secret=EXAMPLE_SECRET,
        region="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert header == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


# --- fixtures ----------------------------------------------------------------------------------


def _fake(provider: str) -> Iterator[FakeProvider]:
    with FakeProvider(provider) as fake:
        yield fake


@pytest.fixture
def ses_fake() -> Iterator[FakeProvider]:
    yield from _fake("ses")


@pytest.fixture
def postmark_fake() -> Iterator[FakeProvider]:
    yield from _fake("postmark")


@pytest.fixture
def mailgun_fake() -> Iterator[FakeProvider]:
    yield from _fake("mailgun")


@pytest.fixture
def sendgrid_fake() -> Iterator[FakeProvider]:
    yield from _fake("sendgrid")


def ses(fake: FakeProvider, secret: str = SES_KEY[1], **extra: object) -> SESTransport:
    return SESTransport(
        SESConfig(
            region=fake.region,
            access_key_id=SES_KEY[0],
            secret_access_key=secret,
            endpoint=fake.url,
            timeout=5,
            **extra,  # type: ignore[arg-type]
        )
    )


def postmark(fake: FakeProvider, token: str = POSTMARK_TOKEN) -> PostmarkTransport:
    return PostmarkTransport(PostmarkConfig(token, base_url=fake.url, timeout=5))


def mailgun(
    fake: FakeProvider, domain: str = MAILGUN_DOMAIN, key: str = MAILGUN_KEY
) -> MailgunTransport:
    return MailgunTransport(MailgunConfig(domain, key, base_url=fake.url, timeout=5))


def sendgrid(fake: FakeProvider, key: str = SENDGRID_KEY) -> SendGridTransport:
    return SendGridTransport(SendGridConfig(key, base_url=fake.url, timeout=5))


# --- SES ---------------------------------------------------------------------------------------


def test_ses_sends_our_raw_message_signed(ses_fake: FakeProvider) -> None:
    transport = ses(ses_fake, configuration_set="newsletter")
    data = message()
    reply = transport.send(BOUNCES, TO, data)
    transport.send(BOUNCES, "bob@example.com", message("bob@example.com"))
    transport.close()
    assert reply == "200 ses: accepted, MessageId 0102018c-ses-000001"
    first, second = ses_fake.requests
    assert (first.method, first.path) == ("POST", "/v2/email/outbound-emails")
    assert first.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIDFAKE/\d{8}/eu-west-1/ses/aws4_request, "
        r"SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}",
        first.headers["authorization"],
    )
    assert first.problems == [] and sigv4_check(first, SES_KEY[1], "eu-west-1") is None
    assert first.fields["Destination"] == {"ToAddresses": [TO]}
    assert first.message == data  # the DKIM-signed bytes, unchanged
    assert first.fields["ConfigurationSetName"] == "newsletter"
    assert first.peer == second.peer  # one kept-alive connection


def test_ses_a_tampered_body_fails_the_fakes_signature_check(ses_fake: FakeProvider) -> None:
    transport = ses(ses_fake)
    transport.send(BOUNCES, TO, message())
    transport.close()
    seen = ses_fake.requests[0]
    seen.body = seen.body.replace(b"jane@", b"john@")
    assert sigv4_check(seen, SES_KEY[1], "eu-west-1") == "SignatureDoesNotMatch"


def test_ses_a_wrong_secret_is_refused_and_temporary(ses_fake: FakeProvider) -> None:
    transport = ses(ses_fake, secret="not-the-secret")
    with pytest.raises(TemporaryFailure) as caught:
        transport.send(BOUNCES, TO, message())
    transport.close()
    assert caught.value.code is None
    assert caught.value.response.startswith("403 ses: SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("status", "kind", "error", "smtp"),
    [  # smtp: the code the sender reads (451 slows the shared rate, 554 fails the row)
        (400, "MessageRejected", PermanentFailure, 554),
        (400, "BadRequestException", PermanentFailure, 554),
        (429, "TooManyRequestsException", TemporaryFailure, 451),
        (400, "LimitExceededException", TemporaryFailure, None),
        (400, "SendingPausedException", TemporaryFailure, None),
        (400, "AccountSuspendedException", TemporaryFailure, None),
        (500, "InternalFailure", TemporaryFailure, None),
    ],
)
def test_ses_errors_are_sorted_by_their_type(
    ses_fake: FakeProvider, status: int, kind: str, error: type[Exception], smtp: int | None
) -> None:
    ses_fake.script[TO] = [
        (status, {"message": f"{kind} said so"}, {"x-amzn-ErrorType": f"{kind}:http://x/"})
    ]
    transport = ses(ses_fake)
    with pytest.raises(error) as caught:
        transport.send(BOUNCES, TO, message())
    transport.close()
    assert type(caught.value) is error
    assert caught.value.code == smtp  # type: ignore[attr-defined]
    assert caught.value.response == f"{status} ses: {kind}: {kind} said so"  # type: ignore[attr-defined]


# --- Postmark ----------------------------------------------------------------------------------


def test_postmark_sends_the_messages_parts(postmark_fake: FakeProvider) -> None:
    transport = postmark(postmark_fake)
    data = message()
    reply = transport.send(BOUNCES, TO, data)
    transport.close()
    assert reply == "200 postmark: accepted, MessageID b7bc2f4a-pm-000001"
    seen = postmark_fake.requests[0]
    assert (seen.method, seen.path) == ("POST", "/email")
    assert seen.headers["x-postmark-server-token"] == POSTMARK_TOKEN
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["content-type"] == "application/json"
    body = seen.fields
    assert body["From"] == "Weekly Notes <news@news.example.org>"
    assert body["To"] == f"Jane Doe <{TO}>"
    assert body["Subject"].startswith("Ünïcode and a long subject line, to be sure it folds")
    assert body["TextBody"] == "Hello Jane,\nthe text part.\n"
    assert body["HtmlBody"] == "<p>Hello <b>Jane</b>, the HTML part.</p>\n"
    assert body["ReplyTo"] == "Editor <editor@news.example.org>"
    assert body["MessageStream"] == "broadcast"
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://news.example.org/u/tok>")
    assert headers["Message-ID"].endswith("@news.example.org>")
    assert not {"DKIM-Signature", "From", "To", "Subject", "Content-Type"} & set(headers)


@pytest.mark.parametrize(
    ("status", "code", "error", "smtp"),
    [
        (422, 406, PermanentFailure, 550),  # inactive recipient (bounce, complaint, suppressed)
        (422, 300, PermanentFailure, 554),  # invalid email request (an illegal address)
        (422, 405, TemporaryFailure, None),  # not allowed to send (the account's credits)
        (422, 412, TemporaryFailure, None),  # account pending approval
        (429, 429, TemporaryFailure, 451),  # rate limited
        (500, 0, TemporaryFailure, None),
    ],
)
def test_postmark_errors_are_sorted_by_their_error_code(
    postmark_fake: FakeProvider, status: int, code: int, error: type[Exception], smtp: int | None
) -> None:
    postmark_fake.script[TO] = [(status, {"ErrorCode": code, "Message": "the reason"}, {})]
    transport = postmark(postmark_fake)
    with pytest.raises(error) as caught:
        transport.send(BOUNCES, TO, message())
    transport.close()
    assert type(caught.value) is error
    assert caught.value.code == smtp  # type: ignore[attr-defined]
    assert caught.value.response == f"{status} postmark: ErrorCode {code}: the reason"  # type: ignore[attr-defined]


def test_postmark_a_bad_token_is_temporary(postmark_fake: FakeProvider) -> None:
    transport = postmark(postmark_fake, token="wrong")
    with pytest.raises(TemporaryFailure, match="ErrorCode 10: Bad or missing Server API token"):
        transport.send(BOUNCES, TO, message())
    transport.close()


# --- Mailgun -----------------------------------------------------------------------------------


def test_mailgun_sends_our_raw_message(mailgun_fake: FakeProvider) -> None:
    transport = mailgun(mailgun_fake)
    data = message()
    reply = transport.send(BOUNCES, TO, data)
    transport.send(BOUNCES, TO, data)
    transport.close()
    assert reply == f"200 mailgun: Queued. Thank you. id <mg-000001@{MAILGUN_DOMAIN}>"
    seen = mailgun_fake.requests[0]
    assert (seen.method, seen.path) == ("POST", f"/v3/{MAILGUN_DOMAIN}/messages.mime")
    expected = base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
    assert seen.headers["authorization"] == f"Basic {expected}"
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert seen.fields["to"] == TO.encode()
    assert seen.message == data
    assert mailgun_fake.requests[1].peer == seen.peer


@pytest.mark.parametrize(
    ("status", "body", "error", "reply", "smtp"),
    [
        (
            400,
            {"message": "to parameter is not a valid address"},
            PermanentFailure,
            "400 mailgun: to parameter is not a valid address",
            554,
        ),
        (
            429,
            {"message": "Too many requests"},
            TemporaryFailure,
            "429 mailgun: Too many requests",
            451,
        ),
        (
            503,
            b"<html>Service Unavailable</html>",
            TemporaryFailure,
            "503 mailgun: <html>Service Unavailable</html>",
            None,
        ),
    ],
)
def test_mailgun_errors(
    mailgun_fake: FakeProvider,
    status: int,
    body: object,
    error: type[Exception],
    reply: str,
    smtp: int | None,
) -> None:
    mailgun_fake.script[TO] = [(status, body, {})]
    transport = mailgun(mailgun_fake)
    with pytest.raises(error) as caught:
        transport.send(BOUNCES, TO, message())
    transport.close()
    assert type(caught.value) is error
    assert caught.value.response == reply  # type: ignore[attr-defined]
    assert caught.value.code == smtp  # type: ignore[attr-defined]


def test_mailgun_a_wrong_key_or_domain_is_temporary(mailgun_fake: FakeProvider) -> None:
    for transport, code in (
        (mailgun(mailgun_fake, key="bad"), 401),
        (mailgun(mailgun_fake, domain="other.org"), 404),
    ):
        with pytest.raises(TemporaryFailure) as caught:
            transport.send(BOUNCES, TO, message())
        transport.close()
        assert caught.value.code is None
        assert caught.value.response.startswith(f"{code} mailgun: ")


# --- SendGrid ----------------------------------------------------------------------------------


def test_sendgrid_sends_the_messages_parts(sendgrid_fake: FakeProvider) -> None:
    transport = sendgrid(sendgrid_fake)
    reply = transport.send(BOUNCES, TO, message())
    transport.close()
    assert reply == "202 sendgrid: accepted, X-Message-Id sg-000001"
    seen = sendgrid_fake.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v3/mail/send")
    assert seen.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert seen.headers["content-type"] == "application/json"
    body = seen.fields
    assert body["personalizations"] == [{"to": [{"email": TO, "name": "Jane Doe"}]}]
    assert body["from"] == {"email": "news@news.example.org", "name": "Weekly Notes"}
    assert body["reply_to"] == {"email": "editor@news.example.org", "name": "Editor"}
    assert body["content"] == [  # text/plain first, as SendGrid requires
        {"type": "text/plain", "value": "Hello Jane,\nthe text part.\n"},
        {"type": "text/html", "value": "<p>Hello <b>Jane</b>, the HTML part.</p>\n"},
    ]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["List-Unsubscribe"].startswith("<https://news.example.org/u/tok>")
    assert "Message-ID" in body["headers"] and "DKIM-Signature" not in body["headers"]


@pytest.mark.parametrize(
    ("status", "error", "smtp"),
    [
        (400, PermanentFailure, 554),
        (413, PermanentFailure, 554),
        (429, TemporaryFailure, 451),
        (500, TemporaryFailure, None),
        (403, TemporaryFailure, None),
    ],
)
def test_sendgrid_errors(
    sendgrid_fake: FakeProvider, status: int, error: type[Exception], smtp: int | None
) -> None:
    body = {
        "errors": [
            {
                "message": "Does not contain a valid address.",
                "field": "personalizations.0.to.0.email",
            }
        ]
    }
    sendgrid_fake.script[TO] = [(status, body, {})]
    transport = sendgrid(sendgrid_fake)
    with pytest.raises(error) as caught:
        transport.send(BOUNCES, TO, message())
    transport.close()
    assert type(caught.value) is error
    assert caught.value.code == smtp  # type: ignore[attr-defined]
    assert caught.value.response == (  # type: ignore[attr-defined]
        f"{status} sendgrid: Does not contain a valid address. (personalizations.0.to.0.email)"
    )


# --- what every HTTP transport does alike -----------------------------------------------------


MAKERS: dict[str, Callable[[FakeProvider], Transport]] = {
    "ses": ses,
    "postmark": postmark,
    "mailgun": mailgun,
    "sendgrid": sendgrid,
}


@pytest.mark.parametrize("provider", sorted(MAKERS))
def test_a_timeout_is_temporary(provider: str) -> None:
    with FakeProvider(provider) as fake:
        fake.delay = 1.0
        transport = MAKERS[provider](fake)
        transport._client.timeout = __import__("httpx").Timeout(0.2)  # type: ignore[attr-defined]
        with pytest.raises(TemporaryFailure, match="timed out"):
            transport.send(BOUNCES, TO, message())
        transport.close()


@pytest.mark.parametrize("provider", sorted(MAKERS))
def test_a_provider_that_is_down_is_temporary(provider: str) -> None:
    with FakeProvider(provider) as fake:
        pass  # stopped: nothing listens on its port now
    transport = MAKERS[provider](fake)
    with pytest.raises(TemporaryFailure, match="cannot reach the API"):
        transport.send(BOUNCES, TO, message())
    transport.close()


@pytest.mark.parametrize("provider", sorted(MAKERS))
def test_an_international_domain_travels_as_idna_and_a_line_break_never_leaves(
    provider: str,
) -> None:
    with FakeProvider(provider) as fake:
        transport = MAKERS[provider](fake)
        transport.send(BOUNCES, "jane@bücher.example", message("jane@bücher.example"))
        with pytest.raises(PermanentFailure) as caught:
            transport.send(BOUNCES, "jane@example.com\r\nBcc: x@y.org", message())
        transport.close()
    assert [s.recipient for s in fake.requests] == ["jane@xn--bcher-kva.example"]
    assert caught.value.code is None  # refused on our side: the sender fails the row locally


def test_the_sender_reads_the_codes_as_it_reads_smtps() -> None:
    """451 slows the shared rate; Postmark's inactive recipient is a bounce (the address is
    dropped); another refusal fails the row; an account problem is retried."""
    throttled = failure("sendgrid", 429, "slow down")
    inactive = failure("postmark", 422, "ErrorCode 406: inactive", temporary=False, code=550)
    refused = failure("mailgun", 400, "bad request")
    account = failure("ses", 400, "SendingPausedException: paused", temporary=True)
    assert outcomes.classify(throttled, None).throttled
    assert outcomes.classify(inactive, None).kind is outcomes.Kind.bounced
    assert outcomes.classify(refused, None).kind is outcomes.Kind.failed
    assert outcomes.classify(account, None).kind is outcomes.Kind.retry
    assert not outcomes.classify(account, None).throttled


# --- settings and the factory -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "missing"),
    [
        ("ses", "NEWSLETTER_SES_ACCESS_KEY_ID and NEWSLETTER_SES_SECRET_ACCESS_KEY are not set"),
        ("postmark", "NEWSLETTER_POSTMARK_SERVER_TOKEN is not set"),
        ("mailgun", "NEWSLETTER_MAILGUN_DOMAIN and NEWSLETTER_MAILGUN_API_KEY are not set"),
        ("sendgrid", "NEWSLETTER_SENDGRID_API_KEY is not set"),
    ],
)
def test_a_provider_without_credentials_is_refused_in_one_line(
    transport: str, missing: str
) -> None:
    with pytest.raises(
        ValidationError, match=f"NEWSLETTER_TRANSPORT is '{transport}' but {missing}"
    ):
        Settings(transport=transport)  # type: ignore[arg-type]


def test_the_factory_builds_the_configured_transport() -> None:
    built = {
        "smtp": (Settings(), SMTPTransport),
        "ses": (
            Settings(transport="ses", ses_access_key_id="a", ses_secret_access_key="b"),
            SESTransport,
        ),
        "postmark": (Settings(transport="postmark", postmark_server_token="t"), PostmarkTransport),
        "mailgun": (
            Settings(
                transport="mailgun",
                mailgun_domain="d",
                mailgun_api_key="k",
                mailgun_base_url="https://api.eu.mailgun.net",
            ),
            MailgunTransport,
        ),
        "sendgrid": (
            Settings(transport="sendgrid", sendgrid_api_key="k", provider_timeout=7),
            SendGridTransport,
        ),
    }
    for settings, kind in built.values():
        transport = make_transport(settings.transport_config())
        assert type(transport) is kind
        transport.close()
    ses_transport = make_transport(built["ses"][0].transport_config())
    assert ses_transport.base_url == "https://email.us-east-1.amazonaws.com"  # type: ignore[attr-defined]
    mg = make_transport(built["mailgun"][0].transport_config())
    assert mg.base_url == "https://api.eu.mailgun.net"  # type: ignore[attr-defined]
    assert built["sendgrid"][0].transport_config().timeout == 7  # type: ignore[union-attr]


def test_the_lease_must_outlast_the_providers_timeout() -> None:
    with pytest.raises(ValidationError, match="twice NEWSLETTER_PROVIDER_TIMEOUT"):
        Settings(
            transport="sendgrid", sendgrid_api_key="k", provider_timeout=200, lease_seconds=300
        )


# --- our message read back for Postmark and SendGrid ------------------------------------------


@pytest.mark.parametrize(
    ("from_name", "to_name", "subject"),
    [
        ("Weekly Notes", "Jane Doe", "Plain subject"),
        ("Doe, Jane & Co.", 'Ann "the Reader" Lee', 'Ünïcode — and quotes "here"'),
        ("Wöchentliche, Notizen", "Ярослава", "日本語の件名と、とても長い件名" * 4),
    ],
)
def test_read_message_agrees_with_the_email_packages_modern_parser(
    from_name: str, to_name: str, subject: str
) -> None:
    """The fast reading (compat32, decoded by hand) against policy.default's header objects."""
    from email import message_from_bytes, message_from_string, policy

    from newsletter.transports.http import read_message

    msg = EmailMessage()
    msg["From"] = Address(from_name, "news", "news.example.org")
    msg["To"] = Address(to_name, "jane", "example.com")
    msg["Subject"] = subject
    msg["List-Unsubscribe"] = "<https://news.example.org/u/tok>"
    msg.set_content("Grüße,\nthe text part.\n", cte="quoted-printable")
    msg.add_alternative("<p>Grüße — HTML</p>\n", subtype="html", cte="base64")
    data = msg.as_bytes(policy=policy.SMTP)
    oracle = message_from_bytes(data, policy=policy.default)
    parts = read_message(data, TO)
    assert parts.subject == str(oracle["Subject"])
    (sender,) = oracle["From"].addresses
    assert (parts.from_name, parts.from_email) == (sender.display_name, sender.addr_spec)
    assert parts.to_name == oracle["To"].addresses[0].display_name == to_name
    reparsed = message_from_string(f"From: {parts.from_header}\n\n", policy=policy.default)
    assert reparsed["From"].addresses[0] == sender  # the quoting holds
    assert parts.text == "Grüße,\nthe text part.\n"
    assert parts.html == "<p>Grüße — HTML</p>\n"
    assert dict(parts.headers)["List-Unsubscribe"] == "<https://news.example.org/u/tok>"
