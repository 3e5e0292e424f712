"""The public life cycle's domain functions under concurrency, on SQLite and on PostgreSQL.

What the HTTP tests cannot show one request at a time: two sign-ups or two confirmation clicks
at the same moment still make one row, one email and one event. And every status change moves
through the table of allowed moves (``models.SUBSCRIPTION_MOVES``), admin ones included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.audience import lifecycle, manage, subscribers
from newsletter.audience.links import make_confirm_token, read_confirm_token
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.exceptions import InvalidState
from newsletter.models import (
    StatusMoveError,
    Subscriber,
    SubscriberEvent,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import unique_email

T = TypeVar("T")


def at_once(count: int, work: Callable[[Session], T], url: str) -> list[T]:
    """Run ``work`` in ``count`` threads, each in its own transaction, released together."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            with session_scope(url) as s:
                results.append(work(s))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results


def test_simultaneous_sign_ups_of_a_new_address_make_one_row_and_one_email(
    settings: Settings, session: Session
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    results = at_once(
        4,
        lambda s: lifecycle.signup(
            s, email=email, newsletters=[nl.slug], consent_text_version="2025-10"
        ),
        settings.database_url,
    )

    assert len({r.subscriber_id for r in results}) == 1
    assert sum(r.confirmation is not None for r in results) == 1
    session.expire_all()
    assert len(session.exec(select(Subscriber).where(Subscriber.email == email)).all()) == 1
    assert len(session.exec(select(Subscription)).all()) == 1


def test_simultaneous_confirmation_clicks_record_one_consent(
    settings: Settings, session: Session
) -> None:
    nl = make_newsletter(session)
    result = lifecycle.signup(
        session, email=unique_email(), newsletters=[nl.slug], consent_text_version="2025-10"
    )
    session.commit()
    token = make_confirm_token(
        settings.secret_key,
        subscriber_id=result.subscriber_id,
        newsletter_ids=[nl.id],  # type: ignore[list-item]
        source="form",
        consent_text_version="2025-10",
    )
    data = read_confirm_token(settings.secret_key, token, max_age=60)

    done = at_once(
        4,
        lambda s: lifecycle.confirm(s, data=data, ip="198.51.100.7", user_agent="UA"),
        settings.database_url,
    )

    assert sorted(len(d.confirmed) for d in done) == [0, 0, 0, 1]
    session.expire_all()
    kinds = session.exec(
        select(SubscriberEvent.kind).where(SubscriberEvent.subscriber_id == result.subscriber_id)
    ).all()
    assert sorted(kinds) == ["confirm", "signup"]


def test_the_resend_window_is_per_subscription(session: Session) -> None:
    first, second = make_newsletter(session), make_newsletter(session)
    email = unique_email()
    now = utcnow()

    def sign(*slugs: str, minutes: int = 0) -> lifecycle.SignupResult:
        return lifecycle.signup(
            session,
            email=email,
            newsletters=list(slugs),
            consent_text_version="2025-10",
            resend_after_seconds=600,
            now=now + timedelta(minutes=minutes),
        )

    assert sign(first.slug).confirmation is not None
    assert sign(first.slug, minutes=5).confirmation is None
    later = sign(first.slug, second.slug, minutes=6)  # a new newsletter: one email for both
    assert later.confirmation is not None
    assert later.confirmation.newsletter_ids == tuple(sorted([first.id, second.id]))  # type: ignore[type-var]
    assert sign(first.slug, minutes=12).confirmation is None  # that email restarted the window
    assert sign(first.slug, minutes=17).confirmation is not None


def test_an_address_differing_only_in_case_is_the_same_subscriber(session: Session) -> None:
    nl = make_newsletter(session)
    email = unique_email()
    one = lifecycle.signup(
        session, email=email, newsletters=[nl.slug], consent_text_version="2025-10"
    )
    two = lifecycle.signup(
        session, email=email.upper(), newsletters=[nl.slug], consent_text_version="2025-10"
    )
    assert one.subscriber_id == two.subscriber_id
    ids = session.exec(select(Subscriber.id).where(col(Subscriber.email).ilike(email))).all()
    assert len(ids) == 1


# ---------------------------------------------------------------- moves through the table


def status_of(session: Session, subscriber_id: int) -> str:
    session.expire_all()
    sub = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
    return sub.one().status


def test_an_admin_move_the_table_refuses_is_an_invalid_state(session: Session) -> None:
    nl = make_newsletter(session)
    person = manage.create(session, email="moved@example.org", newsletters=[nl.slug])
    assert person.id is not None

    with pytest.raises(InvalidState) as refused:
        manage.update(session, person.id, statuses={nl.slug: SubscriptionStatus.pending})

    assert str(refused.value) == (
        f"subscriber {person.id} is active on {nl.slug!r}: from active a subscription can move "
        "to bounced or complained or unsubscribed, not to pending"
    )
    assert status_of(session, person.id) == "active"


def test_a_patch_the_table_refuses_answers_409_and_changes_nothing(
    settings: Settings, session: Session
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    token = api_tokens.create(session, "tests")
    session.commit()
    url, auth = f"/api/subscribers/{person.id}", {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as client:
        response = client.patch(url, headers=auth, json={"subscriptions": {nl.slug: "pending"}})

    assert response.status_code == 409
    assert "from active a subscription can move to" in response.json()["error"]
    assert "not to pending" in response.json()["error"]
    assert status_of(session, person.id) == "active"  # type: ignore[arg-type]
    assert session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "admin")).all() == []


def test_an_admin_move_the_table_allows_is_made_and_recorded(session: Session) -> None:
    nl = make_newsletter(session)
    person = manage.create(session, email="leaves@example.org", newsletters=[nl.slug])
    assert person.id is not None

    manage.update(session, person.id, statuses={nl.slug: SubscriptionStatus.unsubscribed})

    assert status_of(session, person.id) == "unsubscribed"
    (sub,) = manage.subscriptions(session, person.id)
    assert sub[0].unsubscribed_at is not None
    events = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "admin")).all()
    assert [e.detail["from"] for e in events] == [None, "active"]


def test_a_guarded_move_never_undoes_a_change_made_meanwhile(session: Session) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.pending)
    sub = session.exec(select(Subscription)).one()  # read while pending
    lifecycle.unsubscribe(session, subscriber_id=sub.subscriber_id, newsletter_id=None, source="t")

    assert not subscribers.move_subscription(session, sub, SubscriptionStatus.active)
    assert status_of(session, person.id) == "unsubscribed"  # type: ignore[arg-type]


def test_a_move_the_table_does_not_have_is_refused_before_any_statement(
    session: Session,
) -> None:
    nl = make_newsletter(session)
    make_subscribers(session, nl, 1)
    sub = session.exec(select(Subscription)).one()

    with pytest.raises(StatusMoveError, match="active -> pending is not a move"):
        subscribers.move_subscription(session, sub, SubscriptionStatus.pending)
