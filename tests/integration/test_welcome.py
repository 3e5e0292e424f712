"""The welcome email (issue 14, item 4): a standing issue sent once to each subscriber who
confirms, through the same ledger and the same Celery batches as any send.

The end-to-end tests run the HTTP app's confirmation page, a real Celery worker on Redis and a
real SMTP sink; the others check the ledger rows the domain writes (no worker needed).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter import db
from newsletter.api import create_app
from newsletter.audience import csv_import, lifecycle, manage
from newsletter.audience.links import ConfirmData, make_confirm_token
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput, InvalidState, QABlocked
from newsletter.models import (
    Delivery,
    Issue,
    Newsletter,
    RenderedIssue,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from newsletter.sending import controls, progress, welcome
from newsletter.sending.start import fill_ledger, start_send
from newsletter.transports.sink import Received, SMTPSink
from tests.conftest import celery_worker, make_issue, make_newsletter, make_subscribers
from tests.integration.public_support import parse, text_of
from worker.dispatch import celery_dispatch


def _redis_db(redis_url: str) -> int:
    """The test run's own Redis database (NEWSLETTER_TEST_REDIS_URL), flushed before each test."""
    return int(urlsplit(redis_url).path.strip("/") or 0)


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with celery_worker(redis_url, _redis_db(redis_url), sink, monkeypatch) as current:
        yield current


@pytest.fixture
def http(worker_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(worker_settings, dispatch=celery_dispatch)) as client:
        yield client


def pending_reader(session: Session, nl: Newsletter, name: str = "Ales Bialiatski") -> Subscriber:
    (person,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.pending)
    person.name = name
    session.add(person)
    session.commit()
    return person


def confirm_path(settings: Settings, person: Subscriber, nl: Newsletter) -> str:
    token = make_confirm_token(
        settings.secret_key,
        subscriber_id=person.id,  # type: ignore[arg-type]
        newsletter_ids=[nl.id],  # type: ignore[list-item]
        source="form",
        consent_text_version=settings.consent_text_version,
    )
    return f"/confirm/{token}"


def confirm_data(person: Subscriber, nl: Newsletter) -> ConfirmData:
    return ConfirmData(person.id, (nl.id,), "form", "2025-10", utcnow())  # type: ignore[arg-type]


def standing_welcome(session: Session, nl: Newsletter, *, with_latest: bool = False) -> Issue:
    issue = welcome.create(session, newsletter=nl.slug)
    welcome.configure(
        session,
        newsletter=nl.slug,
        issue_id=issue.id,
        enabled=True,
        with_latest=with_latest,
        checks=QAConfig(),
    )
    session.commit()
    return issue


def rows_of(session: Session, issue_id: int) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all())


