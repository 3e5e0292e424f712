"""The sender's statements run by psycopg itself on PostgreSQL do what the slower ways did.

- A reply recorded ahead (``Recorder.ahead``) lands as the waited-for statement did: the server
  commits it even when the worker dies right after writing it, a connection lost before its
  reply runs it again, and a statement psycopg deallocated under it (its ``DEALLOCATE ALL``
  after a ``ROLLBACK``) runs again, prepared anew.
- The status look between messages and a hand's lock answer as their SQLAlchemy queries.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from newsletter import db
from newsletter.models import Delivery, DeliveryStatus
from newsletter.sending import hands as hands_module
from newsletter.sending import ledger
from newsletter.sending.hands import Hands
from newsletter.sending.recorder import Recorder
from newsletter.statuses import IssueKind, IssueStatus
from tests.conftest import make_issue, make_subscribers, reloaded
from tests.unit.test_send_hot_path import _claimed


def _postgres(session: Session) -> Engine:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg's own statements are PostgreSQL's; SQLite runs SQLAlchemy's")
    return engine


def _statement(row: ledger.Claimed, lease: str | None = None) -> tuple[str, tuple[object, ...]]:
    return ledger.record_sent_statement(
        delivery_id=row.delivery_id,
        message_id=f"<{row.delivery_id}@x>",
        response="250 2.0.0 Ok",
        lease=lease or row.lease,
    )


def _end_backend(engine: Engine, rec: Recorder) -> None:
    """The server ends the recorder's connection (as a restart would)."""
    pid = rec.connection().execute(text("SELECT pg_backend_pid()")).scalar()
    with db.get_engine(engine.url.render_as_string(hide_password=False)).connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_records_sent_ahead_land_and_report_their_counts(session: Session) -> None:
    engine = _postgres(session)
    first, second = _claimed(session, 2)
    counts: list[int] = []
    with Recorder(engine, patience=5) as rec:
        assert rec.sends_ahead
        rec.ahead(*_statement(first), counts.append)
        assert counts == []  # its reply is read before the connection's next statement
        rec.ahead(*_statement(second, lease="another-claim"), counts.append)
        assert counts == [1]
    assert counts == [1, 0]  # the last one's reply read when the recorder closed
    row = reloaded(session, Delivery, first.delivery_id)
    assert (row.status, row.message_id, row.lease_token) == ("sent", f"<{row.id}@x>", None)
    assert reloaded(session, Delivery, second.delivery_id).status == DeliveryStatus.sending


def test_a_worker_killed_right_after_writing_the_record_still_has_it_recorded(
    session: Session,
) -> None:
    """The promise a sent-ahead record keeps: once written, the server commits it by itself."""
    engine = _postgres(session)
    (row,) = _claimed(session, 1)
    url = engine.url.render_as_string(hide_password=False)
    script = textwrap.dedent(f"""
        import os, signal
        import datetime
        from newsletter import db
        from newsletter.sending.recorder import Recorder
        rec = Recorder(db.get_engine({url!r}), patience=5)
        rec.ahead({_statement(row)[0]!r}, {_statement(row)[1]!r}, print)
        os.kill(os.getpid(), signal.SIGKILL)  # before reading the reply, before closing
    """)
    worker = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert worker.returncode == -9, worker.stderr.decode()
    deadline = time.monotonic() + 10
    while reloaded(session, Delivery, row.delivery_id).status != DeliveryStatus.sent:
        assert time.monotonic() < deadline, "the record written ahead was lost with the worker"
        time.sleep(0.05)


def test_a_connection_lost_before_the_reply_runs_the_record_again(session: Session) -> None:
    engine = _postgres(session)
    first, second = _claimed(session, 2)
    counts: list[int] = []
    with Recorder(engine, patience=5) as rec:
        rec.ahead(*_statement(first), counts.append)
        rec.catch_up()
        _end_backend(engine, rec)
        rec.ahead(*_statement(second), counts.append)  # on the dead connection
        rec.catch_up()
        assert rec.reconnects == 1
    assert counts == [1, 1]
    assert reloaded(session, Delivery, second.delivery_id).status == DeliveryStatus.sent


def test_a_connection_lost_before_the_first_record_is_prepared_runs_it_again(
    session: Session,
) -> None:
    engine = _postgres(session)
    (row,) = _claimed(session, 1)
    counts: list[int] = []
    with Recorder(engine, patience=5) as rec:
        _end_backend(engine, rec)
        rec.ahead(*_statement(row), counts.append)  # its PREPARE meets the dead connection
        rec.catch_up()
        assert rec.reconnects == 1
    assert counts == [1]
    assert reloaded(session, Delivery, row.delivery_id).status == DeliveryStatus.sent


