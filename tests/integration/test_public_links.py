"""The personal links through the HTTP app: confirm, unsubscribe (RFC 8058), preferences.

Every bad token (forged, altered, expired, another purpose, another secret) gets a 400 page and
changes nothing; a GET never changes anything; a replayed POST changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlmodel import Session, col, select

from newsletter.audience import confirmations, gdpr
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.audience.links import Purpose, make_confirm_token, make_token
from newsletter.config import Settings
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import (
    Outbox,
    client,
    form_action,
    outbox,
    path_of,
    unique_email,
)

__all__ = ["client", "outbox"]  # fixtures


def status_of(session: Session, subscriber_id: int, newsletter_id: int) -> Subscription:
    session.expire_all()
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.newsletter_id == newsletter_id,
        )
    ).one()
    return sub


def kinds(session: Session, subscriber_id: int) -> list[tuple[str, str | None]]:
    session.expire_all()
    stmt = select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber_id)
    return [(e.kind, e.source) for e in session.exec(stmt.order_by(col(SubscriberEvent.id)))]


def signed_up(client: TestClient, session: Session, outbox: Outbox, nl: Newsletter) -> str:
    """Sign up a new address; returns the confirmation link's path the email would carry."""
    email = unique_email()
    response = client.post("/api/subscribe", json={"email": email, "newsletters": [nl.slug]})
    assert response.status_code == 202
    return confirmation_path(client.app.state.settings, outbox.requests[-1])  # type: ignore[attr-defined]


def confirmation_path(settings: Settings, request: ConfirmationRequest) -> str:
    return path_of(confirmations.confirm_url(settings, request))


def link(
    settings: Settings, purpose: Purpose, subscriber_id: int, newsletter_id: int | None
) -> str:
    return f"/{purpose}/{make_token(settings.secret_key, purpose, subscriber_id, newsletter_id)}"


# ---------------------------------------------------------------- confirm


