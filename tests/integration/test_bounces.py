"""Bounces (RFC 3464 DSNs), complaints (ARF) and mailto unsubscribes, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from sqlmodel import Session, select

from newsletter.audience import bounces
from newsletter.audience.links import Purpose, make_token
from newsletter.audience.suppression import reason_for
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.mail.message import message_id
from newsletter.models import Delivery, Subscriber, SubscriberEvent, Subscription
from newsletter.sending.start import fill_ledger
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration import mail_reports


def statuses(session: Session, person: Subscriber) -> list[str]:
    session.expire_all()
    subs = session.exec(
        select(Subscription)
        .where(Subscription.subscriber_id == person.id)
        .order_by(Subscription.newsletter_id)  # type: ignore[arg-type]
    ).all()
    return [s.status for s in subs]


def subscription(session: Session, person: Subscriber) -> Subscription:
    session.expire_all()
    return session.exec(select(Subscription).where(Subscription.subscriber_id == person.id)).one()


def process(session: Session, settings: Settings, raw: bytes) -> bounces.BounceResult:
    result = bounces.process_message(session, settings, raw)
    session.commit()
    return result


def our_message_id(settings: Settings, issue_id: int, person: Subscriber) -> str:
    assert person.id is not None
    return message_id(
        settings.secret_key, issue_id=issue_id, subscriber_id=person.id, domain="news.example.org"
    )


def two_newsletters(session: Session) -> Subscriber:
    """One reader on two newsletters."""
    weekly, daily = make_newsletter(session), make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    session.add(Subscription(subscriber_id=person.id, newsletter_id=daily.id, status="active"))  # type: ignore[arg-type]
    session.commit()
    return person


# ---------------------------------------------------------------- hard and soft bounces


def test_a_hard_bounce_marks_every_subscription_bounced_and_suppresses(
    session: Session, settings: Settings
) -> None:
    person = two_newsletters(session)

    result = process(session, settings, mail_reports.dsn(person.email, status="5.1.1"))

    assert result.kind == "hard"
    assert (result.subscriber_ids, result.addresses, result.status) == (
        [person.id],
        [person.email],
        "5.1.1",
    )
    assert statuses(session, person) == ["bounced", "bounced"]
    assert reason_for(session, person.email) == "bounced"
    event = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "bounce")).one()
    assert event.detail["type"] == "hard" and event.detail["status"] == "5.1.1"


def test_soft_bounces_are_counted_and_the_limit_in_a_row_bounces(
    session: Session, settings: Settings
) -> None:
    weekly = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    delayed = mail_reports.dsn(person.email, status="4.2.2", action="delayed")

    first = process(session, settings, delayed)
    assert first.kind == "soft" and first.outcome == "soft bounce 1 of 3 in a row"
    sub = subscription(session, person)
    assert (sub.status, sub.soft_bounces) == ("active", 1)
    assert sub.last_bounce_at is not None

    process(session, settings, delayed)
    assert subscription(session, person).status == "active"
    third = process(session, settings, delayed)

    assert "limit 3 reached" in third.outcome
    sub = subscription(session, person)
    assert (sub.status, sub.soft_bounces) == ("bounced", 3)
    assert reason_for(session, person.email) == "bounced"


def test_a_failed_4xx_is_soft_and_a_policy_5xx_is_soft_too(
    session: Session, settings: Settings
) -> None:
    weekly = make_newsletter(session)
    full, blocked = make_subscribers(session, weekly, 2)

    assert process(session, settings, mail_reports.dsn(full.email, status="4.2.2")).kind == "soft"
    assert process(session, settings, mail_reports.dsn(blocked.email, status="5.7.1")).kind == (
        "soft"
    )
    assert subscription(session, full).soft_bounces == 1
    assert subscription(session, blocked).status == "active"


def test_the_message_id_finds_the_reader_behind_a_forwarding_address(
    session: Session, settings: Settings
) -> None:
    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1)
    mid = our_message_id(settings, fx.issue.id, person)  # type: ignore[arg-type]

    result = process(
        session, settings, mail_reports.dsn("forwarded@elsewhere.example", message_id=mid)
    )

    assert result.subscriber_ids == [person.id]
    assert statuses(session, person) == ["bounced"]


def test_a_forged_message_id_is_not_trusted(session: Session, settings: Settings) -> None:
    weekly = make_newsletter(session)
    victim, sender = make_subscribers(session, weekly, 2)
    forged = f"<1.{victim.id}.0000000000000000@news.example.org>"

    result = process(session, settings, mail_reports.dsn(sender.email, message_id=forged))

    assert result.subscriber_ids == [sender.id]
    assert statuses(session, victim) == ["active"]


def test_the_original_to_is_the_last_resort(session: Session, settings: Settings) -> None:
    weekly = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    raw = mail_reports.dsn("rewritten@relay.example", original_to=person.email)
    assert process(session, settings, raw).subscriber_ids == [person.id]


def test_a_non_standard_bounce_is_read_by_flufl_heuristics(
    session: Session, settings: Settings
) -> None:
    weekly = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    result = process(session, settings, mail_reports.qmail(person.email))
    assert (result.kind, result.subscriber_ids) == ("hard", [person.id])


def test_a_bounce_for_an_unknown_address_changes_nothing(
    session: Session, settings: Settings
) -> None:
    result = process(session, settings, mail_reports.dsn("stranger@example.net"))
    assert result.kind == "hard" and result.subscriber_ids == []
    assert result.outcome == "bounce for no known subscriber"


# ---------------------------------------------------------------- complaints, unsubscribes


def test_a_complaint_marks_every_subscription_complained(
    session: Session, settings: Settings
) -> None:
    person = two_newsletters(session)

    result = process(session, settings, mail_reports.arf(person.email))

    assert (result.kind, result.subscriber_ids) == ("complaint", [person.id])
    assert statuses(session, person) == ["complained", "complained"]
    assert reason_for(session, person.email) == "complained"


def test_a_complaint_without_rcpt_to_is_matched_by_message_id(
    session: Session, settings: Settings
) -> None:
    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1)
    mid = our_message_id(settings, fx.issue.id, person)  # type: ignore[arg-type]
    raw = mail_reports.arf("redacted@provider.example", message_id=mid, rcpt_to=False)
    assert process(session, settings, raw).subscriber_ids == [person.id]
    assert statuses(session, person) == ["complained"]


def test_the_mailto_unsubscribe_leaves_that_newsletter_only(
    session: Session, settings: Settings
) -> None:
    person = two_newsletters(session)
    first = session.exec(
        select(Subscription.newsletter_id).where(Subscription.subscriber_id == person.id)
    ).first()
    assert person.id is not None and first is not None
    token = make_token(settings.secret_key, Purpose.unsubscribe, person.id, first)

    result = process(session, settings, mail_reports.mailto_unsubscribe(token))

    assert result.kind == "unsubscribe"
    subs = {s.newsletter_id: s for s in session.exec(select(Subscription)).all()}
    assert subs[first].status == "unsubscribed" and subs[first].unsubscribed_at is not None
    assert [s.status for nid, s in subs.items() if nid != first] == ["active"]


def test_a_forged_unsubscribe_token_is_ignored(session: Session, settings: Settings) -> None:
    weekly = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    assert person.id is not None
    token = make_token("another-secret", Purpose.unsubscribe, person.id, weekly.id)

    result = process(session, settings, mail_reports.mailto_unsubscribe(token))

    assert result.kind == "ignored" and "not valid" in result.outcome
    assert statuses(session, person) == ["active"]


def test_a_plain_message_is_ignored_with_the_reason(session: Session, settings: Settings) -> None:
    result = process(session, settings, mail_reports.plain())
    assert (result.kind, result.outcome) == (
        "ignored",
        "not a bounce, a complaint or an unsubscribe",
    )


# ---------------------------------------------------------------- never sent to again


def test_bounced_complained_and_unsubscribed_readers_get_no_ledger_row(
    session: Session, settings: Settings
) -> None:
    fx = make_issue(session)
    hard, complainer, leaver, soft, fine = make_subscribers(session, fx.newsletter, 5)
    assert leaver.id is not None
    token = make_token(settings.secret_key, Purpose.unsubscribe, leaver.id, fx.newsletter.id)
    for raw in (
        mail_reports.dsn(hard.email),
        mail_reports.arf(complainer.email),
        mail_reports.mailto_unsubscribe(token),
        mail_reports.dsn(soft.email, status="4.2.2", action="delayed"),
    ):
        process(session, settings, raw)

    start = fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()

    assert (start.recipients, start.skipped) == (2, 3)
    ledger = session.exec(select(Delivery.subscriber_id)).all()
    assert set(ledger) == {soft.id, fine.id}


# ---------------------------------------------------------------- mbox


def test_an_mbox_is_split_into_its_messages() -> None:
    body_line = mail_reports.plain("From the desk").replace(
        b"Great issue", b"From here on: great issue"
    )
    data = mail_reports.mbox(mail_reports.dsn("a@example.org"), body_line, mail_reports.plain())

    messages = list(bounces.iter_messages(io.BytesIO(data)))

    assert len(messages) == 3
    assert messages[0].startswith(b"From: Mail Delivery System")
    assert b"\nFrom here on: great issue" in messages[1]  # the '>From ' quoting is undone
    assert not messages[2].endswith(b"\n\n")


def test_a_single_message_is_not_an_mbox() -> None:
    raw = mail_reports.dsn("a@example.org")
    assert list(bounces.iter_messages(io.BytesIO(raw))) == [raw]


@pytest.mark.parametrize("size", [bounces.MAX_MESSAGE_BYTES + 1])
def test_an_oversized_message_is_ignored(session: Session, settings: Settings, size: int) -> None:
    result = bounces.process_message(session, settings, b"x" * size)
    assert result.kind == "ignored" and "larger than" in result.outcome


def test_a_message_that_got_through_between_soft_bounces_starts_the_count_again(
    session: Session, settings: Settings
) -> None:
    """Three soft bounces, but not in a row: issue 2 was delivered between the first two."""
    from datetime import timedelta

    from sqlalchemy import update

    from newsletter.models import utcnow

    weekly = make_newsletter(session)
    (person,) = make_subscribers(session, weekly, 1)
    issues = []
    for _ in range(3):
        fx = make_issue(session, newsletter=weekly)
        fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
        session.commit()
        issues.append(fx.issue.id)

    def sent(issue_id: int | None, minutes_ago: int) -> None:
        session.execute(
            update(Delivery)
            .where(Delivery.issue_id == issue_id)  # type: ignore[arg-type]
            .values(status="sent", sent_at=utcnow() - timedelta(minutes=minutes_ago))
        )
        session.commit()

    def soft_bounce_of(issue_id: int | None) -> bounces.BounceResult:
        mid = our_message_id(settings, issue_id, person)  # type: ignore[arg-type]
        return process(
            session, settings, mail_reports.dsn(person.email, status="4.2.2", message_id=mid)
        )

    sent(issues[0], 30)
    assert soft_bounce_of(issues[0]).outcome == "soft bounce 1 of 3 in a row"
    session.execute(  # that bounce came in 25 minutes ago
        update(Subscription)
        .where(Subscription.subscriber_id == person.id)  # type: ignore[arg-type]
        .values(last_bounce_at=utcnow() - timedelta(minutes=25))
    )
    session.commit()
    sent(issues[1], 20)  # delivered after that bounce: no bounce came for it
    sent(issues[2], 10)
    assert soft_bounce_of(issues[2]).outcome == "soft bounce 1 of 3 in a row"
    assert soft_bounce_of(issues[2]).outcome == "soft bounce 2 of 3 in a row"
    assert subscription(session, person).status == "active"
