"""A new SQLite database gets the migrations' schema from ``migrations/sqlite_head.sql`` in one
script; the snapshot is exactly what the migrations make, and it is used only when it is current
and the database is new."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command

from newsletter import db, schema_snapshot


def _migrated(folder: Path, revision: str = "head") -> Path:
    path = folder / f"alembic-{revision}.db"
    url = f"sqlite:///{path}"
    db.upgrade(url, revision)  # Alembic, every migration
    db.get_engine(url).dispose()
    return path


@pytest.fixture(scope="module")
def by_alembic(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The dump of a new SQLite file migrated to head by running every migration."""
    return schema_snapshot.dump(str(_migrated(tmp_path_factory.mktemp("alembic"))))


def test_the_snapshot_is_what_the_migrations_make(by_alembic: str) -> None:
    text = schema_snapshot.SNAPSHOT.read_text(encoding="utf-8")
    header, _, body = text.partition("\n")

    assert header == f"{schema_snapshot.HEADER}{schema_snapshot.latest_revision()}", (
        "the snapshot is behind the migrations: run `python -m newsletter.schema_snapshot`"
    )
    assert body == by_alembic, (
        "migrations/sqlite_head.sql differs from what the migrations make: "
        "run `python -m newsletter.schema_snapshot`"
    )


def test_a_new_sqlite_file_gets_the_snapshot_and_no_migration_runs(
    tmp_path: Path, by_alembic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_migrations(*args: object, **kwargs: object) -> None:
        raise AssertionError("a migration ran")

    monkeypatch.setattr(command, "upgrade", no_migrations)
    url = f"sqlite:///{tmp_path / 'new.db'}"

    schema_snapshot.upgrade(url)

    assert schema_snapshot.dump(str(tmp_path / "new.db")) == by_alembic
    assert db.schema_at_head(url)
    db.get_engine(url).dispose()


def test_a_database_with_tables_is_migrated_from_where_it_is(
    tmp_path: Path, by_alembic: str
) -> None:
    older = _migrated(tmp_path, "0030")  # one migration behind
    assert not schema_snapshot.load(f"sqlite:///{older}")

    url = f"sqlite:///{older}"
    schema_snapshot.upgrade(url)  # Alembic, from 0030

    assert schema_snapshot.dump(str(older)) == by_alembic
    db.get_engine(url).dispose()


def test_a_snapshot_behind_the_newest_migration_is_not_used(tmp_path: Path) -> None:
    stale = tmp_path / "stale.sql"
    text = schema_snapshot.SNAPSHOT.read_text(encoding="utf-8")
    stale.write_text(text.replace(schema_snapshot.HEADER, schema_snapshot.HEADER + "0001-", 1))
    url = f"sqlite:///{tmp_path / 'new.db'}"

    assert not schema_snapshot.load(url, stale)
    assert not schema_snapshot.load("postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert not schema_snapshot.load("sqlite://")  # in memory: every connection its own
    assert schema_snapshot.load(url)
    assert not schema_snapshot.load(url)  # it has tables now


def test_two_processes_starting_at_once_write_it_once(tmp_path: Path, by_alembic: str) -> None:
    url = f"sqlite:///{tmp_path / 'raced.db'}"
    results: list[bool] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(schema_snapshot.load(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert schema_snapshot.dump(str(tmp_path / "raced.db")) == by_alembic
