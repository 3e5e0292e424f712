"""One way in: nobody who said no is mailed again, whichever path tries to bring them back.

Every path that creates or re-activates a subscription asks the same gate
(``subscribers.admission_refusals``); the ledger fill skips suppressed addresses on its own too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from newsletter import seeding
from newsletter.audience import gdpr, lifecycle, manage, preference_centre, subscribers, suppression
from newsletter.audience.links import ConfirmData
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidState
from newsletter.models import Delivery, Subscriber, Subscription, SubscriptionStatus, utcnow
from newsletter.sending.start import fill_ledger, recipient_count
from tests.conftest import make_issue, make_newsletter

VERSION = "2025-10"


def _erased(session: Session, address: str, newsletter: str) -> None:
    subscribers.subscribe(session, email=address, newsletters=[newsletter])
    gdpr.erase_subscriber(session, address)
    session.commit()


def _active(session: Session, address: str) -> list[str]:
    rows = session.exec(
        select(Subscription.status)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)  # type: ignore[arg-type]
        .where(func.lower(Subscriber.email) == address.lower())
    ).all()
    return [r for r in rows if r == SubscriptionStatus.active]


def test_cli_add_of_an_erased_address_is_refused(session: Session) -> None:
    nl = make_newsletter(session)
    _erased(session, "once@example.org", nl.slug)
    with pytest.raises(subscribers.Suppressed, match="erased"):
        subscribers.subscribe(session, email="Once@Example.org", newsletters=[nl.slug])
    assert _active(session, "once@example.org") == []


def test_admin_create_refuses_a_suppressed_address(session: Session) -> None:
    nl = make_newsletter(session)
    suppression.suppress(session, "bounced@example.org", suppression.Reason.bounced)
    with pytest.raises(InvalidState, match=r"suppression list \(bounced\)"):
        manage.create(session, email="Bounced@example.org", newsletters=[nl.slug])


def test_admin_update_refuses_a_bounced_address_unless_explicitly_reactivated(
    session: Session,
) -> None:
    nl, other = make_newsletter(session), make_newsletter(session)
    person = manage.create(session, email="box@example.org", newsletters=[nl.slug])
    pid = person.id
    assert pid is not None
    suppression.suppress(session, "box@example.org", suppression.Reason.bounced)
    with pytest.raises(InvalidState, match=r"suppression list \(bounced\)"):
        manage.update(session, pid, statuses={other.slug: SubscriptionStatus.active})
    # an operator's explicit re-activation lifts a bounce (never an erasure)
    manage.update(session, pid, statuses={other.slug: SubscriptionStatus.active}, reactivate=True)
    assert suppression.reason_for(session, "box@example.org") is None
    assert _active(session, "box@example.org") == ["active", "active"]


def test_an_erased_subscriber_record_cannot_be_edited(session: Session) -> None:
    nl = make_newsletter(session)
    _erased(session, "gone@example.org", nl.slug)
    erased = session.exec(select(Subscriber).where(Subscriber.email.like("erased-%"))).first()  # type: ignore[attr-defined]
    assert erased is not None
    with pytest.raises(InvalidState, match="erased"):
        manage.update(
            session,
            erased.id,
            statuses={nl.slug: SubscriptionStatus.active},
            reactivate=True,  # type: ignore[arg-type]
        )


def test_an_erased_person_comes_back_only_through_double_opt_in(session: Session) -> None:
    nl = make_newsletter(session)
    _erased(session, "back@example.org", nl.slug)
    signed = lifecycle.signup(
        session, email="back@example.org", newsletters=[nl.slug], consent_text_version=VERSION
    )
    assert signed.confirmation is not None  # the confirmation email goes out
    assert _active(session, "back@example.org") == []
    data = ConfirmData(
        subscriber_id=signed.subscriber_id,
        newsletter_ids=(nl.id,),  # type: ignore[arg-type]
        source="form",
        consent_text_version=VERSION,
        issued_at=utcnow() - timedelta(seconds=1),
    )
    done = lifecycle.confirm(session, data=data, ip=None, user_agent=None)
    assert done.confirmed == (nl.id,)
    assert suppression.reason_for(session, "back@example.org") is None
    assert _active(session, "back@example.org") == ["active"]


def test_a_complained_address_cannot_confirm_or_join_from_preferences(session: Session) -> None:
    nl, other = make_newsletter(session), make_newsletter(session)
    signed = lifecycle.signup(
        session, email="spam@example.org", newsletters=[nl.slug], consent_text_version=VERSION
    )
    suppression.suppress(session, "spam@example.org", suppression.Reason.complained)
    data = ConfirmData(
        subscriber_id=signed.subscriber_id,
        newsletter_ids=(nl.id,),  # type: ignore[arg-type]
        source="form",
        consent_text_version=VERSION,
        issued_at=utcnow(),
    )
    assert lifecycle.confirm(session, data=data, ip=None, user_agent=None).refused == (nl.id,)
    with pytest.raises(subscribers.Suppressed, match="complained"):
        preference_centre.update_preferences(
            session,
            subscriber_id=signed.subscriber_id,
            newsletter_ids=[other.id],  # type: ignore[list-item]
            consent_text_version=VERSION,
        )
    assert _active(session, "spam@example.org") == []


def test_the_seed_does_not_bring_back_an_erased_reader(session: Session) -> None:
    first = seeding.seed(session)
    session.commit()
    reader = session.exec(select(Subscriber).order_by(Subscriber.id)).first()  # type: ignore[arg-type]
    assert reader is not None
    address = reader.email
    gdpr.erase_subscriber(session, reader.id)  # type: ignore[arg-type]
    session.commit()
    again = seeding.seed(session)
    session.commit()
    assert again.subscribers == first.subscribers - 1
    assert _active(session, address) == []


def test_case_twins_are_one_subscriber(session: Session) -> None:
    nl = make_newsletter(session)
    first = subscribers.subscribe(session, email="reader@example.org", newsletters=[nl.slug])
    second = subscribers.subscribe(session, email="Reader@Example.org", newsletters=[nl.slug])
    assert first.id == second.id
    with pytest.raises(InvalidState, match="already subscriber"):
        manage.create(session, email="READER@example.org", newsletters=[nl.slug])


def test_the_ledger_fill_skips_a_suppressed_address_even_with_an_active_subscription(
    session: Session,
) -> None:
    fx = make_issue(session)
    people = [Subscriber(email=f"r{i}@example.org", name="") for i in range(3)]
    session.add_all(people)
    session.flush()
    session.add_all(
        Subscription(subscriber_id=p.id, newsletter_id=fx.newsletter.id, status="active")  # type: ignore[arg-type]
        for p in people
    )
    # a subscription made active behind the gate's back (raw SQL, an old bug, a restore)
    suppression.suppress(session, "R1@example.org", suppression.Reason.complained)
    session.commit()
    assert recipient_count(session, newsletter_id=fx.newsletter.id) == 2  # type: ignore[arg-type]
    start = fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    ledger = session.exec(
        select(Delivery.subscriber_id).where(Delivery.issue_id == fx.issue.id)
    ).all()
    assert sorted(ledger) == sorted([people[0].id, people[2].id])
    assert start.recipients == 2 and start.skipped == 1
