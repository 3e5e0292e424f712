"""An issue sent for real through each provider's HTTP API transport, as the worker sends it.

NEWSLETTER_TRANSPORT picks the provider; ``worker.tasks.transport()`` builds it (no SMTP pool
beside it) and ``run_batch`` sends the issue through it to a local fake of the provider's API
(``tests.support.fake_providers``). Every reader's message arrives once, the ledger keeps the
provider's reply, and a recipient the provider refuses for good is failed, not retried
(Postmark's "inactive recipient" also drops the address, as a hard bounce does).
"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings, get_settings
from newsletter.content.qa import QAConfig
from newsletter.models import Delivery, Subscriber, Subscription
from newsletter.sending import batch, prepare
from newsletter.sending.start import fill_ledger
from newsletter.statuses import DeliveryStatus, SubscriptionStatus
from tests.conftest import make_issue, make_subscribers
from tests.integration.test_cli import assert_one_line_error, cli_env
from tests.support.fake_providers import (
    MAILGUN_DOMAIN,
    MAILGUN_KEY,
    POSTMARK_TOKEN,
    SENDGRID_KEY,
    SES_KEY,
    FakeProvider,
)
from worker import celery_app, tasks

ENV = {
    "ses": {"SES_ACCESS_KEY_ID": SES_KEY[0], "SES_SECRET_ACCESS_KEY": SES_KEY[1]},
    "postmark": {"POSTMARK_SERVER_TOKEN": POSTMARK_TOKEN},
    "mailgun": {"MAILGUN_DOMAIN": MAILGUN_DOMAIN, "MAILGUN_API_KEY": MAILGUN_KEY},
    "sendgrid": {"SENDGRID_API_KEY": SENDGRID_KEY},
}
BASE_URL = {
    "ses": "SES_ENDPOINT",
    "postmark": "POSTMARK_BASE_URL",
    "mailgun": "MAILGUN_BASE_URL",
    "sendgrid": "SENDGRID_BASE_URL",
}
# each provider's documented answer for an address it will not send to
REFUSAL = {
    "ses": (
        400,
        {"message": "Email address is not verified."},
        {"x-amzn-ErrorType": "MessageRejected:"},
    ),
    "postmark": (
        422,
        {"ErrorCode": 406, "Message": "You tried to send to inactive recipient(s)."},
        {},
    ),
    "mailgun": (
        400,
        {"message": "to parameter is not a valid address. please check documentation"},
        {},
    ),
    "sendgrid": (
        400,
        {
            "errors": [
                {
                    "message": "Does not contain a valid address.",
                    "field": "personalizations.0.to.0.email",
                }
            ]
        },
        {},
    ),
}


def _use(monkeypatch: pytest.MonkeyPatch, provider: str, fake: FakeProvider) -> Settings:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", provider)
    monkeypatch.setenv("NEWSLETTER_SES_REGION", fake.region)
    monkeypatch.setenv(f"NEWSLETTER_{BASE_URL[provider]}", fake.url)
    for name, value in ENV[provider].items():
        monkeypatch.setenv(f"NEWSLETTER_{name}", value)
    get_settings.cache_clear()
    celery_app.forget_settings()
    return get_settings()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("provider", sorted(ENV))
def test_an_issue_through_a_providers_api(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setattr(prepare, "_templates", {})  # ids repeat across test databases
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 5)
    refused = people[0].email
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    with FakeProvider(provider) as fake:
        fake.script[refused] = [REFUSAL[provider]]
        settings = _use(monkeypatch, provider, fake)
        transport = tasks.transport()
        assert type(transport).__name__.lower().startswith(provider)
        assert tasks.pool() is None  # the SMTP pool is SMTP's alone
        assert tasks.transport() is transport  # one client (connection pool) per thread
        sent = 0
        for _ in range(5):
            result = batch.run_batch(
                settings, issue_id=fx.issue.id, transport=transport, pool=tasks.pool()
            )
            sent += result.sent
            if result.finished or not result.more:
                break
        transport.close()
        tasks._local.transport = None

    readers = {p.email for p in people}
    accepted = fake.accepted()
    assert sent == 4 and len(accepted) == 4
    assert sorted(s.recipient for s in accepted) == sorted(readers - {refused})  # once each
    assert [s.recipient for s in fake.requests].count(refused) == 1  # refused for good: no retry
    for seen in accepted:
        if provider in ("ses", "mailgun"):  # our own MIME, as the sender built it
            msg = message_from_bytes(seen.message, policy=policy.default)
            assert seen.recipient in str(msg["To"])
            assert msg["List-Unsubscribe"]
        elif provider == "postmark":
            assert seen.fields["HtmlBody"] and seen.fields["TextBody"]
            names = {h["Name"] for h in seen.fields["Headers"]}
            assert {"List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"} <= names
        else:
            assert [c["type"] for c in seen.fields["content"]] == ["text/plain", "text/html"]
            assert {"List-Unsubscribe", "List-Unsubscribe-Post"} <= set(seen.fields["headers"])

    session.expire_all()
    rows = session.exec(
        select(Subscriber.email, Delivery.status, Delivery.smtp_response)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)  # type: ignore[arg-type]
        .where(Delivery.issue_id == fx.issue.id)
    ).all()
    by_email = {email: (status, reply) for email, status, reply in rows}
    assert by_email[refused][0] == DeliveryStatus.failed
    assert by_email[refused][1].startswith(f"{REFUSAL[provider][0]} {provider}: ")
    for email in readers - {refused}:
        status, reply = by_email[email]
        assert status == DeliveryStatus.sent
        assert reply.startswith(("200 ", "202 ")) and provider in reply
    # Postmark's "inactive recipient" is a dead address for the sender (as a 5.1.1 bounce):
    # dropped from the list; the others' refusals fail the message and keep the reader
    subscription = session.exec(
        select(Subscription).where(Subscription.subscriber_id == people[0].id)
    ).one()
    dropped = SubscriptionStatus.bounced if provider == "postmark" else SubscriptionStatus.active
    assert subscription.status == dropped


def test_the_cli_says_which_credentials_are_missing_in_one_line(tmp_path: Path) -> None:
    done = cli_env(tmp_path, {"NEWSLETTER_TRANSPORT": "postmark"}, "newsletters", "list")
    assert_one_line_error(
        done,
        "invalid settings: NEWSLETTER_TRANSPORT is 'postmark' but "
        "NEWSLETTER_POSTMARK_SERVER_TOKEN is not set",
    )
    done = cli_env(tmp_path, {"NEWSLETTER_TRANSPORT": "pigeon"}, "newsletters", "list")
    assert_one_line_error(done, "invalid settings: NEWSLETTER_TRANSPORT: Input should be 'smtp'")
