"""A send whose database goes away under it (PostgreSQL only: ``pg_terminate_backend``).

- A real Celery worker sends through a real aiosmtpd sink while the test terminates every
  backend connection of the scratch database twice, mid-send: the worker's sender reconnects
  and records each reply on a new connection (``sending.recorder``), and every reader gets the
  issue exactly once, the ledger's Message-ID on it.
- The database refusing connections for longer than a batch waits: the batch raises
  ``DatabaseUnavailable`` (its task is retried) and loses no row: the message handed over just
  before stays in hand until its lease runs out, then goes out again with the same Message-ID.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from newsletter import db
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import DatabaseUnavailable
from newsletter.models import DeliveryStatus, IssueStatus, utcnow
from newsletter.sending import batch, ledger, progress
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import Received, SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import PG_ADMIN_URL, celery_worker, make_issue, make_subscribers
from tests.unit.test_ledger import _rows

REDIS_DB = 9  # this test's own database on the test Redis, flushed before it
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _admin(sql: str, *params: object) -> int:
    """Run ``sql`` on the shared server's admin database; the rows it returned."""
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return len(cursor.fetchall()) if cursor.description else 0


def _terminate_backends(database: str) -> int:
    """Every connection to ``database`` (the worker's, the test's): how many were ended."""
    return _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        database,
    )


def _copies(sink: SMTPSink) -> dict[str, list[str]]:
    copies: dict[str, list[str]] = {}
    for message in sink.messages:
        parsed = message.parse()
        copies.setdefault(message.rcpt_tos[0].lower(), []).append(str(parsed["Message-ID"]))
    return copies


def _message_ids(session: Session, issue_id: int) -> dict[int, str | None]:
    return {row.subscriber_id: row.message_id for row in _rows(session, issue_id)}


def test_a_worker_whose_backends_are_terminated_mid_send_sends_everyone_once(
    session: Session, settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.tasks import dispatch

    database = make_url(settings.database_url).database
    assert database is not None
    fx = make_issue(session)
    readers = make_subscribers(session, fx.newsletter, 40)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    terminated: list[int] = []
    sink = SMTPSink()

    def terminate_at(received: Received) -> None:
        if len(sink.messages) in (6, 23):  # in the middle of a batch of 10: replies to record
            ended = _terminate_backends(database)
            terminated.append(ended)

    sink.on_message = terminate_at
    with sink, celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="10") as current:
        dispatch.delay(issue_id)
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            try:
                with db.session_scope(current.database_url) as s:
                    state = progress.progress(s, issue_id=issue_id)
            except OperationalError:  # this poll's own connection was among those terminated
                time.sleep(0.2)
                continue
            if state.status == IssueStatus.sent:
                break
            time.sleep(0.2)
    assert state is not None and state.status == IssueStatus.sent, state
    assert len(terminated) == 2 and all(terminated), terminated  # the worker's were among them
    copies = _copies(sink)
    assert sorted(copies) == sorted(r.email.lower() for r in readers)
    assert all(len(ids) == 1 for ids in copies.values()), copies  # nothing sent twice
    session.rollback()  # the test's own connection was terminated too: a new one
    recorded = _message_ids(session, issue_id)
    assert {r.email.lower(): recorded[r.id] for r in readers} == {
        email: ids[0] for email, ids in copies.items()
    }


def test_a_database_away_longer_than_a_batch_waits_loses_no_row(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = make_url(settings.database_url).database
    assert database is not None
    monkeypatch.setattr(settings, "lease_seconds", 2)  # the batch waits a second, not minutes
    fx = make_issue(session)
    readers = make_subscribers(session, fx.newsletter, 8)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    sink = SMTPSink()
    allowed = threading.Event()

    def database_goes_away(received: Received) -> None:
        if len(sink.messages) == 3:
            _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            _terminate_backends(database)

    sink.on_message = database_goes_away
    transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=0.5))
    try:
        with sink:
            try:
                with pytest.raises(DatabaseUnavailable, match="unreachable"):
                    batch.run_batch(settings, issue_id=issue_id, transport=transport)
            finally:
                _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
                allowed.set()
            session.rollback()
            rows = _rows(session, issue_id)
            statuses = Counter(r.status for r in rows)
            # two recorded; the third handed over, its reply never recorded; none lost
            assert statuses == {DeliveryStatus.sent: 2, DeliveryStatus.sending: 6}, statuses
            # the leases run out (a tick later, as after a killed worker): the rows come back
            assert ledger.requeue_expired(session, now=utcnow() + timedelta(seconds=3)) == 6
            session.commit()
            for _ in range(5):
                if batch.run_batch(settings, issue_id=issue_id, transport=transport).finished:
                    break
    finally:
        transport.close()
    assert allowed.is_set()
    copies = _copies(sink)
    assert sorted(copies) == sorted(r.email.lower() for r in readers)
    twice = {email: ids for email, ids in copies.items() if len(ids) > 1}
    assert len(twice) == 1, copies  # the one in hand when the database went away
    (ids,) = twice.values()
    assert len(ids) == 2 and ids[0] == ids[1]  # the same message, recognisably
    recorded = _message_ids(session, issue_id)
    assert {r.email.lower(): recorded[r.id] for r in readers} == {
        email: ids[0] for email, ids in copies.items()
    }
