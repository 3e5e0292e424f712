"""GDPR export and erasure of one subscriber, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from newsletter.audience import gdpr
from newsletter.audience.suppression import email_hash, reason_for
from newsletter.content.qa import QAConfig
from newsletter.exceptions import NotFound
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberEvent,
    Subscription,
    utcnow,
)
from newsletter.sending import progress
from newsletter.sending.start import fill_ledger
from tests.conftest import IssueFixture, make_issue, make_subscribers


def sent_issue(session: Session) -> tuple[IssueFixture, Subscriber, Subscriber]:
    """An issue whose ledger has a sent row for the first of two readers."""
    fx = make_issue(session)
    person, other = make_subscribers(session, fx.newsletter, 2)
    session.add(
        SubscriberEvent(
            subscriber_id=person.id,  # type: ignore[arg-type]
            newsletter_id=fx.newsletter.id,
            kind="signup",
            ip="192.0.2.7",
            source="form",
            consent_text_version="2025-10",
        )
    )
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    row = session.exec(select(Delivery).where(Delivery.subscriber_id == person.id)).one()
    row.status, row.sent_at, row.message_id = DeliveryStatus.sent, utcnow(), "<1.2.abc@x>"
    row.smtp_response = f"250 2.0.0 Ok: queued for <{person.email}>"
    session.add(row)
    session.commit()
    return fx, person, other


def test_the_export_holds_subscriptions_events_and_deliveries(session: Session) -> None:
    fx, person, _other = sent_issue(session)

    data = gdpr.export_subscriber(session, person.email)

    json.dumps(data)  # JSON-ready as it is
    assert data["subscriber"]["email"] == person.email
    assert data["subscriber"]["name"] == person.name
    (sub,) = data["subscriptions"]
    assert sub["newsletter"] == fx.newsletter.slug and sub["status"] == "active"
    assert {"consent_at", "consent_ip", "consent_source", "consent_text_version"} <= set(sub)
    (event,) = data["events"]
    assert (event["kind"], event["ip"], event["consent_text_version"]) == (
        "signup",
        "192.0.2.7",
        "2025-10",
    )
    (sent,) = data["deliveries"]
    assert sent["issue_id"] == fx.issue.id and sent["issue_number"] == fx.issue.number
    assert (sent["status"], sent["message_id"]) == ("sent", "<1.2.abc@x>")
    assert sent["sent_at"].endswith("+00:00") or "T" in sent["sent_at"]


def test_the_export_finds_by_id_and_by_any_spelling_of_the_domain(session: Session) -> None:
    _fx, person, _other = sent_issue(session)
    assert person.id is not None
    local, domain = person.email.split("@")
    assert gdpr.export_subscriber(session, person.id)["subscriber"]["id"] == person.id
    by_email = gdpr.export_subscriber(session, f"{local}@{domain.upper()}")
    assert by_email["subscriber"]["id"] == person.id
    with pytest.raises(NotFound, match=r"no subscriber 'nobody@example\.org'"):
        gdpr.export_subscriber(session, "nobody@example.org")
    with pytest.raises(NotFound):
        gdpr.export_subscriber(session, "not an address")


def test_erasure_removes_personal_data_and_keeps_an_anonymous_ledger(session: Session) -> None:
    fx, person, other = sent_issue(session)
    address = person.email

    done = gdpr.erase_subscriber(session, address)
    session.commit()
    session.expire_all()

    assert (done.subscriptions, done.events, done.deliveries) == (1, 1, 1)
    assert done.email_hash == email_hash(address)
    erased = session.get(Subscriber, person.id)
    assert erased is not None
    assert (erased.email, erased.name, erased.attributes) == (
        f"erased-{person.id}@invalid",
        "",
        {},
    )
    assert (
        session.exec(select(Subscription).where(Subscription.subscriber_id == person.id)).all()
        == []
    )
    assert (
        session.exec(
            select(SubscriberEvent).where(SubscriberEvent.subscriber_id == person.id)
        ).all()
        == []
    )
    row = session.exec(select(Delivery).where(Delivery.subscriber_id == person.id)).one()
    assert row.status == "sent" and row.smtp_response is None  # the count stays true
    assert reason_for(session, address) == "erased"
    assert progress.progress(session, issue_id=fx.issue.id).total == 2  # type: ignore[arg-type]
    assert session.get(Subscriber, other.id).email == other.email  # type: ignore[union-attr]


def test_erasing_twice_is_harmless_and_the_export_shows_nothing_personal(
    session: Session,
) -> None:
    _fx, person, _other = sent_issue(session)
    assert person.id is not None
    gdpr.erase_subscriber(session, person.id)
    again = gdpr.erase_subscriber(session, person.id)
    session.commit()

    assert (again.subscriptions, again.events, again.email_hash) == (0, 0, "")
    data = gdpr.export_subscriber(session, person.id)
    assert data["subscriber"]["email"].startswith("erased-")
    assert data["subscriptions"] == [] and data["events"] == []