def test_opening_the_confirmation_link_shows_a_button_and_changes_nothing(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    subscriber_id = outbox.requests[0].subscriber_id

    response = client.get(path)

    assert response.status_code == 200
    assert form_action(response.text) == ""  # the button posts to this same URL
    assert "Yes, subscribe me" in response.text
    assert status_of(session, subscriber_id, nl.id).status == "pending"  # type: ignore[arg-type]
    assert kinds(session, subscriber_id) == [("signup", "api")]


def test_confirming_activates_and_records_the_consent(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    subscriber_id = outbox.requests[0].subscriber_id
    before = utcnow()

    response = client.post(path, headers={"User-Agent": "Reader's Browser/1.0"})

    assert response.status_code == 200
    assert "now receives" in response.text
    sub = status_of(session, subscriber_id, nl.id)  # type: ignore[arg-type]
    assert sub.status == SubscriptionStatus.active
    assert sub.consent_at is not None
    assert sub.consent_at.replace(tzinfo=before.tzinfo) >= before - timedelta(seconds=1)
    assert (sub.consent_ip, sub.consent_user_agent) == ("testclient", "Reader's Browser/1.0")
    assert (sub.consent_source, sub.consent_text_version) == ("api", "2025-10")
    assert kinds(session, subscriber_id) == [("signup", "api"), ("confirm", "api")]


def test_a_replayed_confirmation_changes_nothing(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    subscriber_id = outbox.requests[0].subscriber_id
    client.post(path)
    first = status_of(session, subscriber_id, nl.id).model_dump()  # type: ignore[arg-type]

    again = client.post(path, headers={"User-Agent": "someone else"})

    assert again.status_code == 200
    assert "Already subscribed" in again.text
    assert status_of(session, subscriber_id, nl.id).model_dump() == first  # type: ignore[arg-type]
    assert kinds(session, subscriber_id) == [("signup", "api"), ("confirm", "api")]


def test_an_old_confirmation_link_does_not_bring_back_someone_who_left(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    subscriber_id = outbox.requests[0].subscriber_id
    client.post(path)
    assert client.post(link(settings, Purpose.unsubscribe, subscriber_id, nl.id)).status_code == 200

    replay = client.post(path)

    assert replay.status_code == 200
    assert "Not changed" in replay.text
    assert status_of(session, subscriber_id, nl.id).status == "unsubscribed"  # type: ignore[arg-type]


def test_signing_up_again_after_leaving_sends_a_link_that_brings_them_back(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.unsubscribed)
    sub = status_of(session, person.id, nl.id)  # type: ignore[arg-type]
    sub.unsubscribed_at = utcnow() - timedelta(hours=1)
    session.add(sub)
    session.commit()

    client.post("/api/subscribe", json={"email": person.email, "newsletters": [nl.slug]})
    response = client.post(confirmation_path(settings, outbox.requests[-1]))

    assert response.status_code == 200
    sub = status_of(session, person.id, nl.id)  # type: ignore[arg-type]
    assert (sub.status, sub.consent_source, sub.unsubscribed_at) == ("active", "api", None)
    assert kinds(session, person.id) == [("signup", "api"), ("resubscribe", "api")]  # type: ignore[arg-type]


def test_an_expired_confirmation_link_is_400_and_changes_nothing(
    client: TestClient,
    session: Session,
    outbox: Outbox,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nl = make_newsletter(session)
    signed_up(client, session, outbox, nl)
    request = outbox.requests[0]
    now = TimestampSigner.get_timestamp(TimestampSigner("x"))
    monkeypatch.setattr(
        TimestampSigner,
        "get_timestamp",
        lambda self: now - settings.confirmation_max_age_seconds - 5,
    )
    path = confirmation_path(settings, request)
    monkeypatch.undo()

    for method in ("GET", "POST"):
        response = client.request(method, path)
        assert response.status_code == 400
        assert "this link has expired" in response.text
        assert "Nothing was changed" in response.text
    assert status_of(session, request.subscriber_id, nl.id).status == "pending"  # type: ignore[arg-type]


def test_a_confirmation_for_an_erased_subscriber_is_400(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    gdpr.erase_subscriber(session, outbox.requests[0].subscriber_id)
    session.commit()

    response = client.post(path)

    assert response.status_code == 400
    assert "no longer valid" in response.text


# ---------------------------------------------------------------- bad tokens, every endpoint

BadToken = Callable[[Settings, int, int], str]


def _altered_payload(settings: Settings, sid: int, nid: int) -> str:
    good = make_token(settings.secret_key, Purpose.unsubscribe, sid, nid)
    other = make_token(settings.secret_key, Purpose.unsubscribe, sid + 1, nid)
    return other.split(".", 1)[0] + "." + good.split(".", 1)[1]


def _altered_signature(settings: Settings, sid: int, nid: int) -> str:
    good = make_token(settings.secret_key, Purpose.unsubscribe, sid, nid)
    signed, signature = good.rsplit(".", 1)
    return f"{signed}.{'A' if signature[0] != 'A' else 'g'}{signature[1:]}"


BAD_TOKENS: dict[str, BadToken] = {
    "another secret": lambda s, sid, nid: make_token("forged", Purpose.unsubscribe, sid, nid),
    "altered payload": _altered_payload,
    "altered signature": _altered_signature,
    "garbage": lambda s, sid, nid: "not-a-token",
    "truncated": lambda s, sid, nid: make_token(s.secret_key, Purpose.unsubscribe, sid, nid)[:-3],
}


@pytest.mark.parametrize("endpoint", ["confirm", "unsubscribe", "preferences"])
@pytest.mark.parametrize("bad", sorted(BAD_TOKENS))
def test_a_forged_or_altered_token_is_400_and_changes_nothing(
    client: TestClient, session: Session, settings: Settings, endpoint: str, bad: str
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.active)
    before = status_of(session, person.id, nl.id).model_dump()  # type: ignore[arg-type]
    token = BAD_TOKENS[bad](settings, person.id, nl.id)  # type: ignore[arg-type]

    for method, body in [("GET", None), ("POST", {"List-Unsubscribe": "One-Click"})]:
        response = client.request(method, f"/{endpoint}/{token}", data=body)
        assert response.status_code == 400, (method, response.text)
        assert "this link is not valid" in response.text

    assert status_of(session, person.id, nl.id).model_dump() == before  # type: ignore[arg-type]
    assert kinds(session, person.id) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "purpose"),
    [
        ("unsubscribe", Purpose.preferences),
        ("unsubscribe", Purpose.confirm),
        ("preferences", Purpose.unsubscribe),
        ("confirm", Purpose.unsubscribe),
    ],
)
def test_a_token_made_for_another_purpose_is_400_and_changes_nothing(
    client: TestClient, session: Session, settings: Settings, endpoint: str, purpose: Purpose
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.pending)
    token = make_token(settings.secret_key, purpose, person.id, nl.id)  # type: ignore[arg-type]

    response = client.post(f"/{endpoint}/{token}", data={"List-Unsubscribe": "One-Click"})

    assert response.status_code == 400
    assert "this link is not valid" in response.text
    assert status_of(session, person.id, nl.id).status == "pending"  # type: ignore[arg-type]


def test_a_confirmation_token_cannot_unsubscribe(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    token = make_confirm_token(
        settings.secret_key,
        subscriber_id=person.id,  # type: ignore[arg-type]
        newsletter_ids=[nl.id],  # type: ignore[list-item]
        source="api",
        consent_text_version="2025-10",
    )
    assert client.post(f"/unsubscribe/{token}").status_code == 400
    assert status_of(session, person.id, nl.id).status == "active"  # type: ignore[arg-type]


# ---------------------------------------------------------------- unsubscribe


def test_opening_the_unsubscribe_link_shows_one_button_and_changes_nothing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)

    response = client.get(link(settings, Purpose.unsubscribe, person.id, nl.id))  # type: ignore[arg-type]

    assert response.status_code == 200
    assert form_action(response.text) == ""
    assert response.text.count("<button") == 1
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert status_of(session, person.id, nl.id).status == "active"  # type: ignore[arg-type]
    assert kinds(session, person.id) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_without_cookie_or_csrf(
    client: TestClient, session: Session, settings: Settings, encoding: str
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    url = link(settings, Purpose.unsubscribe, person.id, nl.id)  # type: ignore[arg-type]
    client.cookies.clear()

    if encoding == "urlencoded":
        response = client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:  # RFC 8058 says mailbox providers SHOULD send multipart/form-data
        response = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})

    assert response.status_code == 200
    assert "is unsubscribed from" in response.text
    sub = status_of(session, person.id, nl.id)  # type: ignore[arg-type]
    assert sub.status == "unsubscribed"
    assert sub.unsubscribed_at is not None
    assert kinds(session, person.id) == [("unsubscribe", "one-click")]  # type: ignore[arg-type]


def test_a_replayed_unsubscribe_changes_nothing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    url = link(settings, Purpose.unsubscribe, person.id, nl.id)  # type: ignore[arg-type]
    client.post(url, data={"List-Unsubscribe": "One-Click"})
    first = status_of(session, person.id, nl.id).model_dump()  # type: ignore[arg-type]

    again = client.post(url, data={"List-Unsubscribe": "One-Click"})

    assert again.status_code == 200
    assert "already unsubscribed" in again.text
    assert status_of(session, person.id, nl.id).model_dump() == first  # type: ignore[arg-type]
    assert kinds(session, person.id) == [("unsubscribe", "one-click")]  # type: ignore[arg-type]


def test_the_button_leaves_only_that_newsletter_unless_all_is_ticked(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first, second, third = (make_newsletter(session) for _ in range(3))
    (person,) = make_subscribers(session, first, 1)
    for other in (second, third):
        session.add(Subscription(subscriber_id=person.id, newsletter_id=other.id, status="active"))  # type: ignore[arg-type]
    session.commit()
    url = link(settings, Purpose.unsubscribe, person.id, first.id)  # type: ignore[arg-type]
    assert 'name="scope" value="all"' in client.get(url).text

    client.post(url)
    assert [status_of(session, person.id, n.id).status for n in (first, second, third)] == [  # type: ignore[arg-type]
        "unsubscribed",
        "active",
        "active",
    ]
    client.post(url, data={"scope": "all"})
    assert {status_of(session, person.id, n.id).status for n in (first, second, third)} == {  # type: ignore[arg-type]
        "unsubscribed"
    }
    assert kinds(session, person.id) == [("unsubscribe", "unsubscribe-page")] * 3  # type: ignore[arg-type]


def test_a_token_without_a_newsletter_unsubscribes_from_all(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first, second = make_newsletter(session), make_newsletter(session)
    (person,) = make_subscribers(session, first, 1)
    session.add(Subscription(subscriber_id=person.id, newsletter_id=second.id, status="pending"))  # type: ignore[arg-type]
    session.commit()

    client.post(
        link(settings, Purpose.unsubscribe, person.id, None), data={"List-Unsubscribe": "One-Click"}
    )  # type: ignore[arg-type]

    assert {status_of(session, person.id, n.id).status for n in (first, second)} == {  # type: ignore[arg-type]
        "unsubscribed"
    }


def test_unsubscribing_leaves_a_bounced_subscription_bounced(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.bounced)
    client.post(link(settings, Purpose.unsubscribe, person.id, nl.id))  # type: ignore[arg-type]
    assert status_of(session, person.id, nl.id).status == "bounced"  # type: ignore[arg-type]


# ---------------------------------------------------------------- preferences


def test_the_preference_centre_shows_every_newsletter_and_changes_nothing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    mine, other = make_newsletter(session, name="Mine"), make_newsletter(session, name="Other")
    (person,) = make_subscribers(session, mine, 1)

    response = client.get(link(settings, Purpose.preferences, person.id, None))  # type: ignore[arg-type]

    assert response.status_code == 200
    assert f'value="{mine.id}" checked' in response.text
    assert f'value="{other.id}">' in response.text
    assert f'value="{person.name}"' in response.text
    assert "Unsubscribe from all" in response.text
    assert kinds(session, person.id) == []  # type: ignore[arg-type]


def test_saving_preferences_changes_newsletters_and_name_with_a_consent_record(
    client: TestClient, session: Session, settings: Settings
) -> None:
    mine, other = make_newsletter(session), make_newsletter(session)
    (person,) = make_subscribers(session, mine, 1)
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]

    response = client.post(
        url,
        data={"name": "Maria Kalesnikava", "newsletters": [str(other.id)]},
        headers={"User-Agent": "UA/2"},
    )

    assert response.status_code == 200
    assert "Your preferences are saved." in response.text
    assert status_of(session, person.id, mine.id).status == "unsubscribed"  # type: ignore[arg-type]
    joined = status_of(session, person.id, other.id)  # type: ignore[arg-type]
    assert (joined.status, joined.consent_source, joined.consent_ip) == (
        "active",
        "preferences",
        "testclient",
    )
    assert (joined.consent_user_agent, joined.consent_text_version) == ("UA/2", "2025-10")
    session.expire_all()
    assert session.get(Subscriber, person.id).name == "Maria Kalesnikava"  # type: ignore[union-attr]
    assert sorted(kinds(session, person.id)) == [  # type: ignore[arg-type]
        ("confirm", "preferences"),
        ("preferences", "preferences"),
        ("unsubscribe", "preferences"),
    ]


def test_a_name_with_a_line_break_in_the_preferences_is_422_and_nothing_changes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]

    response = client.post(url, data={"name": "Eve\r\nBcc: x@example.net", "newsletters": []})

    assert response.status_code == 422
    assert "name must be one line of text" in response.text
    assert status_of(session, person.id, nl.id).status == "active"  # type: ignore[arg-type]
    session.expire_all()
    assert session.get(Subscriber, person.id).name == person.name  # type: ignore[union-attr]
    assert kinds(session, person.id) == []  # type: ignore[arg-type]


def test_unsubscribe_from_all_in_the_preference_centre(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first, second = make_newsletter(session), make_newsletter(session)
    (person,) = make_subscribers(session, first, 1)
    session.add(Subscription(subscriber_id=person.id, newsletter_id=second.id, status="active"))  # type: ignore[arg-type]
    session.commit()
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]

    response = client.post(url, data={"action": "unsubscribe-all"})

    assert response.status_code == 200
    assert "unsubscribed from all" in response.text
    assert {status_of(session, person.id, n.id).status for n in (first, second)} == {  # type: ignore[arg-type]
        "unsubscribed"
    }


def test_the_preference_centre_does_not_revive_a_bounced_subscription(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.complained)
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]
    assert "Paused" in client.get(url).text

    client.post(url, data={"newsletters": [str(nl.id)]})

    assert status_of(session, person.id, nl.id).status == "complained"  # type: ignore[arg-type]


def test_an_unknown_newsletter_id_in_the_preferences_is_422(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session)
    (person,) = make_subscribers(session, nl, 1)
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]
    response = client.post(url, data={"newsletters": ["999999"]})
    assert response.status_code == 422
    assert "unknown newsletter ids [999999]" in response.text
    assert status_of(session, person.id, nl.id).status == "active"  # type: ignore[arg-type]


def test_after_forged_attempts_the_genuine_link_still_works(
    client: TestClient, session: Session, outbox: Outbox, settings: Settings
) -> None:
    nl = make_newsletter(session)
    path = signed_up(client, session, outbox, nl)
    subscriber_id = outbox.requests[0].subscriber_id
    signed, signature = path.rsplit(".", 1)
    for forged in (f"{signed}.{signature[::-1]}", path + "x", path[:-1], "/confirm/x.y.z"):
        assert client.post(forged).status_code == 400

    assert client.post(path).status_code == 200

    assert status_of(session, subscriber_id, nl.id).status == "active"  # type: ignore[arg-type]
    assert kinds(session, subscriber_id) == [("signup", "api"), ("confirm", "api")]


def test_the_public_routes_are_in_the_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/api/subscribe"]
    assert {"get", "post"} <= set(paths["/unsubscribe/{token}"])
    assert {"get", "post"} <= set(paths["/confirm/{token}"])
    assert {"get", "post"} <= set(paths["/preferences/{token}"])
    assert "security" not in paths["/api/subscribe"]["post"]  # no admin token needed


# ---------------------------------------------------------------- tracking said in plain words


def test_the_confirmation_page_says_what_a_tracking_newsletter_counts(
    client: TestClient, session: Session, outbox: Outbox
) -> None:
    quiet = make_newsletter(session, name="Quiet Weekly")
    counted = make_newsletter(session, name="Counted Daily", track_clicks=True, track_opens=True)
    for nl, told in ((quiet, False), (counted, True)):
        path = signed_up(client, session, outbox, nl)
        for answer in (client.get(path), client.post(path)):
            assert answer.status_code == 200
            said = "Counted Daily counts which links in its emails I click and whether I open them"
            assert (said in answer.text) is told
            assert ("no IP address or browser is stored" in answer.text) is told
            assert ("kept with my subscription for 13 months" in answer.text) is told


def test_the_preference_centre_says_what_is_counted_while_tracking_is_on(
    client: TestClient, session: Session, settings: Settings
) -> None:
    nl = make_newsletter(session, name="Clicks Only", track_clicks=True)
    (person,) = make_subscribers(session, nl, 1)
    url = link(settings, Purpose.preferences, person.id, None)  # type: ignore[arg-type]

    page_text = client.get(url).text
    assert "Clicks Only counts which links in its emails I click, to learn" in page_text
    assert "no IP address or browser is stored" in page_text and "13 months" in page_text

    nl.track_clicks = False
    session.add(nl)
    session.commit()
    assert "counts which links" not in client.get(url).text
