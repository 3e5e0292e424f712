"""The public life cycle end to end: real HTTP app, real Celery worker on Redis, real SMTP sink.

Sign up over HTTP -> the worker sends the confirmation email -> the test follows the link in the
email that the sink received -> active, with a consent record. Then an issue goes out; a one-click
POST on the URL from that issue's List-Unsubscribe header -> the next issue skips the address.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.models import Delivery, SubscriberEvent, Subscription, SubscriptionStatus
from newsletter.sending import progress
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import Received, SMTPSink
from tests.conftest import celery_worker, make_issue, make_subscribers
from tests.integration.public_support import (
    confirm_link,
    form_action,
    generous_limiter,
    parse,
    path_of,
    unique_email,
)
from worker.dispatch import celery_send_confirmation

REDIS_DB = 9  # a database of its own on the shared server, flushed before each test
HTTPS_LINK = re.compile(r"<(https://[^>]+)>")


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch) as current:
        yield current


@pytest.fixture
def http(worker_settings: Settings) -> Iterator[TestClient]:
    """The app as served, its confirmation emails queued on the worker's broker (Celery)."""
    app = create_app(worker_settings, send_confirmation=celery_send_confirmation)
    app.state.signup_limiter = generous_limiter()  # the shared Redis must not limit the tests
    with TestClient(app) as client:
        yield client


def wait_for(found: Callable[[], list[Received]], timeout: float = 30) -> list[Received]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.05)
    raise AssertionError(f"nothing arrived in {timeout}s")


def to(sink: SMTPSink, email: str) -> Callable[[], list[Received]]:
    return lambda: [m for m in list(sink.messages) if m.rcpt_tos == [email]]


def send_issue(session: Session, settings: Settings, issue_id: int) -> None:
    from worker.tasks import dispatch

    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    session.commit()
    dispatch.delay(issue_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as s:
            if progress.progress(s, issue_id=issue_id).finished:
                return
        time.sleep(0.1)
    raise AssertionError(f"issue {issue_id} was not sent")


def test_sign_up_confirm_by_email_receive_an_issue_then_one_click_unsubscribe(
    http: TestClient, session: Session, sink: SMTPSink, worker_settings: Settings
) -> None:
    first = make_issue(session)
    nl = first.newsletter
    others = make_subscribers(session, nl, 3)
    email = unique_email("new-reader")

    # sign up: the confirmation email arrives through Celery on Redis and SMTP
    response = http.post(
        "/api/subscribe",
        json={"email": email, "name": "Ales", "newsletters": [nl.slug]},
        headers={"User-Agent": "Reader's Browser/1.0"},
    )
    assert response.status_code == 202
    (confirmation,) = wait_for(to(sink, email))
    message = parse(confirmation.data)
    assert message["Auto-Submitted"] == "auto-generated"

    # follow the link from the email: a page with one button, whose click confirms
    link = path_of(confirm_link(message))
    page = http.get(link)
    assert page.status_code == 200
    assert form_action(page.text) == ""
    assert http.post(link, headers={"User-Agent": "Reader's Browser/1.0"}).status_code == 200

    session.expire_all()
    sub = session.exec(
        select(Subscription).where(
            Subscription.newsletter_id == nl.id,
            col(Subscription.subscriber_id).notin_([p.id for p in others]),
        )
    ).one()
    assert sub.status == SubscriptionStatus.active
    assert sub.consent_at is not None
    assert (sub.consent_ip, sub.consent_user_agent) == ("testclient", "Reader's Browser/1.0")
    assert (sub.consent_source, sub.consent_text_version) == ("api", "2025-10")
    events = session.exec(
        select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.subscriber_id)
    ).all()
    assert sorted(e.kind for e in events) == ["confirm", "signup"]

    # the first issue reaches the new subscriber, with RFC 8058 headers
    send_issue(session, worker_settings, first.issue.id)  # type: ignore[arg-type]
    (issue_copy,) = [m for m in to(sink, email)() if m is not confirmation]
    header = parse(issue_copy.data)
    assert header["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (unsubscribe_url,) = HTTPS_LINK.findall(str(header["List-Unsubscribe"]))

    # what a mailbox provider does: POST List-Unsubscribe=One-Click, no cookie, no token
    http.cookies.clear()
    one_click = http.post(
        path_of(unsubscribe_url),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200

    # the next issue goes to the others, not to the address that left
    before = len(sink.messages)
    second = make_issue(session, newsletter=nl)
    send_issue(session, worker_settings, second.issue.id)  # type: ignore[arg-type]
    session.expire_all()
    ledger = session.exec(select(Delivery).where(Delivery.issue_id == second.issue.id)).all()
    assert sub.subscriber_id not in {row.subscriber_id for row in ledger}
    assert sorted(row.subscriber_id for row in ledger) == sorted(p.id for p in others)  # type: ignore[type-var]
    new = sink.messages[before:]
    assert sorted(m.rcpt_tos[0] for m in new) == sorted(p.email for p in others)


def test_a_repeated_sign_up_sends_no_second_confirmation_email(
    http: TestClient, session: Session, sink: SMTPSink
) -> None:
    fx = make_issue(session)
    email = unique_email()
    body = {"email": email, "newsletters": [fx.newsletter.slug]}

    answers = [http.post("/api/subscribe", json=body).json() for _ in range(3)]

    assert answers[0] == answers[1] == answers[2]
    wait_for(to(sink, email))
    time.sleep(1.0)  # a second email, if one were queued, would arrive by now
    assert len(to(sink, email)()) == 1
