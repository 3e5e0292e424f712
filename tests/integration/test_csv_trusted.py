"""The import's trusted COPYs (``csv_bulk``): foreign-key checks skipped, never their guarantee.

A new address's subscriptions and events are copied without PostgreSQL's per-row foreign-key
checks when the role may: their subscriber was inserted by the same transaction and their
newsletters are held with ``FOR KEY SHARE``. A role that may not gets every row checked and the
same rows; a newsletter cannot be deleted under a running import. And an address another writer
signed up between the import's look-up and its COPY is skipped, not fatal (both databases).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from newsletter.audience import csv_import
from newsletter.audience.csv_bulk import Bulk
from newsletter.audience.csv_fresh import SUBSCRIPTION_COLUMNS
from newsletter.audience.csv_profile import People
from newsletter.models import Newsletter, Subscriber, Subscription
from newsletter.tables import S
from tests.conftest import make_newsletter
from tests.integration.test_csv_fresh import snapshot

HEADER = "email,name,newsletters,status,consent_at,consent_ip,consent_source,consent_text_version"


@pytest.fixture
def pg(session: Session) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("foreign-key checks skipped by session_replication_role are PostgreSQL's")
    return session


def a_file(*newsletters: Newsletter, rows: int = 6) -> bytes:
    slugs = ";".join(n.slug for n in newsletters)
    lines = [HEADER] + [
        f"reader{i}@example.org,Reader {i},{slugs},active,,192.0.2.{i},web,v1" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def subscription_line(subscriber_id: int, newsletter_id: int) -> str:
    stamp = "2025-10-19T08:00:00+00:00"
    consent = f"{stamp}\t\\N\timport\t\\N"
    return f"{subscriber_id}\t{newsletter_id}\tactive\t{consent}\t{stamp}\t{stamp}\t\\N\t0"


@pytest.fixture
def plain_role(pg: Session) -> Iterator[str]:
    """A role that is no superuser, with the rights the application's tables need."""
    name = f"nl_plain_{uuid.uuid4().hex[:8]}"
    pg.execute(text(f"CREATE ROLE {name} NOSUPERUSER"))
    pg.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}"))
    pg.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}"))
    pg.commit()
    yield name
    pg.rollback()
    pg.execute(text(f"DROP OWNED BY {name}"))
    pg.execute(text(f"DROP ROLE {name}"))
    pg.commit()


def test_trusted_rows_skip_the_foreign_key_checks_that_other_rows_get(pg: Session) -> None:
    weekly = make_newsletter(pg)
    assert weekly.id is not None
    bulk = Bulk(pg)
    nobody = 2_000_000_000  # no such subscriber: only a trusted COPY takes the row
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        bulk.copy_lines(S, SUBSCRIPTION_COLUMNS, [subscription_line(nobody, weekly.id)])
    assert bulk.copy_lines(
        S, SUBSCRIPTION_COLUMNS, [subscription_line(nobody, weekly.id)], trusted=True
    )
    role = pg.execute(text("SELECT current_setting('session_replication_role')")).scalar_one()
    assert role == "origin"  # set back at once: later statements are checked again
    pg.rollback()


def test_a_role_that_may_not_skip_the_checks_imports_the_same_rows(
    pg: Session, plain_role: str
) -> None:
    weekly, daily = make_newsletter(pg), make_newsletter(pg)
    pg.commit()
    data = a_file(weekly, daily)

    def run() -> dict[str, list[tuple[object, ...]]]:
        report = csv_import.import_csv(pg, io.BytesIO(data))
        assert (report.imported, report.errors_total) == (6, 0)
        pg.flush()
        taken = snapshot(pg)
        pg.rollback()
        return taken

    superuser = run()
    pg.execute(text(f"SET ROLE {plain_role}"))
    assert pg.execute(text("SELECT current_setting('is_superuser')")).scalar_one() == "off"
    plain = run()  # the rollback ends the SET ROLE too
    assert plain == superuser
    assert len(plain["subscriptions"]) == 12 and len(plain["events"]) == 12


def delete_refused(session: Session, newsletter_id: int) -> bool:
    """Whether another connection's DELETE of the newsletter waits on a lock (300 ms, then
    gives up); False if it went through."""
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    other = create_engine(url)
    try:
        with other.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '300ms'")
            try:
                conn.exec_driver_sql("DELETE FROM newsletter WHERE id = %s", (newsletter_id,))
            except OperationalError as exc:
                assert isinstance(exc.orig, psycopg.errors.LockNotAvailable), exc
                return True
            conn.commit()
            return False
    finally:
        other.dispose()


def test_a_newsletter_cannot_be_deleted_under_a_running_import(pg: Session) -> None:
    weekly = make_newsletter(pg)
    assert weekly.id is not None
    pg.commit()
    csv_import.import_csv(pg, io.BytesIO(a_file(weekly)))  # not committed: still running
    try:
        assert delete_refused(pg, weekly.id)
    finally:
        pg.rollback()


def test_each_chunk_holds_its_newsletters_again_after_a_progress_commit(pg: Session) -> None:
    """An import job commits after each chunk (its progress), which ends the lock: the next
    chunk takes it again before its rows go in unchecked."""
    weekly = make_newsletter(pg)
    assert weekly.id is not None
    pg.commit()
    refused: list[bool] = []

    def progress(_bytes: int) -> None:
        refused.append(delete_refused(pg, weekly.id or 0))
        pg.commit()

    csv_import.import_csv(pg, io.BytesIO(a_file(weekly)), chunk_rows=2, on_progress=progress)
    pg.commit()
    assert refused == [True, True, True]


def test_the_tables_copied_trusted_have_no_triggers_or_rules(pg: Session) -> None:
    """The replica role skips user triggers and rules as well as the foreign-key checks: a
    trigger or rule added to these tables must be looked at before imports skip it."""
    found = pg.execute(
        text(
            "SELECT c.relname || ': trigger ' || t.tgname FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname IN ('subscription', 'subscriberevent') AND NOT t.tgisinternal "
            "UNION ALL SELECT tablename || ': rule ' || rulename FROM pg_rules "
            "WHERE tablename IN ('subscription', 'subscriberevent')"
        )
    ).scalars()
    assert list(found) == []


def test_an_address_signed_up_after_the_look_up_is_skipped_not_fatal(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-up commits after the import looked the chunk's addresses up and before its COPY
    (the look-up is made to miss it): the COPY's unique violation rolls back to its savepoint
    and the rows go in as INSERT ... ON CONFLICT DO NOTHING."""
    weekly = make_newsletter(session)
    session.add(Subscriber(email="reader1@example.org", name="Signed up meanwhile"))
    session.commit()
    monkeypatch.setattr(People, "_select", lambda self, keys: {})  # it finds nobody

    report = csv_import.import_csv(session, io.BytesIO(a_file(weekly, rows=3)))
    session.commit()

    assert (report.imported, report.errors_total) == (3, 0)
    people = {s.email: s for s in session.exec(select(Subscriber)).all()}
    assert sorted(people) == [f"reader{i}@example.org" for i in range(3)]
    assert people["reader1@example.org"].name == "Signed up meanwhile"
    subscribed = session.exec(select(Subscription.subscriber_id)).all()
    assert sorted(subscribed) == sorted(p.id or 0 for p in people.values())
