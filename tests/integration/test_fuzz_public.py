"""The public routes and the bounce parser under hypothesis, on SQLite and PostgreSQL.

Whatever a stranger sends (any bytes, any JSON, any form, any link) to the sign-up (JSON and
form), the personal-link pages or the archive, the answer is a 2xx/3xx/4xx with a reason in the
part's shape, never a 5xx. Whatever lands in the bounce mailbox, ``process_message`` classifies
it and applies it without an unhandled exception, on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from newsletter.api import create_app
from newsletter.audience import abuse, bounces
from newsletter.audience.links import Purpose, make_token
from newsletter.config import Settings
from newsletter.mail.message import message_id
from newsletter.models import Newsletter, Subscriber
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import Outbox

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "",
]

# any character, lone surrogates and NUL included
anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | anything,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(anything, inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture
def world(session: Session) -> tuple[Newsletter, Subscriber]:
    newsletter = make_newsletter(session)
    (reader,) = make_subscribers(session, newsletter, 1)
    return newsletter, reader


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.send_confirmation = Outbox()
    app.state.signup_limiter = abuse.SignupLimiter(
        abuse.MemoryWindow(), per_ip=10**9, per_address=10**9, seconds=3600
    )
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def assert_answered_with_a_reason(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code < 400:
        return
    if response.request.url.path.startswith("/api/"):
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]
    else:
        assert response.headers["content-type"].startswith("text/html")


# ---------------------------------------------------------------- POST /api/subscribe


@FUZZ
@given(body=st.binary(max_size=2048), content_type=st.sampled_from(CONTENT_TYPES))
def test_any_bytes_to_the_json_sign_up_get_an_answer_with_a_reason(
    client: TestClient, body: bytes, content_type: str
) -> None:
    response = client.post("/api/subscribe", content=body, headers={"Content-Type": content_type})
    assert_answered_with_a_reason(response)


@FUZZ
@given(value=json_values)
def test_any_json_document_to_the_json_sign_up_gets_an_answer_with_a_reason(
    client: TestClient, value: Any
) -> None:
    body = json.dumps(value).encode()  # ASCII: lone surrogates travel as \\udXXX escapes
    response = client.post(
        "/api/subscribe", content=body, headers={"Content-Type": "application/json"}
    )
    assert_answered_with_a_reason(response)


@FUZZ
@given(
    email=st.emails() | anything,
    name=anything,
    pick=st.lists(st.sampled_from(["known", "id", "other"]) | anything, max_size=4),
    version=st.none() | anything,
)
def test_any_sign_up_shaped_json_gets_an_answer_with_a_reason(
    client: TestClient,
    world: tuple[Newsletter, Subscriber],
    email: str,
    name: str,
    pick: list[str],
    version: str | None,
) -> None:
    newsletter, _ = world
    refs = {"known": newsletter.slug, "id": str(newsletter.id)}
    body = {
        "email": email,
        "name": name,
        "newsletters": [refs.get(p, p) for p in pick],
        "consent_text_version": version,
    }
    response = client.post(
        "/api/subscribe",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_answered_with_a_reason(response)
    assert response.status_code in (202, 413, 422)


# ---------------------------------------------------------------- the public forms and pages


form_fields = st.dictionaries(
    st.sampled_from(["email", "name", "newsletters", "action", "scope", "List-Unsubscribe"])
    | anything,
    st.lists(anything, min_size=1, max_size=3),
    max_size=5,
)


def _urlencoded(fields: dict[str, list[str]]) -> bytes:
    pairs = [
        f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
        for k, values in fields.items()
        for v in values
    ]
    return "&".join(pairs).encode()


@FUZZ
@given(fields=form_fields, page=st.sampled_from(["subscribe", "preferences", "unsubscribe"]))
def test_any_form_to_a_public_page_gets_an_answer_with_a_reason(
    client: TestClient,
    settings: Settings,
    world: tuple[Newsletter, Subscriber],
    fields: dict[str, list[str]],
    page: str,
) -> None:
    newsletter, reader = world
    assert reader.id is not None
    paths = {
        "subscribe": "/subscribe",
        "preferences": "/preferences/"
        + make_token(settings.secret_key, Purpose.preferences, reader.id, None),
        "unsubscribe": "/unsubscribe/"
        + make_token(settings.secret_key, Purpose.unsubscribe, reader.id, newsletter.id),
    }
    response = client.post(
        paths[page],
        content=_urlencoded(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_answered_with_a_reason(response)


@FUZZ
@given(
    prefix=st.sampled_from(["confirm", "unsubscribe", "preferences", "archive", "subscribe"]),
    segment=anything,
    method=st.sampled_from(["GET", "POST"]),
)
def test_any_link_to_a_public_page_gets_an_answer_with_a_reason(
    client: TestClient, prefix: str, segment: str, method: str
) -> None:
    path = f"/{prefix}/{quote(segment, safe='', errors='surrogatepass')}"
    assert_answered_with_a_reason(client.request(method, path))


# ---------------------------------------------------------------- the bounce parser


# any character, with the ones that break headers, addresses and databases made likely
nasty = st.sampled_from(list('\x00\r\n\t <>@;:,"\\\udcff\u2028'))
header_values = st.text(nasty | st.characters(codec=None, exclude_categories=()), max_size=80)
statuses = st.from_regex(r"[245]\.\d{1,3}\.\d{1,3}", fullmatch=True) | header_values


def _dsn(
    recipient: str, status: str, action: str, headers: dict[str, str], original_id: str
) -> bytes:
    """A multipart/report DSN, as raw as a mailbox holds it, with fields from hypothesis (a
    value may break its own line or the MIME structure: so may a hostile MTA)."""
    original = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return _as_bytes(
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: bounces@newsletter.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nThe message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Message-ID: {original_id}\r\n{original}\r\nHello.\r\n"
        "--B--\r\n"
    )


def _as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _arf(rcpt_to: str, feedback_type: str) -> bytes:
    return _as_bytes(
        "From: fbl@mailbox.example.net\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nOriginal-Rcpt-To: {rcpt_to}\r\n"
        "--B--\r\n"
    )


def _utf8_json(result: bounces.BounceResult) -> bytes:
    """What POST /api/bounces answers with: the result as UTF-8 JSON."""
    return json.dumps(result.as_dict(), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _dsn("a\x00b@example.org", "5.1.1", "failed", {}, "<x@y>"),
        _dsn("a@example.org", "5.1.1", "failed", {"To": "z\x00@example.org"}, "<x@y>"),
        _dsn("a@example.org", "5.1.1", "failed", {"To": "z\udcff@example.org"}, "<x@y>"),
        _arf("a\x00@example.org", "abuse"),
        _arf("a@example.org", "abuse") + b"\xff",
        _arf("\xe4@example.org", "abuse").replace(b"\xc3\xa4", b"\xe4"),  # Latin-1 bytes
        _dsn("a@example.org", "5.1.1", "failed", {}, "<" + "9" * 5000 + ".1.0123abcd4567ef89@x>"),
    ],
    ids=[
        "nul-recipient",
        "nul-to",
        "surrogate-to",
        "nul-arf",
        "trailing-byte",
        "latin-1",
        "long-id",
    ],
)
def test_hostile_bounces_are_classified_without_an_error(
    session: Session, settings: Settings, raw: bytes
) -> None:
    result = bounces.process_message(session, settings, raw)
    session.commit()
    assert _utf8_json(result)


@pytest.mark.parametrize("feedback_type", ["abuse\x00", "\udcff", "x" * 5000])
def test_a_complaint_about_a_reader_is_recorded_whatever_its_feedback_type_says(
    session: Session, settings: Settings, world: tuple[Newsletter, Subscriber], feedback_type: str
) -> None:
    _, reader = world
    result = bounces.process_message(session, settings, _arf(reader.email, feedback_type))
    session.commit()
    assert result.kind == bounces.Kind.complaint
    assert result.subscriber_ids == [reader.id]


@FUZZ
@given(raw=st.binary(max_size=4096))
def test_any_bytes_in_the_bounce_mailbox_are_classified_without_an_error(
    session: Session, settings: Settings, raw: bytes
) -> None:
    result = bounces.process_message(session, settings, raw)
    assert result.kind in set(bounces.Kind)
    assert _utf8_json(result)
    session.rollback()


@FUZZ
@given(
    recipient=st.emails() | header_values,
    status=statuses,
    action=st.sampled_from(["failed", "delayed", "delivered"]) | header_values,
    headers=st.dictionaries(
        st.sampled_from(["To", "X-Original-To", "Delivered-To", "Subject", "Content-Type"]),
        header_values,
        max_size=3,
    ),
    original_id=st.from_regex(r"<\d{1,5000}\.\d{1,30}\.[0-9a-f]{16}@[a-z.]{1,20}>", fullmatch=True)
    | header_values,
    ours=st.none() | st.integers(min_value=1, max_value=2**31 - 1),
    known=st.booleans(),
)
@example(  # a Message-ID of ours has at most 10 digits per id: more is not worth an int()
    recipient="a@example.org",
    status="5.1.1",
    action="failed",
    headers={},
    original_id="<" + "9" * 5000 + ".1.0123456789abcdef@news.example.org>",
    ours=None,
    known=False,
)
def test_any_dsn_shaped_message_is_classified_and_applied_without_an_error(
    session: Session,
    settings: Settings,
    world: tuple[Newsletter, Subscriber],
    recipient: str,
    status: str,
    action: str,
    headers: dict[str, str],
    original_id: str,
    ours: int | None,
    known: bool,
) -> None:
    """``ours``: the original carries a Message-ID we made (of issue ``ours``, maybe unknown)."""
    _, reader = world
    if ours is not None:
        assert reader.id is not None
        original_id = message_id(
            settings.secret_key, issue_id=ours, subscriber_id=reader.id, domain="example.org"
        )
    raw = _dsn(reader.email if known else recipient, status, action, headers, original_id)
    result = bounces.process_message(session, settings, raw)
    assert result.kind in set(bounces.Kind)
    assert _utf8_json(result)
    session.rollback()


@FUZZ
@given(subject=header_values, body=st.binary(max_size=512))
def test_any_mailto_unsubscribe_shaped_message_is_handled_without_an_error(
    session: Session, settings: Settings, subject: str, body: bytes
) -> None:
    raw = _as_bytes(f"From: reader@example.org\nSubject: unsubscribe {subject}\n\n") + body
    result = bounces.process_message(session, settings, raw)
    assert result.kind in (bounces.Kind.unsubscribe, bounces.Kind.ignored)
    session.rollback()
