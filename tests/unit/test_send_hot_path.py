"""The send's per-message shortcuts do what the slow ways did.

- a reply recorded on the sender's autocommit connection (PostgreSQL: psycopg's prepared
  statement, ``driver_sql``) obeys the same lease and status guard, and a lost connection still
  surfaces as SQLAlchemy's ``OperationalError`` (the recorder reconnects on it);
- ``smtp.bracketed`` writes MAIL/RCPT addresses exactly as ``smtplib.quoteaddr``;
- personal-link tokens skip zlib on short payloads and stay readable by stock itsdangerous;
- the Date header, formatted once a second, is ``format_datetime`` of that second;
- ``counters.tidy`` vacuums the counter rows (PostgreSQL), once each time it is called.
"""

from __future__ import annotations

import smtplib
import string
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from newsletter import db
from newsletter.audience.links import Purpose, make_token, read_token
from newsletter.content.qa import QAConfig
from newsletter.mail import message
from newsletter.models import Delivery, DeliveryStatus
from newsletter.sending import batch, counters, driver_sql, ledger
from newsletter.sending.start import fill_ledger
from newsletter.transports.smtp import bracketed
from tests.conftest import make_issue, make_subscribers, reloaded


def _claimed(session: Session, n: int) -> list[ledger.Claimed]:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, n)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    claimed = ledger.claim(session, issue_id=fx.issue.id, limit=n, lease_seconds=300)  # type: ignore[arg-type]
    session.commit()
    return claimed


def test_a_reply_recorded_on_the_autocommit_connection_keeps_the_lease_guard(
    session: Session,
) -> None:
    first, second, third = _claimed(session, 3)
    engine = session.get_bind()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # type: ignore[union-attr]
        # the shortcut is PostgreSQL's alone
        assert driver_sql.usable(conn) is (engine.dialect.name == "postgresql")
        record = ledger.record_sent
        assert record(conn, delivery_id=first.delivery_id, message_id="<a@x>", response="250 ok",
                      lease=first.lease)  # fmt: skip
        # the same row again (it is sent now), and a row whose lease another claim holds
        assert not record(conn, delivery_id=first.delivery_id, message_id="<b@x>",
                          response="250 again", lease=first.lease)  # fmt: skip
        assert not record(conn, delivery_id=second.delivery_id, message_id="<c@x>",
                          response="250 ok", lease="not-this-claim")  # fmt: skip
        # a row cancelled while in flight still takes its true outcome
        conn.execute(text("UPDATE delivery SET status = 'cancelled' WHERE id = :id"),
                     {"id": third.delivery_id})  # fmt: skip
        assert record(conn, delivery_id=third.delivery_id, message_id="<d@x>", response="250 ok",
                      lease=third.lease)  # fmt: skip
    row = reloaded(session, Delivery, first.delivery_id)
    assert (row.status, row.message_id, row.smtp_response) == ("sent", "<a@x>", "250 ok")
    assert row.sent_at is not None and row.lease_token is None and row.lease_until is None
    assert reloaded(session, Delivery, second.delivery_id).status == DeliveryStatus.sending
    assert reloaded(session, Delivery, third.delivery_id).status == DeliveryStatus.sent


def test_a_lost_connection_on_the_shortcut_is_sqlalchemys_operational_error(
    session: Session,
) -> None:
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        pytest.skip("the shortcut is PostgreSQL's")
    (row,) = _claimed(session, 1)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # type: ignore[union-attr]
    try:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with db.get_engine(str(engine.url.render_as_string(hide_password=False))).connect() as c:  # type: ignore[union-attr]
            c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError):
            ledger.record_sent(
                conn, delivery_id=row.delivery_id, message_id="<m@x>", response="250",
                lease=row.lease,
            )  # fmt: skip
    finally:
        conn.invalidate()
        conn.close()
    assert reloaded(session, Delivery, row.delivery_id).status == DeliveryStatus.sending


def test_statement_writes_only_status_words() -> None:
    sql = driver_sql.statement("status IN ({among})", among=[DeliveryStatus.sending, "cancelled"])
    assert sql == "status IN ('sending', 'cancelled')"
    with pytest.raises(ValueError, match="not status words"):
        driver_sql.statement("status IN ({among})", among=["sent'); DROP TABLE delivery; --"])
    with pytest.raises(ValueError, match="not status words"):
        driver_sql.statement("status IN ({among})", among=[])


_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_atom = st.text(alphabet=_ATEXT, min_size=1, max_size=12)
_label = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=10)


@given(
    local=st.lists(_atom, min_size=1, max_size=3).map(".".join),
    domain=st.lists(_label, min_size=1, max_size=3).map(".".join),
)
def test_a_dot_atom_address_is_bracketed_as_smtplib_does(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert bracketed(address) == smtplib.quoteaddr(address) == f"<{address}>"


@pytest.mark.parametrize(
    "address",
    [
        '"john doe"@example.org',
        "Jane <jane@example.org>",
        "user@[192.0.2.1]",
        "a..b@example.org",
        ".lead@example.org",
        "no-at-sign",
        "",
        "üser@example.org",
    ],
)
def test_any_other_address_goes_through_smtplib(address: str) -> None:
    assert bracketed(address) == smtplib.quoteaddr(address)


def test_a_short_token_skips_zlib_and_stock_itsdangerous_reads_it() -> None:
    token = make_token("secret", Purpose.unsubscribe, 48213, 3, 17)
    assert not token.startswith(".")  # not compressed
    stock = URLSafeTimedSerializer("secret", salt="newsletter.unsubscribe")
    assert stock.loads(token) == [48213, 3, 17]
    data = read_token("secret", Purpose.unsubscribe, token)
    assert (data.subscriber_id, data.newsletter_id, data.issue_id) == (48213, 3, 17)


def test_a_long_payload_is_still_offered_to_zlib() -> None:
    from newsletter.audience.links import _serializer

    payload = ["the same words again"] * 8  # long and repetitive: zlib wins
    token = _serializer("secret", Purpose.confirm).dumps(payload)
    assert token.startswith(".")  # compressed, as the library does it
    assert URLSafeTimedSerializer("secret", salt="newsletter.confirm").loads(token) == payload


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_the_date_header_is_format_datetime_of_its_second(second: int) -> None:
    assert message._date(second) == format_datetime(datetime.fromtimestamp(second, UTC))


def _vacuums(conn: Connection) -> int:
    return int(
        conn.execute(
            text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'issue_counter'")
        ).scalar_one()
    )


def test_tidy_vacuums_the_counter_rows_on_postgresql_only(session: Session) -> None:
    _claimed(session, 2)
    engine = session.get_bind()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # type: ignore[union-attr]
        if engine.dialect.name != "postgresql":
            counters.tidy(conn)  # nothing to do, nothing done
            return
        before = _vacuums(conn)
        counters.tidy(conn)
        counters.tidy(conn)
        assert _vacuums(conn) == before + 2


def test_batches_tidy_the_counters_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    class Rec:
        def call(self, fn: object) -> None:
            calls.append(fn)

    clock = iter([100.0, 100.4, 100.99, 101.2, 101.5, 102.3])
    monkeypatch.setattr(batch.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(batch, "_tidied_at", -batch.TIDY_EVERY_SECONDS)
    for _ in range(6):
        batch._tidy_counters(Rec(), issue_id=1)  # type: ignore[arg-type]
    assert calls == [counters.tidy] * 3  # at 100.0, 101.2 and 102.3
