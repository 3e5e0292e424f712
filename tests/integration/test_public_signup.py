"""Public sign-up through the HTTP app (form and JSON), on SQLite and on PostgreSQL.

The app's confirmation sender is replaced by a recorder (``Outbox``): these tests see which
confirmation emails the app asked for. ``test_public_flow.py`` sends them for real.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter.api import create_app
from newsletter.audience import abuse, suppression
from newsletter.config import Settings, get_settings
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import Outbox, client, outbox, unique_email

__all__ = ["client", "outbox"]  # fixtures


def rows(session: Session, email: str) -> list[tuple[Subscriber, Subscription]]:
    session.expire_all()
    stmt = (
        select(Subscriber, Subscription)
        .join(Subscription, col(Subscription.subscriber_id) == Subscriber.id)
        .where(Subscriber.email == email)
    )
    return [(a, b) for a, b in session.exec(stmt).all()]


def events(session: Session, subscriber_id: int) -> list[SubscriberEvent]:
    session.expire_all()
    stmt = select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber_id)
    return list(session.exec(stmt.order_by(col(SubscriberEvent.id))).all())


def signup(client: TestClient, email: str, *slugs: str, name: str = "") -> tuple[int, object]:
    response = client.post(
        "/api/subscribe", json={"email": email, "name": name, "newsletters": list(slugs)}
    )
    return response.status_code, response.json()


# ---------------------------------------------------------------- a new address


def test_signup_creates_a_pending_subscription_and_asks_for_one_confirmation(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    response = client.post(
        "/api/subscribe",
        json={"email": email, "name": "Ales Bialiatski", "newsletters": [nl.slug]},
        headers={"User-Agent": "Mozilla/5.0 (test)"},
    )

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    ((subscriber, sub),) = rows(session, email)
    assert sub.status == SubscriptionStatus.pending
    assert sub.consent_at is None  # consent comes with the confirmation
    assert sub.confirmation_sent_at is not None
    assert subscriber.name == "Ales Bialiatski"
    (request,) = outbox.requests
    assert (request.subscriber_id, request.newsletter_ids) == (subscriber.id, (nl.id,))
    assert (request.source, request.consent_text_version) == ("api", "2025-10")
    (event,) = events(session, subscriber.id)  # type: ignore[arg-type]
    assert (event.kind, event.newsletter_id, event.source) == ("signup", nl.id, "api")
    assert (event.ip, event.user_agent) == ("testclient", "Mozilla/5.0 (test)")
    assert event.consent_text_version == "2025-10"


def test_the_form_signup_records_source_form_and_the_version_it_showed(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    response = client.post(
        "/subscribe",
        data={"email": email, "newsletters": [nl.slug], "consent_text_version": "2025-10"},
    )

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    (request,) = outbox.requests
    assert (request.source, request.consent_text_version) == ("form", "2025-10")
    assert [sub.status for _, sub in rows(session, email)] == ["pending"]


def test_one_signup_for_two_newsletters_sends_one_confirmation_for_both(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    first, second = make_newsletter(session), make_newsletter(session, name="Minsk Daily")
    email = unique_email()

    assert signup(client, email, first.slug, second.slug)[0] == 202

    assert sorted(sub.newsletter_id for _, sub in rows(session, email)) == sorted(
        [first.id, second.id]  # type: ignore[list-item]
    )
    (request,) = outbox.requests
    assert request.newsletter_ids == tuple(sorted([first.id, second.id]))  # type: ignore[type-var]


def test_the_address_is_normalised(client: TestClient, session: Session) -> None:
    nl = make_newsletter(session)
    local = f"Mixed.Case-{uuid.uuid4().hex[:6]}"

    assert signup(client, f"  {local}@News.EXAMPLE.org ", nl.slug)[0] == 202

    assert len(rows(session, f"{local}@news.example.org")) == 1


def test_the_form_lists_the_newsletters_and_shows_the_consent_text_and_version(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session, name="Belarus Weekly <Special>")

    response = client.get("/subscribe", params={"newsletter": nl.slug})

    assert response.status_code == 200
    assert "Belarus Weekly &lt;Special&gt;" in response.text  # escaped
    assert f'value="{nl.slug}" checked' in response.text
    assert 'name="consent_text_version" value="2025-10"' in response.text
    assert "I can unsubscribe at any time" in response.text
    assert response.headers["Referrer-Policy"] == "no-referrer"


# ---------------------------------------------------------------- twice, and known addresses


def test_signing_up_twice_keeps_one_row_and_sends_no_second_email_in_the_window(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    first = signup(client, email, nl.slug)
    second = signup(client, email, nl.slug)

    assert first == second
    assert len(rows(session, email)) == 1
    assert len(outbox.requests) == 1


def test_signing_up_again_after_the_window_sends_one_more_confirmation(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    nl = make_newsletter(session)
    email = unique_email()
    signup(client, email, nl.slug)
    ((_, sub),) = rows(session, email)
    sub.confirmation_sent_at = utcnow() - timedelta(seconds=settings.confirmation_resend_seconds)
    session.add(sub)
    session.commit()

    signup(client, email, nl.slug)
    signup(client, email, nl.slug)

    assert len(rows(session, email)) == 1
    assert len(outbox.requests) == 2  # the first, and one more after the window


def test_an_active_address_gets_the_same_answer_and_nothing_changes(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    ((_, before),) = rows(session, person.email)
    new = signup(client, unique_email(), nl.slug)
    outbox.requests.clear()

    again = signup(client, person.email, nl.slug, name="Somebody Else")

    assert again == new
    ((subscriber, after),) = rows(session, person.email)
    assert after.model_dump() == before.model_dump()
    assert subscriber.name == person.name  # a stranger cannot rename a subscriber
    assert outbox.requests == []
    # the attempt is on record (the same work as for a new address), marked as mailing nothing
    (attempt,) = events(session, person.id)  # type: ignore[arg-type]
    assert attempt.kind == "signup"
    assert attempt.detail == {"status": "active", "confirmation": "not sent"}


def test_the_form_answer_is_the_same_for_an_active_address(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)

    def post(email: str) -> str:
        response = client.post("/subscribe", data={"email": email, "newsletters": [nl.slug]})
        assert response.status_code == 200
        return response.text

    assert post(person.email) == post(unique_email())


@pytest.mark.parametrize("status", [SubscriptionStatus.bounced, SubscriptionStatus.complained])
def test_a_bounced_or_complained_subscription_is_left_alone_and_gets_no_email(
    client: TestClient, session: Session, outbox: Outbox, status: SubscriptionStatus
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=status)

    assert signup(client, person.email, nl.slug)[0] == 202

    assert [sub.status for _, sub in rows(session, person.email)] == [status]
    assert outbox.requests == []


def test_a_suppressed_bounced_address_gets_no_email(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()
    suppression.suppress(session, email, suppression.Reason.bounced)
    session.commit()

    assert signup(client, email, nl.slug)[0] == 202

    assert outbox.requests == []


def test_an_unsubscribed_address_signing_up_again_is_asked_to_confirm_and_stays_out(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.unsubscribed)

    assert signup(client, person.email, nl.slug)[0] == 202

    assert [sub.status for _, sub in rows(session, person.email)] == ["unsubscribed"]
    (request,) = outbox.requests  # the confirmation link is the way back in
    assert request.newsletter_ids == (nl.id,)


def test_an_active_and_a_new_newsletter_asks_to_confirm_only_the_new_one(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    old, new = make_newsletter(session), make_newsletter(session)
    (person,) = make_subscribers(session, old, 1)

    signup(client, person.email, old.slug, new.slug)

    (request,) = outbox.requests
    assert request.newsletter_ids == (new.id,)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("no-at-sign.example.org", "must have an @-sign"),
        ("two@@example.org", "invalid email address"),
        ("reader@", "something after the @-sign"),
        ("reader@example..org", "invalid email address"),
        ("reader@example.org\r\nBcc: victim@example.net", "invalid email address"),
    ],
)
def test_an_invalid_address_is_422_with_the_reason(
    client: TestClient, session: Session, outbox: Outbox, email: str, reason: str
) -> None:
    nl = make_newsletter(session)

    response = client.post("/api/subscribe", json={"email": email, "newsletters": [nl.slug]})

    assert response.status_code == 422
    assert reason in response.json()["error"]
    assert outbox.requests == []
    session.expire_all()
    assert session.exec(select(Subscriber)).all() == []


def test_the_form_shows_an_invalid_address_again_with_the_reason(
    client: TestClient, session: Session
) -> None:
    nl = make_newsletter(session)

    response = client.post(
        "/subscribe", data={"email": "reader@", "name": "Ann", "newsletters": [nl.slug]}
    )

    assert response.status_code == 422
    assert "There must be something after the @-sign" in response.text
    assert 'value="reader@"' in response.text  # what was typed is kept
    assert 'value="Ann"' in response.text


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.net", "Eve\nX-Evil: 1", "Eve\x07"])
def test_a_name_with_line_breaks_or_control_characters_is_refused(
    client: TestClient, session: Session, outbox: Outbox, name: str
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    status, body = signup(client, email, nl.slug, name=name)

    assert status == 422
    assert body == {"error": "name must be one line of text, without line breaks or control codes"}
    assert rows(session, email) == []
    assert outbox.requests == []


def test_a_nul_anywhere_in_the_body_is_refused_before_the_sign_up_runs(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    status, body = signup(client, email, nl.slug, name="Eve\x00")

    assert status == 422
    assert isinstance(body, dict)
    assert body["error"] == "invalid request: body: invalid JSON: text may not contain NUL (U+0000)"
    assert rows(session, email) == []
    assert outbox.requests == []


def test_an_unknown_newsletter_is_422_and_creates_nothing(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    email = unique_email()

    status, body = signup(client, email, nl.slug, "no-such-list")

    assert status == 422
    assert body == {"error": "unknown newsletter 'no-such-list'"}
    session.expire_all()
    assert session.exec(select(Subscriber).where(Subscriber.email == email)).all() == []


def test_no_newsletter_is_422(client: TestClient, session: Session) -> None:
    response = client.post("/api/subscribe", json={"email": unique_email(), "newsletters": []})
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: newsletters")
    form = client.post("/subscribe", data={"email": unique_email()})
    assert form.status_code == 422
    assert "choose at least one newsletter" in form.text


def test_an_unknown_consent_text_version_is_422(client: TestClient, session: Session) -> None:
    nl = make_newsletter(session)
    body = {"email": unique_email(), "newsletters": [nl.slug], "consent_text_version": "../x"}
    response = client.post("/api/subscribe", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": "unknown consent text version '../x'"}


# ---------------------------------------------------------------- abuse limits


LimiterFactory = Callable[..., abuse.SignupLimiter]


@pytest.fixture
def redis_limiter(redis_url: str) -> LimiterFactory:
    """Limits on the real Redis, under keys of this test only."""
    prefix = f"newsletter-test:{uuid.uuid4().hex}:"
    window = abuse.RedisWindow(redis.Redis.from_url(redis_url), prefix=prefix)

    def make(*, per_ip: int, per_address: int) -> abuse.SignupLimiter:
        return abuse.SignupLimiter(window, per_ip=per_ip, per_address=per_address, seconds=3600)

    return make


def test_signups_per_address_over_the_limit_are_429_with_retry_after(
    client: TestClient, session: Session, outbox: Outbox, redis_limiter: LimiterFactory
) -> None:
    limiter = redis_limiter(per_ip=100, per_address=2)
    client.app.state.signup_limiter = limiter  # type: ignore[attr-defined]
    nl = make_newsletter(session)
    email = unique_email()

    answers = [signup(client, email, nl.slug)[0] for _ in range(2)]
    response = client.post("/api/subscribe", json={"email": email, "newsletters": [nl.slug]})

    assert answers == [202, 202]
    assert response.status_code == 429
    assert 3500 < int(response.headers["Retry-After"]) <= 3600
    assert response.json()["error"].startswith("too many sign-up attempts; try again in")
    assert signup(client, email.upper(), nl.slug)[0] == 429  # the same address, other case
    assert signup(client, unique_email(), nl.slug)[0] == 202  # another address is fine


def test_signups_per_ip_over_the_limit_are_429_even_for_junk(
    client: TestClient, session: Session, redis_limiter: LimiterFactory
) -> None:
    limiter = redis_limiter(per_ip=3, per_address=100)
    client.app.state.signup_limiter = limiter  # type: ignore[attr-defined]
    nl = make_newsletter(session)

    answers = [signup(client, e, nl.slug)[0] for e in (unique_email(), "junk", unique_email())]
    response = client.post("/subscribe", data={"email": unique_email(), "newsletters": [nl.slug]})

    assert answers == [202, 422, 202]
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "too many sign-up attempts" in response.text


def test_the_limits_come_from_the_settings(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SIGNUP_LIMIT_PER_IP", "2")
    get_settings.cache_clear()
    app = create_app(get_settings())  # no Redis in these settings: the in-process log
    app.state.send_confirmation = Outbox()
    nl = make_newsletter(session)
    with TestClient(app) as fresh:
        answers = [signup(fresh, unique_email(), nl.slug)[0] for _ in range(3)]
    assert answers == [202, 202, 429]


def test_newsletters_are_offered_in_name_order(client: TestClient, session: Session) -> None:
    make_newsletter(session, name="Zeta Letter")
    make_newsletter(session, name="Alpha Letter")
    text = client.get("/subscribe").text
    assert text.index("Alpha Letter") < text.index("Zeta Letter")
    session.expire_all()
    assert len(session.exec(select(Newsletter)).all()) == 2
