"""POST /webhooks/bounces/{provider}: SES (SNS), Postmark, SendGrid, Mailgun and the generic
form, each verified (and refused with nothing changed when the signature is wrong), applied by
the bounce and complaint rules once per event, and the complaint-rate guardrail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from newsletter.api import create_app
from newsletter.api.provider_webhooks import get_fetcher
from newsletter.audience import bounces
from newsletter.audience.provider_sns import CERTIFICATES
from newsletter.audience.suppression import reason_for
from newsletter.config import Settings
from newsletter.mail.message import message_id
from newsletter.models import Delivery, Issue, Subscriber, Subscription, utcnow
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration import mail_reports
from tests.integration import provider_support as ps

HOOK = "/webhooks/bounces"


@pytest.fixture
def hooks(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "ses_topic_arns": ps.TOPIC,
            "postmark_webhook_username": ps.POSTMARK_USER,
            "postmark_webhook_password": ps.POSTMARK_PASSWORD,
            "sendgrid_webhook_public_key": ps.sendgrid_public_key(),
            "mailgun_webhook_signing_key": ps.MAILGUN_KEY,
            "generic_webhook_secret": ps.GENERIC_SECRET,
            "complaint_rate_min_sent": 4,
            "complaint_rate_threshold": 0.2,
            "provider_webhook_body_limit": 200_000,
        }
    )


@pytest.fixture
def fetcher() -> ps.FakeFetcher:
    CERTIFICATES.clear()
    return ps.FakeFetcher()


@pytest.fixture
def client(hooks: Settings, fetcher: ps.FakeFetcher) -> Iterator[TestClient]:
    app = create_app(hooks)
    app.dependency_overrides[get_fetcher] = lambda: fetcher
    with TestClient(app) as c:
        yield c


def post_json(client: TestClient, provider: str, data: Any, **headers: str) -> Any:
    return client.post(f"{HOOK}/{provider}", content=json.dumps(data).encode(), headers=headers)


def subscription(session: Session, person: Subscriber) -> Subscription:
    session.expire_all()
    return session.exec(select(Subscription).where(Subscription.subscriber_id == person.id)).one()


def state(session: Session, person: Subscriber) -> tuple[str, int, str | None]:
    sub = subscription(session, person)
    return sub.status, sub.soft_bounces, reason_for(session, person.email)


def readers(session: Session, count: int) -> list[Subscriber]:
    return make_subscribers(session, make_newsletter(session), count)


# ---------------------------------------------------------------- Amazon SES via SNS


def test_ses_confirms_its_subscription_and_caches_the_certificate(
    client: TestClient, fetcher: ps.FakeFetcher
) -> None:
    answer = post_json(client, "ses", ps.sns_sign(ps.sns_confirmation()))
    assert answer.status_code == 200, answer.text
    assert answer.json()["note"] == f"subscription to {ps.TOPIC} confirmed"
    assert fetcher.urls == [ps.CERT_URL, ps.SUBSCRIBE_URL]

    again = post_json(client, "ses", ps.sns_sign(ps.sns_confirmation(), version="1"))
    assert again.status_code == 200
    assert fetcher.urls == [ps.CERT_URL, ps.SUBSCRIBE_URL, ps.SUBSCRIBE_URL]  # cert cached

    elsewhere = ps.sns_sign(ps.sns_confirmation("https://attacker.example/confirm"))
    refused = post_json(client, "ses", elsewhere)
    assert refused.status_code == 422
    assert "amazonaws.com" in refused.json()["error"]
    assert fetcher.urls[-1] == ps.SUBSCRIBE_URL  # the attacker's URL was never fetched


def test_ses_bounces_and_complaints_are_applied(client: TestClient, session: Session) -> None:
    gone, full, angry = readers(session, 3)

    hard = ps.sns_sign(ps.sns_notification(ps.ses_bounce(gone.email, "Permanent", "5.1.1", None)))
    soft = ps.sns_sign(ps.sns_notification(ps.ses_bounce(full.email, "Transient", "4.2.2", None)))
    complaint = ps.sns_sign(ps.sns_notification(ps.ses_complaint(angry.email)))
    for message in (hard, soft, complaint):
        answer = post_json(client, "ses", message)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == 1

    assert state(session, gone) == ("bounced", 0, "bounced")
    assert state(session, full) == ("active", 1, None)
    assert state(session, angry) == ("complained", 0, "complained")

    replay = post_json(client, "ses", soft)  # SNS retries a delivery it thinks failed
    assert (replay.status_code, replay.json()["replayed"], replay.json()["applied"]) == (200, 1, 0)
    assert state(session, full) == ("active", 1, None)


def test_ses_with_a_wrong_signature_changes_nothing(
    client: TestClient, session: Session, fetcher: ps.FakeFetcher
) -> None:
    (person,) = readers(session, 1)
    signed = ps.sns_sign(
        ps.sns_notification(ps.ses_bounce(person.email, "Permanent", "5.1.1", None))
    )

    tampered = {**signed, "Message": signed["Message"].replace("Permanent", "Permanent ")}
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    foreign_topic = ps.sns_sign(
        ps.sns_notification(
            ps.ses_bounce(person.email, "Permanent", "5.1.1", None),
            topic="arn:aws:sns:eu-west-1:999999999999:someone-else",
        )
    )
    fake_cert = {
        **signed,
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
    }
    cases = [(tampered, 403), (unsigned, 401), (foreign_topic, 403), (fake_cert, 403)]
    for message, status in cases:
        answer = post_json(client, "ses", message)
        assert answer.status_code == status, (message.get("TopicArn"), answer.text)

    assert state(session, person) == ("active", 0, None)
    assert all(url == ps.CERT_URL for url in fetcher.urls)  # never the evil host


# ---------------------------------------------------------------- Postmark


def test_postmark_bounces_complaints_and_its_credentials(
    client: TestClient, session: Session
) -> None:
    gone, full, angry = readers(session, 3)
    auth = ps.basic(ps.POSTMARK_USER, ps.POSTMARK_PASSWORD)

    wrong = post_json(
        client,
        "postmark",
        ps.postmark_bounce(gone.email, "HardBounce", 1),
        **ps.basic("postmark", "guess"),
    )
    missing = post_json(client, "postmark", ps.postmark_bounce(gone.email, "HardBounce", 1))
    assert (wrong.status_code, missing.status_code) == (403, 401)
    assert state(session, gone) == ("active", 0, None)

    for payload in (
        ps.postmark_bounce(gone.email, "HardBounce", 1),
        ps.postmark_bounce(full.email, "SoftBounce", 2),
        ps.postmark_complaint(angry.email, 3),
    ):
        answer = post_json(client, "postmark", payload, **auth)
        assert (answer.status_code, answer.json()["applied"]) == (200, 1), answer.text
    assert state(session, gone) == ("bounced", 0, "bounced")
    assert state(session, full) == ("active", 1, None)
    assert state(session, angry) == ("complained", 0, "complained")

    replay = post_json(client, "postmark", ps.postmark_bounce(full.email, "SoftBounce", 2), **auth)
    assert replay.json()["replayed"] == 1
    assert state(session, full) == ("active", 1, None)

    autoreply = post_json(
        client, "postmark", ps.postmark_bounce(full.email, "AutoResponder", 4), **auth
    )
    assert autoreply.json()["applied"] == 0 and autoreply.json()["skipped"]
    malformed = post_json(client, "postmark", {"RecordType": "Bounce"}, **auth)
    assert malformed.status_code == 422 and "ID" in malformed.json()["error"]


# ---------------------------------------------------------------- SendGrid


def test_sendgrid_events_are_verified_and_applied(client: TestClient, session: Session) -> None:
    gone, blocked, angry = readers(session, 3)
    events = [
        ps.sendgrid_event(
            gone.email,
            "bounce",
            type="bounce",
            status="5.1.1",
            reason="500 unknown recipient",
            bounce_classification="Invalid Address",
        ),
        ps.sendgrid_event(
            blocked.email, "bounce", type="blocked", status="4.0.0", reason="temporarily blocked"
        ),
        ps.sendgrid_event(angry.email, "spamreport"),
        ps.sendgrid_event(gone.email, "processed"),
    ]
    body = json.dumps(events).encode()

    forged = ps.sendgrid_headers(body, key=ec.generate_private_key(ec.SECP256R1()))
    assert client.post(f"{HOOK}/sendgrid", content=body, headers=forged).status_code == 403
    assert client.post(f"{HOOK}/sendgrid", content=body).status_code == 401
    assert state(session, gone) == ("active", 0, None)

    answer = client.post(f"{HOOK}/sendgrid", content=body, headers=ps.sendgrid_headers(body))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["applied"], len(answer.json()["skipped"])) == (3, 1)
    assert state(session, gone) == ("bounced", 0, "bounced")
    assert state(session, blocked) == ("active", 1, None)
    assert state(session, angry) == ("complained", 0, "complained")

    replay = client.post(f"{HOOK}/sendgrid", content=body, headers=ps.sendgrid_headers(body))
    assert (replay.json()["applied"], replay.json()["replayed"]) == (0, 3)
    assert state(session, blocked) == ("active", 1, None)


# ---------------------------------------------------------------- Mailgun


def test_mailgun_events_are_verified_and_applied(client: TestClient, session: Session) -> None:
    gone, full, angry = readers(session, 3)
    forged = ps.mailgun(ps.mailgun_failed(gone.email, "permanent"), key="not-the-key")
    assert post_json(client, "mailgun", forged).status_code == 403
    assert post_json(client, "mailgun", {"event-data": forged["event-data"]}).status_code == 401
    assert state(session, gone) == ("active", 0, None)

    temporary = ps.mailgun(ps.mailgun_failed(full.email, "temporary"))
    for payload in (
        ps.mailgun(ps.mailgun_failed(gone.email, "permanent")),
        temporary,
        ps.mailgun(ps.mailgun_complained(angry.email)),
    ):
        answer = post_json(client, "mailgun", payload)
        assert (answer.status_code, answer.json()["applied"]) == (200, 1), answer.text
    assert state(session, gone) == ("bounced", 0, "bounced")
    assert state(session, full) == ("active", 1, None)
    assert state(session, angry) == ("complained", 0, "complained")
    assert post_json(client, "mailgun", temporary).json()["replayed"] == 1
    assert state(session, full) == ("active", 1, None)

    # Mailgun signs only timestamp + token: a captured signature with other event data is a
    # replay of its token, and changes nothing
    swapped = {**temporary, "event-data": ps.mailgun_failed(full.email, "permanent")}
    assert post_json(client, "mailgun", swapped).json()["replayed"] == 1
    assert state(session, full) == ("active", 1, None)


# ---------------------------------------------------------------- generic


def test_generic_form_finds_the_reader_by_our_message_id(
    client: TestClient, session: Session, settings: Settings
) -> None:
    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1)
    mid = message_id(
        settings.secret_key,
        issue_id=fx.issue.id,
        subscriber_id=person.id,
        domain="news.example.org",  # type: ignore[arg-type]
    )
    event = {
        "type": "bounce",
        "bounce_type": "hard",
        "email": "forwarded@elsewhere.example",
        "message_id": mid,
        "id": "evt-1",
    }
    body = json.dumps(event).encode()

    stale = ps.generic_headers(body, at=int(time.time()) - 3600)
    assert client.post(f"{HOOK}/generic", content=body, headers=stale).status_code == 403
    wrong = ps.generic_headers(body, secret="not-the-secret")
    assert client.post(f"{HOOK}/generic", content=body, headers=wrong).status_code == 403
    assert state(session, person) == ("active", 0, None)

    answer = client.post(f"{HOOK}/generic", content=body, headers=ps.generic_headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"][0]["subscriber_id"] == person.id
    assert answer.json()["outcomes"][0]["issue_id"] == fx.issue.id
    assert state(session, person) == ("bounced", 0, "bounced")

    bad = json.dumps({"type": "bounce", "email": person.email}).encode()  # no bounce_type
    assert (
        client.post(f"{HOOK}/generic", content=bad, headers=ps.generic_headers(bad)).status_code
        == 422
    )
    junk = b"{not json"
    assert (
        client.post(f"{HOOK}/generic", content=junk, headers=ps.generic_headers(junk)).status_code
        == 422
    )
    assert client.post(f"{HOOK}/nosuch", content=body).status_code == 422

    # a provider's batch is larger than any form: the webhooks have their own body limit
    padded = json.dumps({"type": "complaint", "email": "x@example.org", "pad": "x" * 150_000})
    big = padded.encode()
    assert (
        client.post(f"{HOOK}/generic", content=big, headers=ps.generic_headers(big)).status_code
        == 200
    )
    huge = json.dumps(
        {"type": "complaint", "email": "x@example.org", "pad": "x" * 250_000}
    ).encode()
    assert (
        client.post(f"{HOOK}/generic", content=huge, headers=ps.generic_headers(huge)).status_code
        == 413
    )

    metrics = client.get("/metrics").text
    assert 'newsletter_provider_events_total{kind="hard",provider="generic"} 1.0' in metrics


def test_an_unconfigured_provider_is_refused(settings: Settings, session: Session) -> None:
    (person,) = readers(session, 1)
    with TestClient(create_app(settings)) as plain:
        answer = post_json(
            plain, "mailgun", ps.mailgun(ps.mailgun_failed(person.email, "permanent"))
        )
    assert (
        answer.status_code == 403
        and "NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY" in answer.json()["error"]
    )
    assert state(session, person) == ("active", 0, None)


# ---------------------------------------------------------------- the guardrail


def sending_issue(
    session: Session, hooks: Settings, readers_count: int
) -> tuple[Issue, list[Subscriber]]:
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, readers_count)
    assert fx.issue.id is not None
    fill_ledger(session, issue_id=fx.issue.id, checks=qa_config(hooks))
    for row in session.exec(select(Delivery).where(Delivery.issue_id == fx.issue.id)).all():
        row.status, row.sent_at = "sent", utcnow()
        session.add(row)
    session.commit()
    return fx.issue, people


def test_complaints_past_the_threshold_pause_the_send(
    client: TestClient, session: Session, hooks: Settings
) -> None:
    issue, people = sending_issue(session, hooks, 5)  # threshold 20%, judged from 4 sent
    first = json.dumps({"type": "complaint", "email": people[0].email, "id": "c-1"}).encode()

    for _ in range(2):  # the second is a replay: one complaint, 1 in 5 = 20%, not above
        answer = client.post(f"{HOOK}/generic", content=first, headers=ps.generic_headers(first))
        assert answer.status_code == 200, answer.text
    session.expire_all()
    assert session.get(Issue, issue.id).status == "sending"  # type: ignore[union-attr]
    assert answer.json()["replayed"] == 1

    # the second complaint arrives the old way, as an ARF report from a feedback loop
    result = bounces.process_message(session, hooks, mail_reports.arf(people[1].email))
    session.commit()

    session.expire_all()
    paused = session.get(Issue, issue.id)
    assert paused is not None and paused.status == "paused"
    assert paused.status_reason is not None
    assert "complaint rate 40.00% (2 complaints in 5 messages sent)" in paused.status_reason
    assert "above the 20.00% limit" in paused.status_reason
    assert "paused" in result.outcome


# ---------------------------------------------------------------- whatever arrives, signed


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TEXT = st.text(max_size=40) | st.sampled_from(["reader@example.org", "a\x00b@example.org", ""])


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Objects with some of the provider's own fields (any values) or any JSON at all."""
    return st.fixed_dictionaries({}, optional={k: v | JSON for k, v in fields.items()}) | JSON