def wait_for_ledger(settings: Settings, issue_ids: list[int], timeout: float = 30) -> None:
    """Until no row of these issues is pending or in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session_scope(settings.database_url) as s:
            open_rows = s.exec(
                select(func.count())
                .select_from(Delivery)
                .where(
                    col(Delivery.issue_id).in_(issue_ids),
                    col(Delivery.status).in_(["pending", "sending"]),
                )
            ).one()
        if open_rows == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"rows of {issue_ids} still open after {timeout}s")


def to(sink: SMTPSink, email: str) -> list[Received]:
    return [m for m in list(sink.messages) if m.rcpt_tos == [email]]


def send_to_list(session: Session, settings: Settings, issue_id: int) -> None:
    start_send(settings, session, issue_id=issue_id, dispatch=celery_dispatch)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.session_scope(settings.database_url) as s:
            if progress.progress(s, issue_id=issue_id).finished:
                return
        time.sleep(0.1)
    raise AssertionError(f"issue {issue_id} was not sent")


# ---------------------------------------------------------------- end to end: Celery and SMTP


def test_a_confirmation_gets_the_welcome_and_the_latest_issue_once_each(
    http: TestClient, session: Session, sink: SMTPSink, worker_settings: Settings
) -> None:
    latest = make_issue(session)
    nl = latest.newsletter
    make_subscribers(session, nl, 2)
    send_to_list(session, worker_settings, latest.issue.id)  # type: ignore[arg-type]
    standing = standing_welcome(session, nl, with_latest=True)
    person = pending_reader(session, nl)
    path = confirm_path(worker_settings, person, nl)

    assert http.post(path).status_code == 200
    assert http.post(path).status_code == 200  # a repeated click: already active, nothing new
    wait_for_ledger(worker_settings, [standing.id, latest.issue.id])  # type: ignore[list-item]
    time.sleep(0.5)  # a second copy, if any were queued, would have arrived by now

    got = [parse(m.data) for m in to(sink, person.email)]
    frozen = session.get(RenderedIssue, latest.issue.id)
    assert frozen is not None
    assert sorted(str(m["Subject"]) for m in got) == sorted(
        [f"Welcome to {nl.name}", frozen.subject]
    )
    (hello,) = [m for m in got if str(m["Subject"]) == f"Welcome to {nl.name}"]
    body = text_of(hello)
    assert "Dear Ales," in body  # the personal parts are filled per recipient
    assert f"Thank you for subscribing to {nl.name}" in body
    assert "https://news.example.org/unsubscribe/" in str(hello["List-Unsubscribe"])
    assert "https://news.example.org/preferences/" in body
    assert [r.status for r in rows_of(session, standing.id)] == ["sent"]  # type: ignore[arg-type]
    # the sent issue took one late row and stays sent, its counts adding up
    state = progress.progress(session, issue_id=latest.issue.id)  # type: ignore[arg-type]
    assert (state.status, state.counts, state.total, state.done) == ("sent", {"sent": 3}, 3, 3)
    assert next(m for m in got if m is not hello)["Message-ID"] == next(
        r.message_id
        for r in rows_of(session, latest.issue.id)
        if r.subscriber_id == person.id  # type: ignore[arg-type]
    )


def test_two_concurrent_confirms_send_one_welcome(
    session: Session, sink: SMTPSink, worker_settings: Settings
) -> None:
    nl = make_newsletter(session)
    standing = standing_welcome(session, nl)
    person = pending_reader(session, nl)
    data = confirm_data(person, nl)
    barrier = threading.Barrier(2)
    results: list[lifecycle.ConfirmResult] = []

    def click() -> None:
        with db.session_scope(worker_settings.database_url) as s:
            barrier.wait()
            results.append(lifecycle.confirm(s, data=data, ip=None, user_agent=None))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for result in results:
        for issue_id in result.dispatch:
            celery_dispatch(issue_id)
    wait_for_ledger(worker_settings, [standing.id])  # type: ignore[list-item]
    time.sleep(0.5)

    assert len(results) == 2
    assert sorted(len(r.confirmed) for r in results) == [0, 1]
    assert len(to(sink, person.email)) == 1
    assert len(rows_of(session, standing.id)) == 1  # type: ignore[arg-type]


# ---------------------------------------------------------------- the ledger rows (no worker)


def test_welcome_off_or_never_set_sends_nothing(session: Session) -> None:
    nl = make_newsletter(session)
    standing = welcome.create(session, newsletter=nl.slug)
    welcome.configure(session, newsletter=nl.slug, issue_id=standing.id, checks=QAConfig())
    person = pending_reader(session, nl)
    done = lifecycle.confirm(session, data=confirm_data(person, nl), ip=None, user_agent=None)
    assert done.confirmed == (nl.id,)
    assert done.dispatch == ()
    assert rows_of(session, standing.id) == []  # type: ignore[arg-type]
    other = make_newsletter(session)  # no welcome settings at all
    late = pending_reader(session, other)
    assert lifecycle.confirm(session, data=confirm_data(late, other), ip=None, user_agent=None)
    assert session.exec(select(Delivery).where(Delivery.subscriber_id == late.id)).all() == []


def test_import_and_admin_activation_send_no_welcome(session: Session) -> None:
    nl = make_newsletter(session)
    standing = standing_welcome(session, nl, with_latest=True)
    manage.create(session, email="desk-added@example.org", newsletters=[nl.slug])
    csv_text = "email,name\nimported@example.org,Imported Reader\n"
    report = csv_import.import_csv(session, io.BytesIO(csv_text.encode()), newsletters=[nl.slug])
    session.commit()
    assert report.imported == 1
    active = session.exec(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.newsletter_id == nl.id, Subscription.status == "active")
    ).one()
    assert active == 2
    assert rows_of(session, standing.id) == []  # type: ignore[arg-type]


def test_a_comeback_after_unsubscribing_gets_no_second_welcome(session: Session) -> None:
    nl = make_newsletter(session)
    standing = standing_welcome(session, nl)
    person = pending_reader(session, nl)
    first = lifecycle.confirm(session, data=confirm_data(person, nl), ip=None, user_agent=None)
    assert first.dispatch == (standing.id,)
    lifecycle.unsubscribe(session, subscriber_id=person.id, newsletter_id=nl.id, source="link")  # type: ignore[arg-type]
    again = lifecycle.confirm(session, data=confirm_data(person, nl), ip=None, user_agent=None)
    session.commit()
    assert again.confirmed == (nl.id,)
    assert len(rows_of(session, standing.id)) == 1  # type: ignore[arg-type]


def test_the_standing_issue_never_goes_to_the_list(session: Session, settings: Settings) -> None:
    nl = make_newsletter(session)
    make_subscribers(session, nl, 3)
    standing = standing_welcome(session, nl)
    with pytest.raises(InvalidState, match="never to the whole list"):
        fill_ledger(session, issue_id=standing.id, checks=QAConfig())  # type: ignore[arg-type]
    with pytest.raises(InvalidState, match="never to the whole list"):
        controls.schedule(session, issue_id=standing.id, at=utcnow(), checks=QAConfig())  # type: ignore[arg-type]
    session.rollback()
    assert rows_of(session, standing.id) == []  # type: ignore[arg-type]
    assert session.get(Issue, standing.id).status == "draft"  # type: ignore[union-attr]
    # and a regular issue created after it keeps the archive's numbering
    fx = make_issue(session, newsletter=nl)
    assert (standing.number, fx.issue.number) == (-1, 1)


def test_turning_it_on_needs_a_welcome_issue_that_passes_qa(session: Session) -> None:
    nl = make_newsletter(session)
    with pytest.raises(InvalidInput, match="choose or create"):
        welcome.configure(session, newsletter=nl.slug, enabled=True, checks=QAConfig())
    session.rollback()
    regular = make_issue(session, newsletter=nl)
    with pytest.raises(InvalidInput, match="not a welcome email"):
        welcome.configure(session, newsletter=nl.slug, issue_id=regular.issue.id, checks=QAConfig())
    session.rollback()
    standing = welcome.create(session, newsletter=nl.slug)
    standing.intro_md = ""
    session.add(standing)
    session.flush()
    with pytest.raises(QABlocked, match="no intro and no articles"):
        welcome.configure(
            session, newsletter=nl.slug, issue_id=standing.id, enabled=True, checks=QAConfig()
        )


def test_the_tick_starts_welcome_rows_nobody_dispatched(
    session: Session, settings: Settings
) -> None:
    from newsletter.sending import scheduler

    fx = make_issue(session)
    nl = fx.newsletter
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    assert scheduler.tick(settings, parallelism=4).batches == {}  # no recipient: finished
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == "sent"  # type: ignore[union-attr]
    standing = standing_welcome(session, nl, with_latest=True)
    assert scheduler.late_issue_ids(session) == []  # nothing waits yet
    person = pending_reader(session, nl)
    done = lifecycle.confirm(session, data=confirm_data(person, nl), ip=None, user_agent=None)
    session.commit()
    assert done.dispatch == (standing.id, fx.issue.id)
    # the dispatch was lost: the periodic tick finds both rows and starts one chain for each
    assert scheduler.tick(settings, parallelism=4).batches == {standing.id: 1, fx.issue.id: 1}
    session.expire_all()
    assert session.get(Issue, fx.issue.id).status == "sent"  # not reopened
    # a cancelled welcome's rows stay where they are
    controls.cancel(session, issue_id=standing.id)  # type: ignore[arg-type]
    session.commit()
    assert standing.id not in scheduler.late_issue_ids(session)
