"""One subscriber's story and the desk's actions through the admin API (and the domain under it):
the profile, edits with their checks, subscribe (confirmation or consent with a reason),
unsubscribe, resend within the window, tags, GDPR export and erase, each with its actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.audience import desk, profile, suppression
from newsletter.config import Settings
from newsletter.models import (
    AuditEntry,
    Delivery,
    Newsletter,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration.public_support import Outbox


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def client(settings: Settings, outbox: Outbox) -> Iterator[TestClient]:
    with TestClient(create_app(settings, send_confirmation=outbox)) as c:
        yield c


def _auth(session: Session, name: str = "desk", role: str = "admin") -> dict[str, str]:
    token = api_tokens.create(session, name, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    return _auth(session)


@pytest.fixture
def weekly(session: Session) -> Newsletter:
    return make_newsletter(session, name="Weekly")


@pytest.fixture
def daily(session: Session) -> Newsletter:
    return make_newsletter(session, name="Daily")


@pytest.fixture
def reader(session: Session, weekly: Newsletter) -> Subscriber:
    person = make_subscribers(session, weekly, 1)[0]
    session.commit()
    return person


def _profile(client: TestClient, auth: dict[str, str], sid: int) -> dict[str, Any]:
    response = client.get(f"/api/subscribers/{sid}/profile", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _subs(story: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["newsletter"]: s for s in story["subscriptions"]}


def test_the_profile_tells_consent_history_and_deliveries(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    reader: Subscriber,
    weekly: Newsletter,
) -> None:
    issue = make_issue(session, newsletter=weekly)
    session.add(
        Delivery(
            issue_id=issue.issue.id,  # type: ignore[arg-type]
            subscriber_id=reader.id,  # type: ignore[arg-type]
            status="failed",
            smtp_response="550 5.1.1 user unknown",
        )
    )
    session.commit()
    assert reader.id is not None
    desk.edit(session, reader.id, actor="cli alice", language="be", time_zone="Europe/Minsk")
    desk.add_tag(session, reader.id, "donor", actor="cli alice")
    session.commit()

    story = _profile(client, auth, reader.id)
    assert (story["email"], story["language"], story["time_zone"]) == (
        reader.email,
        "be",
        "Europe/Minsk",
    )
    assert story["tags"] == ["donor"]
    (sub,) = story["subscriptions"]
    assert sub["status"] == "active" and "consent_source" in sub
    kinds = [(e["kind"], e["actor"]) for e in story["events"]]
    assert kinds[:2] == [("tag", "cli alice"), ("edit", "cli alice")]  # newest first
    assert story["events"][1]["detail"]["fields"] == ["language", "time_zone"]
    (delivery,) = story["deliveries"]
    assert (delivery["status"], delivery["smtp_response"]) == ("failed", "550 5.1.1 user unknown")
    assert delivery["issue_title"] and delivery["issue_number"] >= 1
    unknown = client.get("/api/subscribers/987654/profile", headers=auth)
    assert unknown.status_code == 404
    assert "no subscriber" in unknown.json()["error"]


BAD_FIELDS: list[tuple[dict[str, Any] | str, str]] = [
    ({"attributes": {"city": {"name": "Minsk"}}}, "is an object"),
    ({"attributes": {"k": [1, 2]}}, "is a list"),
    ({"attributes": {"": 1}}, "non-empty"),
    ({"attributes": {"x" * 65: 1}}, "longer than 64"),
    ({"attributes": {f"k{i}": "v" * 200 for i in range(90)}}, "bytes of JSON"),
    ('{"name": "Changed", "attributes": {"n": 1e999}}', "too large"),
    ({"language": "not a language"}, "BCP 47"),
    ({"time_zone": "Mars/Olympus"}, "IANA"),
]


def test_patch_refuses_bad_fields_and_stores_nothing(
    client: TestClient, auth: dict[str, str], session: Session, reader: Subscriber
) -> None:
    for body, reason in BAD_FIELDS:
        url = f"/api/subscribers/{reader.id}"
        if isinstance(body, str):  # JSON the client's encoder would not write
            headers = {**auth, "Content-Type": "application/json"}
            response = client.patch(url, content=body, headers=headers)
        else:
            response = client.patch(url, json={"name": "Changed", **body}, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert reason in response.json()["error"], body
    session.expire_all()
    assert session.get(Subscriber, reader.id).name != "Changed"  # type: ignore[union-attr]


def test_patch_sets_and_clears_language_zone_and_attributes(
    client: TestClient, auth: dict[str, str], session: Session, reader: Subscriber
) -> None:
    url = f"/api/subscribers/{reader.id}"
    body = {"attributes": {"city": "Minsk", "age": 41, "donor": True, "note": None}}
    done = client.patch(
        url, json={**body, "language": "pt-br", "time_zone": "Europe/Minsk"}, headers=auth
    )
    assert done.status_code == 200, done.text
    assert (done.json()["language"], done.json()["time_zone"]) == ("pt-BR", "Europe/Minsk")
    assert done.json()["attributes"] == body["attributes"]
    cleared = client.patch(url, json={"language": None, "time_zone": ""}, headers=auth).json()
    assert (cleared["language"], cleared["time_zone"]) == (None, None)
    assert cleared["attributes"] == body["attributes"]  # not named: unchanged
    edits = [e for e in _profile(client, auth, reader.id or 0)["events"] if e["kind"] == "edit"]
    assert [e["actor"] for e in edits] == ["token desk", "token desk"]


def test_subscribe_sends_a_confirmation_and_respects_the_resend_window(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    reader: Subscriber,
    daily: Newsletter,
    outbox: Outbox,
) -> None:
    sid = reader.id or 0
    done = client.post(
        f"/api/subscribers/{sid}/subscribe", json={"newsletter": daily.slug}, headers=auth
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "newsletter_id": daily.id,
        "status": "pending",
        "confirmation_queued": True,
    }
    (request,) = outbox.requests
    assert (request.subscriber_id, request.newsletter_ids, request.source) == (
        sid,
        (daily.id,),
        "admin",
    )
    again = client.post(
        f"/api/subscribers/{sid}/resend-confirmation",
        json={"newsletter": daily.slug},
        headers=auth,
    )
    assert again.status_code == 409
    assert "one every 10 minutes at most" in again.json()["error"]
    assert len(outbox.requests) == 1
    story = _profile(client, auth, sid)
    assert _subs(story)[daily.slug]["status"] == "pending"
    signup = story["events"][0]
    assert (signup["kind"], signup["actor"], signup["newsletter"]) == (
        "signup",
        "token desk",
        daily.slug,
    )


def test_resend_after_the_window_sends_again(
    settings: Settings, session: Session, reader: Subscriber, daily: Newsletter
) -> None:
    sid = reader.id or 0
    first = desk.subscribe_to(
        session, sid, daily.slug, actor="cli a", consent_text_version="v1", resend_after_seconds=60
    )
    assert first.confirmation is not None
    with pytest.raises(desk.InvalidState, match="one every 1 minutes"):
        desk.resend_confirmation(
            session,
            sid,
            daily.slug,
            actor="cli a",
            consent_text_version="v1",
            resend_after_seconds=60,
        )
    later = desk.resend_confirmation(
        session, sid, daily.slug, actor="cli a", consent_text_version="v1", resend_after_seconds=0
    )
    assert later.newsletter_ids == (daily.id,)
    kinds = [e.kind for e in profile.load(session, sid).events]
    assert kinds[0] == "confirmation-resent"


def test_consent_with_a_reason_makes_them_active_at_once(
    client: TestClient,
    auth: dict[str, str],
    reader: Subscriber,
    daily: Newsletter,
    outbox: Outbox,
) -> None:
    sid = reader.id or 0
    url = f"/api/subscribers/{sid}/subscribe"
    empty = client.post(url, json={"newsletter": daily.slug, "consent_reason": "  "}, headers=auth)
    assert empty.status_code == 422
    assert "how you have their consent" in empty.json()["error"]
    done = client.post(
        url,
        json={"newsletter": daily.slug, "consent_reason": "asked by phone, ticket 4411"},
        headers=auth,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active" and not done.json()["confirmation_queued"]
    assert outbox.requests == []
    story = _profile(client, auth, sid)
    sub = _subs(story)[daily.slug]
    assert (sub["status"], sub["consent_source"]) == ("active", "admin")
    assert sub["consent_at"] is not None
    event = story["events"][0]
    assert (event["kind"], event["actor"]) == ("admin-subscribe", "token desk")
    assert event["detail"]["reason"] == "asked by phone, ticket 4411"
    twice = client.post(url, json={"newsletter": daily.slug, "consent_reason": "x"}, headers=auth)
    assert twice.status_code == 409
    assert "already subscribed" in twice.json()["error"]


def test_a_suppressed_address_is_not_subscribed_either_way(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    reader: Subscriber,
    daily: Newsletter,
) -> None:
    suppression.suppress(session, reader.email, suppression.Reason.complained)
    session.commit()
    url = f"/api/subscribers/{reader.id}/subscribe"
    for body in ({"newsletter": daily.slug}, {"newsletter": daily.slug, "consent_reason": "r"}):
        response = client.post(url, json=body, headers=auth)
        assert response.status_code == 409, response.text
        assert "suppression list" in response.json()["error"]
    assert daily.slug not in _subs(_profile(client, auth, reader.id or 0))


def test_unsubscribe_from_one_newsletter_names_the_token(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    reader: Subscriber,
    weekly: Newsletter,
    daily: Newsletter,
) -> None:
    sid = reader.id or 0
    desk.subscribe_to(
        session,
        sid,
        daily.slug,
        actor="x",
        consent_text_version="v1",
        resend_after_seconds=0,
        consent_reason="r",
    )
    session.commit()
    url = f"/api/subscribers/{sid}/unsubscribe"
    done = client.post(url, json={"newsletter": weekly.slug}, headers=auth)
    assert done.status_code == 200, done.text
    subs = _subs(done.json())
    assert (subs[weekly.slug]["status"], subs[daily.slug]["status"]) == ("unsubscribed", "active")
    event = done.json()["events"][0]
    assert (event["kind"], event["actor"], event["source"]) == (
        "unsubscribe",
        "token desk",
        "admin",
    )
    again = client.post(url, json={"newsletter": weekly.slug}, headers=auth)
    assert again.status_code == 409
    unknown = client.post(url, json={"newsletter": "no-such-list"}, headers=auth)
    assert unknown.status_code == 422


def test_tags_are_added_and_removed(
    client: TestClient, auth: dict[str, str], reader: Subscriber
) -> None:
    url = f"/api/subscribers/{reader.id}/tags"
    assert client.post(url, json={"tag": " donor "}, headers=auth).json()["tags"] == ["donor"]
    assert client.post(url, json={"tag": "vip"}, headers=auth).json()["tags"] == ["donor", "vip"]
    too_long = client.post(url, json={"tag": "t" * 65}, headers=auth)
    assert too_long.status_code == 422
    assert client.delete(f"{url}/donor", headers=auth).json()["tags"] == ["vip"]


def test_export_and_erase_are_on_record_with_their_actor(
    client: TestClient, auth: dict[str, str], session: Session, reader: Subscriber
) -> None:
    sid = reader.id or 0
    exported = client.get(f"/api/subscribers/{sid}/export", headers=auth)
    assert exported.status_code == 200
    story = _profile(client, auth, sid)
    assert (story["events"][0]["kind"], story["events"][0]["actor"]) == ("export", "token desk")
    assert client.delete(f"/api/subscribers/{sid}", headers=auth).status_code == 200
    story = _profile(client, auth, sid)
    assert story["erased"] and story["subscriptions"] == [] and story["tags"] == []
    assert [(e["kind"], e["actor"]) for e in story["events"]] == [("erase", "token desk")]
    audit = session.exec(select(AuditEntry).where(AuditEntry.target_id == sid)).all()
    assert {"subscriber.export", "subscriber.erase"} <= {a.action for a in audit}
    changed = client.post(f"/api/subscribers/{sid}/tags", json={"tag": "x"}, headers=auth)
    assert changed.status_code == 409


def test_roles_decide_and_the_audit_trail_records(
    client: TestClient, session: Session, reader: Subscriber, daily: Newsletter
) -> None:
    writer = _auth(session, "writer-token", role="writer")
    audience = _auth(session, "audience-token", role="audience")
    url = f"/api/subscribers/{reader.id}/subscribe"
    body = {"newsletter": daily.slug, "consent_reason": "signed the paper form"}
    assert client.get(f"/api/subscribers/{reader.id}/profile", headers=writer).status_code == 403
    assert client.post(url, json=body, headers=writer).status_code == 403
    assert client.post(url, json=body, headers=audience).status_code == 200
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.action == "subscriber.subscribe")
    ).all()
    assert [(e.actor_label, e.target_id) for e in entries] == [("token audience-token", reader.id)]
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == reader.id, Subscription.newsletter_id == daily.id
        )
    ).one()
    assert sub.status == SubscriptionStatus.active