def test_a_record_deallocated_under_it_runs_again(session: Session) -> None:
    engine = _postgres(session)
    first, second, third = _claimed(session, 3)
    counts: list[int] = []
    with Recorder(engine, patience=5) as rec:
        rec.ahead(*_statement(first), counts.append)
        rec.connection().exec_driver_sql("DEALLOCATE ALL")  # as psycopg does after a ROLLBACK
        rec.ahead(*_statement(second), counts.append)  # refused by the server: not run
        rec.ahead(*_statement(third), counts.append)  # prepared again
    assert counts == [1, 1, 1]
    for row in (first, second, third):
        assert reloaded(session, Delivery, row.delivery_id).status == DeliveryStatus.sent


def test_the_status_look_between_messages_answers_as_the_sqlalchemy_query(
    session: Session,
) -> None:
    """``still_claimable`` on the sender's connection (psycopg's statement) and the SQLAlchemy
    query it stands for agree for every status and kind of issue."""
    engine = _postgres(session)
    fx = make_issue(session)
    session.commit()
    issue_id = fx.issue.id
    assert issue_id is not None
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for kind in IssueKind:
            for status in IssueStatus:
                conn.execute(
                    text("UPDATE issue SET status = :s, kind = :k WHERE id = :id"),
                    {"s": status.value, "k": kind.value, "id": issue_id},
                )
                slow = conn.execute(ledger._STILL_CLAIMABLE, {"issue": issue_id}).scalar()
                assert ledger.still_claimable(conn, issue_id=issue_id) is bool(slow), (
                    kind,
                    status,
                )
        assert ledger.still_claimable(conn, issue_id=-1) is False


def test_a_hand_locks_the_rows_the_sqlalchemy_query_would(session: Session) -> None:
    """The hand's lock (psycopg's statement) reads the still-active rows among its ids, as the
    SQLAlchemy query does, and holds them: an unsubscribe waits for the hand's end."""
    engine = _postgres(session)
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 6)
    session.commit()
    ids = sorted(p.id for p in people if p.id is not None)
    newsletter_id = fx.newsletter.id
    assert newsletter_id is not None and len(ids) == 6
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "UPDATE subscription SET status = 'unsubscribed' "
                "WHERE newsletter_id = :nl AND subscriber_id IN (:a, :b)"
            ),
            {"nl": fx.newsletter.id, "a": ids[1], "b": ids[4]},
        )
    with Recorder(engine, patience=5) as rec, Hands(engine, rec, newsletter_id=newsletter_id,
                                                    connections=1) as hands:  # fmt: skip
        rows = [_row(i) for i in [*ids, 10**9]]
        hand = hands.take(rows, 0)
        with engine.connect() as conn:
            slow = conn.execute(
                hands_module._LOCK_ACTIVE, {"newsletter": fx.newsletter.id, "ids": ids}
            ).scalars()
            assert hand.active == frozenset(slow) == frozenset(ids) - {ids[1], ids[4]}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
            other.exec_driver_sql("SET lock_timeout = '200ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                other.execute(
                    text("UPDATE subscription SET status = 'unsubscribed' "
                         "WHERE newsletter_id = :nl AND subscriber_id = :s"),
                    {"nl": fx.newsletter.id, "s": ids[0]},
                )  # fmt: skip
        hands.settle(len(rows))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
            other.exec_driver_sql("SET lock_timeout = '2s'")
            changed = other.execute(
                text("UPDATE subscription SET status = 'unsubscribed' "
                     "WHERE newsletter_id = :nl AND subscriber_id = :s"),
                {"nl": fx.newsletter.id, "s": ids[0]},
            )  # fmt: skip
            assert changed.rowcount == 1


def _row(subscriber_id: int) -> ledger.Claimed:
    return ledger.Claimed(
        delivery_id=subscriber_id, subscriber_id=subscriber_id, email="", name="", attempts=0,
        active=True, lease="x",
    )  # fmt: skip


def test_a_hands_commit_skips_the_wal_flush_and_its_connection_goes_back_as_it_came(
    session: Session,
) -> None:
    engine = _postgres(session)
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 3)
    session.commit()
    ids = sorted(p.id for p in people if p.id is not None)
    assert fx.newsletter.id is not None
    with Recorder(engine, patience=5) as rec, Hands(engine, rec, newsletter_id=fx.newsletter.id,
                                                    connections=1) as hands:  # fmt: skip
        hand = hands.take([_row(i) for i in ids], 0)
        assert hand.active == frozenset(ids)
        raw = hand.conn.connection.dbapi_connection
        assert raw is not None
        assert hand.conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        hands.settle(len(ids))
    with raw.cursor() as cursor:  # the pool's connection, after the hands let it go
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
        raw.rollback()
