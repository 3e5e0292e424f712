"""The confirmation email as the SMTP sink receives it: headers, parts, the link, CRLF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from email import message_from_string
from email.policy import default
from typing import Any

import pytest
from sqlmodel import Session, select

from newsletter.audience import confirmations
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.config import Settings
from newsletter.content import rendering
from newsletter.exceptions import DatabaseUnavailable, TemporaryFailure
from newsletter.models import Subscriber, Subscription, SubscriptionStatus
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_newsletter
from tests.integration.public_support import confirm_link, parse, text_of, unique_email


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def transport(sink: SMTPSink) -> Iterator[SMTPTransport]:
    smtp = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=5))
    yield smtp
    smtp.close()


def pending(session: Session, name: str, *newsletter_names: str) -> ConfirmationRequest:
    """A pending subscriber (the name stored as is, as an import might have) on new lists."""
    person = Subscriber(email=unique_email(), name=name)
    session.add(person)
    session.flush()
    ids = []
    for nl_name in newsletter_names or ("Belarus Weekly",):
        nl = make_newsletter(session, name=nl_name)
        session.add(
            Subscription(subscriber_id=person.id, newsletter_id=nl.id, status="pending")  # type: ignore[arg-type]
        )
        ids.append(nl.id)
    session.commit()
    return ConfirmationRequest(person.id, tuple(ids), "form", "2025-10")  # type: ignore[arg-type]


def test_the_confirmation_has_proper_headers_both_parts_and_a_working_link(
    settings: Settings, session: Session, sink: SMTPSink, transport: SMTPTransport
) -> None:
    request = pending(session, "Ales")

    outcome = confirmations.send_confirmation(settings, request, transport=transport)

    assert outcome.startswith("sent <")
    (received,) = sink.messages
    assert received.mail_from == settings.bounce_address
    message = parse(received.data)
    assert str(message["From"]) == "Belarus Weekly <weekly@news.example.org>"
    assert str(message["Reply-To"]) == "editors@news.example.org"
    assert message["To"].addresses[0].display_name == "Ales"
    assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
    assert str(message["Subject"]) == "Confirm your subscription to Belarus Weekly"
    assert message["Date"].datetime.tzinfo is not None
    assert str(message["Message-ID"]).endswith("@news.example.org>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None  # a transactional email, not a list message
    assert "Hello Ales," in text_of(message)
    url = confirm_link(message)
    assert url.startswith("https://news.example.org/confirm/")
    html = message.get_body(("html",))
    assert html is not None and url in html.get_content()  # type: ignore[attr-defined]
    assert "__NL_" not in received.data.decode("ascii")
    assert b"\n" not in received.data.replace(b"\r\n", b"")  # CRLF only, no bare LF


def test_one_email_names_every_newsletter_waiting(
    settings: Settings, session: Session, sink: SMTPSink, transport: SMTPTransport
) -> None:
    request = pending(session, "", "Belarus Weekly", "Minsk Daily")

    confirmations.send_confirmation(settings, request, transport=transport)

    message = parse(sink.messages[0].data)
    assert str(message["Subject"]) == (
        "Confirm your subscription to Belarus Weekly and Minsk Daily"
    )
    assert "Hello," in text_of(message)


@pytest.mark.parametrize(
    "name",
    ["Eve\r\nBcc: victim@example.net", "Eve\nSubject: free money", "Eve\rX-Evil: 1", "Ève\u2028Z"],
)
def test_a_stored_name_with_line_breaks_cannot_add_headers(
    settings: Settings, session: Session, sink: SMTPSink, transport: SMTPTransport, name: str
) -> None:
    request = pending(session, name)

    confirmations.send_confirmation(settings, request, transport=transport)

    (received,) = sink.messages
    assert received.rcpt_tos == [received.rcpt_tos[0]]
    message = parse(received.data)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert len(message.get_all("Subject") or []) == 1
    (to,) = message["To"].addresses
    assert "\r" not in to.display_name and "\n" not in to.display_name
    assert to.display_name.startswith(("Eve ", "Ève "))


def test_nothing_is_sent_when_nothing_waits_for_a_confirmation(
    settings: Settings, session: Session, sink: SMTPSink, transport: SMTPTransport
) -> None:
    request = pending(session, "Ales")
    (sub,) = session.exec(
        select(Subscription).where(Subscription.subscriber_id == request.subscriber_id)
    ).all()
    sub.status = SubscriptionStatus.active  # confirmed before the worker got to the email
    session.add(sub)
    session.commit()

    outcome = confirmations.send_confirmation(settings, request, transport=transport)

    assert outcome.startswith("skipped")
    assert sink.messages == []


def test_a_temporary_failure_propagates_for_the_task_to_retry(
    settings: Settings, session: Session
) -> None:
    request = pending(session, "Ales")
    closed = SMTPTransport(SMTPConfig(host="127.0.0.1", port=1, timeout=2))
    with pytest.raises(TemporaryFailure):
        confirmations.send_confirmation(settings, request, transport=closed)


def test_the_confirmation_mjml_is_compiled_once_per_set_of_newsletters(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    nl = make_newsletter(session, name=f"Cache Test {unique_email()}")
    calls = []
    real = rendering.compile_mjml

    def counting(source: str, *, template: str) -> str:
        calls.append(template)
        return real(source, template=template)

    monkeypatch.setattr(rendering, "compile_mjml", counting)
    for _ in range(3):
        confirmations.compile_confirmation([nl], valid_days=7)
    assert calls == ["email/confirm.mjml.j2"]


def _non_ascii_pending(session: Session) -> ConfirmationRequest:
    request = pending(session, "Pelé")
    person = session.get(Subscriber, request.subscriber_id)
    assert person is not None
    person.email = "pelé@example.org"
    session.add(person)
    session.commit()
    return request


def test_a_non_ascii_address_gets_its_confirmation_over_smtputf8(
    settings: Settings, session: Session, sink: SMTPSink, transport: SMTPTransport
) -> None:
    outcome = confirmations.send_confirmation(
        settings, _non_ascii_pending(session), transport=transport
    )
    assert outcome.startswith("sent <")
    (received,) = sink.messages
    assert received.rcpt_tos == ["pelé@example.org"]
    # RFC 6532: the header carries the address as UTF-8 (the email package reads it from text)
    message = message_from_string(received.data.decode("utf-8"), policy=default)
    assert message["To"].addresses[0].addr_spec == "pelé@example.org"
    assert message["To"].addresses[0].display_name == "Pelé"


def test_a_non_ascii_address_is_refused_clearly_by_a_relay_without_smtputf8(
    settings: Settings, session: Session
) -> None:
    request = _non_ascii_pending(session)
    with SMTPSink(smtputf8=False) as plain:
        smtp = SMTPTransport(SMTPConfig(host=plain.host, port=plain.port, timeout=5))
        outcome = confirmations.send_confirmation(settings, request, transport=smtp)
        smtp.close()
    assert outcome.startswith("refused:") and "SMTPUTF8" in outcome
    assert plain.messages == []


def test_a_database_that_is_away_is_retried_and_nothing_is_sent(
    settings: Settings,
    session: Session,
    sink: SMTPSink,
    transport: SMTPTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = pending(session, "Ales")
    away = settings.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/x"})

    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        confirmations.send_confirmation(away, request, transport=transport)
    with pytest.raises(DatabaseUnavailable):  # the outbox's path: its claim needs the database
        confirmations.send_confirmation(away, replace(request, outbox_id=1), transport=transport)
    assert sink.messages == []

    # the task retries it (Celery's autoretry; run eagerly, each retry runs at once): every
    # try meets the database away, until the retries are spent
    from worker import celery_app, tasks

    tries: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> str:
        tries.append(1)
        return send(*args, **kwargs)

    send = confirmations.send_confirmation
    monkeypatch.setattr(tasks.confirmations, "send_confirmation", counted)
    celery_app.configure(away)
    try:
        args = [request.subscriber_id, list(request.newsletter_ids), "form", "2025-10"]
        result = tasks.send_confirmation.apply(args=args)
    finally:
        celery_app.configure(settings)
    assert result.state == "FAILURE" and isinstance(result.result, DatabaseUnavailable)
    assert len(tries) == 1 + tasks.send_confirmation.max_retries
    assert sink.messages == []