BODIES: dict[str, st.SearchStrategy[Any]] = {
    "generic": shaped(
        {
            "type": st.sampled_from(["bounce", "complaint"]),
            "email": TEXT,
            "bounce_type": st.sampled_from(["hard", "soft"]),
            "message_id": TEXT,
            "id": TEXT,
        }
    ),
    "sendgrid": st.lists(
        shaped(
            {
                "event": st.sampled_from(["bounce", "dropped", "spamreport"]),
                "email": TEXT,
                "type": TEXT,
                "reason": TEXT,
                "sg_event_id": TEXT,
                "smtp-id": TEXT,
            }
        ),
        max_size=3,
    )
    | JSON,
    "postmark": shaped(
        {
            "RecordType": st.sampled_from(["Bounce", "SpamComplaint"]),
            "ID": st.integers() | TEXT,
            "Type": st.sampled_from(["HardBounce", "x"]),
            "Email": TEXT,
            "Content": TEXT,
        }
    ),
    "mailgun": shaped(
        {
            "event": st.sampled_from(["failed", "complained"]),
            "id": TEXT,
            "recipient": TEXT,
            "severity": st.sampled_from(["permanent", "x"]),
            "message": st.fixed_dictionaries({"headers": shaped({"message-id": TEXT})}),
            "delivery-status": JSON,
        }
    ),
    "ses": shaped(
        {
            "notificationType": st.sampled_from(["Bounce", "Complaint"]),
            "bounce": shaped(
                {
                    "bounceType": st.sampled_from(["Permanent", "Transient"]),
                    "bouncedRecipients": st.lists(shaped({"emailAddress": TEXT})),
                }
            ),
            "complaint": shaped({"complainedRecipients": st.lists(shaped({"emailAddress": TEXT}))}),
            "mail": shaped({"headers": JSON, "commonHeaders": JSON}),
        }
    ),
}


def signed_request(provider: str, data: Any) -> tuple[bytes, dict[str, str]]:
    if provider == "ses":
        return json.dumps(
            ps.sns_sign({**ps.sns_notification({}), "Message": json.dumps(data)})
        ).encode(), {}
    if provider == "mailgun":
        return json.dumps(ps.mailgun(data)).encode(), {}
    body = json.dumps(data).encode()
    if provider == "generic":
        return body, ps.generic_headers(body)
    if provider == "sendgrid":
        return body, ps.sendgrid_headers(body)
    return body, ps.basic(ps.POSTMARK_USER, ps.POSTMARK_PASSWORD)


@given(data=st.data())
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_signed_requests_of_any_shape_never_fail_with_a_5xx(
    client: TestClient, data: st.DataObject
) -> None:
    provider = data.draw(st.sampled_from(sorted(BODIES)))
    body, headers = signed_request(provider, data.draw(BODIES[provider]))
    answer = client.post(f"{HOOK}/{provider}", content=body, headers=headers)
    assert answer.status_code in (200, 422), (provider, body[:300], answer.text)
