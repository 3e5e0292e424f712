"""The public life cycle's domain functions under concurrency, on SQLite and on PostgreSQL.

What the HTTP tests cannot show one request at a time: two sign-ups or two confirmation clicks
at the same moment still make one row, one email and one event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlmodel import Session, col, select

from newsletter.audience import subscribers
from newsletter.audience.links import make_confirm_token, read_confirm_token
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.models import Subscriber, SubscriberEvent, Subscription, utcnow
from tests.conftest import make_newsletter
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
        lambda s: subscribers.signup(
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
    result = subscribers.signup(
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
        lambda s: subscribers.confirm(s, data=data, ip="198.51.100.7", user_agent="UA"),
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

    def sign(*slugs: str, minutes: int = 0) -> subscribers.SignupResult:
        return subscribers.signup(
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
    one = subscribers.signup(
        session, email=email, newsletters=[nl.slug], consent_text_version="2025-10"
    )
    two = subscribers.signup(
        session, email=email.upper(), newsletters=[nl.slug], consent_text_version="2025-10"
    )
    assert one.subscriber_id == two.subscriber_id
    ids = session.exec(select(Subscriber.id).where(col(Subscriber.email).ilike(email))).all()
    assert len(ids) == 1
