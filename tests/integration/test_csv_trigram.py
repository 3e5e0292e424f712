"""A large import drops the subscriber trigram index while it runs and builds it again at its end
(``trigram_pause.TrigramPause``); the other sessions are never locked out for long; an import
stopped midway leaves the index missing only until the beat's import reaper builds it again.
PostgreSQL (the index is PostgreSQL's)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlmodel import Session

from newsletter.audience import csv_import, import_reaper, trigram_pause
from newsletter.models import Newsletter
from tests.conftest import make_newsletter

HEADER = "email,name,newsletters,status\n"


@pytest.fixture
def pg(session: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's")
    monkeypatch.setattr(trigram_pause, "PAUSE_MIN_ROWS", 50)  # "large" at test scale
    return session


@pytest.fixture
def other(pg: Session) -> Iterator[Session]:
    """Another session, as a reader of the subscriber table would have."""
    with Session(pg.get_bind()) as s:
        yield s


def a_file(newsletter: Newsletter, rows: int, prefix: str = "reader") -> io.BytesIO:
    body = "".join(f"{prefix}{i}@example.org,R {i},{newsletter.slug},active\n" for i in range(rows))
    return io.BytesIO((HEADER + body).encode())


def index_seen(session: Session) -> bool:
    """Whether ``session`` (a transaction of its own) sees a valid trigram index."""
    found = session.execute(
        text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
        {"name": trigram_pause.TRIGRAM_INDEX},
    ).scalar()
    session.rollback()
    return bool(found)


@pytest.mark.parametrize("commit_each_chunk", [False, True], ids=["one-transaction", "job"])
def test_a_large_import_drops_the_index_meanwhile_and_builds_it_at_its_end(
    pg: Session, other: Session, commit_each_chunk: bool
) -> None:
    weekly = make_newsletter(pg)
    pg.commit()
    seen: list[bool] = []
    restored: list[bool] = []

    def progress(_: int) -> None:
        if commit_each_chunk:  # as an import job does
            pg.commit()
        seen.append(index_seen(other))
        restored.append(trigram_pause.restore_trigram_index(other))  # the reaper keeps off it
        other.rollback()

    report = csv_import.import_csv(pg, a_file(weekly, 300), on_progress=progress, chunk_rows=100)
    pg.commit()

    assert report.imported == 300
    assert seen == [False, False, False]
    assert restored == [False, False, False]
    assert index_seen(other)
    other.execute(text("SET enable_seqscan = off"))
    plan = other.execute(text("EXPLAIN SELECT id FROM subscriber WHERE email ILIKE '%der12%'"))
    assert trigram_pause.TRIGRAM_INDEX in " ".join(r[0] for r in plan)
    other.rollback()


def test_an_import_smaller_than_the_table_keeps_the_index(pg: Session, other: Session) -> None:
    weekly = make_newsletter(pg)
    csv_import.import_csv(pg, a_file(weekly, 200, "early"))
    pg.execute(text("ANALYZE subscriber"))
    pg.commit()
    seen: list[bool] = []

    report = csv_import.import_csv(
        pg, a_file(weekly, 100), on_progress=lambda _: seen.append(index_seen(other))
    )
    pg.commit()

    assert report.imported == 100
    assert seen and all(seen)


def test_a_reader_in_the_way_means_no_pause_not_a_wait(pg: Session, other: Session) -> None:
    weekly = make_newsletter(pg)
    pg.commit()
    other.execute(text("LOCK TABLE subscriber IN ACCESS SHARE MODE"))  # a long read, say
    try:
        report = csv_import.import_csv(pg, a_file(weekly, 300), chunk_rows=100)
        pg.commit()
    finally:
        other.rollback()

    assert report.imported == 300
    assert index_seen(other)


class Stopped(Exception):
    pass


def test_an_import_stopped_midway_leaves_the_index_to_the_reaper(
    pg: Session, other: Session
) -> None:
    weekly = make_newsletter(pg)
    pg.commit()

    def progress(_: int) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        csv_import.import_csv(pg, a_file(weekly, 300), on_progress=progress, chunk_rows=100)
    pg.rollback()
    assert not index_seen(other)

    import_reaper.reap_stalled(other, stale_seconds=300)

    assert index_seen(other)
    assert not trigram_pause.restore_trigram_index(other)  # there: nothing to do
