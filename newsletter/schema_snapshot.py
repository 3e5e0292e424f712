"""A new SQLite database gets the schema at head in one script, not by running every migration.

Running the 31 migrations one by one on a fresh SQLite file (``render_as_batch``: many of them
copy a table to alter it) is most of ``newsletter demo``'s set-up time. Like Rails'
``schema:load`` for a new database, ``load`` writes the schema the migrations produce from a
snapshot of it, ``migrations/sqlite_head.sql`` (tables, indexes, triggers and the rows the
migrations write, ``alembic_version`` among them), in one transaction, when:

- the database is a SQLite file with no table yet (anything else goes through Alembic);
- the snapshot was made at the newest migration the code ships (its first line names the
  revision, checked against the last file of ``migrations/versions``): a snapshot left behind
  by a new migration is not used.

The snapshot is what the migrations make, byte for byte: ``tests/unit/test_schema_snapshot.py``
migrates a new file with Alembic and compares; ``python -m newsletter.schema_snapshot`` writes it
again after a migration is added.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from newsletter import db
from newsletter.db import MIGRATIONS_DIR

SNAPSHOT = MIGRATIONS_DIR / "sqlite_head.sql"
HEADER = "-- schema at revision "
_REVISION = re.compile(r'^revision(?::\s*str)?\s*=\s*"([^"]+)"', re.MULTILINE)


def latest_revision(versions: Path = MIGRATIONS_DIR / "versions") -> str | None:
    """The revision of the newest migration file (files are numbered: 0001_..., 0002_...)."""
    files = sorted(versions.glob("[0-9]*.py"))
    if not files:
        return None
    found = _REVISION.search(files[-1].read_text(encoding="utf-8"))
    return found.group(1) if found else None


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def dump(path: str) -> str:
    """The database's schema and rows as SQL statements (no transaction), in a canonical order:
    the tables by name, each with its rows, then the indexes and triggers by name; within a
    table, its columns in order and then its constraints sorted (Alembic's batch mode, which
    copies a table to alter it, writes them in an order that differs from run to run)."""
    con = sqlite3.connect(path)
    try:
        found = [s for s in con.iterdump() if s not in ("BEGIN TRANSACTION;", "COMMIT;")]
    finally:
        con.close()
    tables = [_canonical_table(s) for s in found if not s.startswith(_AFTER_TABLES)]
    rest = sorted(s for s in found if s.startswith(_AFTER_TABLES))
    return "\n".join(tables + rest) + "\n"


_AFTER_TABLES = ("CREATE INDEX", "CREATE UNIQUE INDEX", "CREATE TRIGGER", "CREATE VIEW")
_CONSTRAINTS = ("CONSTRAINT ", "UNIQUE ", "UNIQUE(", "FOREIGN KEY", "PRIMARY KEY", "CHECK ")


def _canonical_table(statement: str) -> str:
    """A ``CREATE TABLE`` with its constraint clauses sorted (columns keep their order)."""
    lines = statement.split("\n")
    body = lines[1:-1]
    if not statement.startswith("CREATE TABLE") or not body:
        return statement
    if not all(line.startswith("\t") for line in body):
        return statement  # not SQLAlchemy's one clause a line: left as it is
    clauses = [line.strip().rstrip(",").rstrip() for line in body]
    columns = [c for c in clauses if not c.startswith(_CONSTRAINTS)]
    constraints = sorted(c for c in clauses if c.startswith(_CONSTRAINTS))
    inner = ", \n".join("\t" + c for c in columns + constraints)
    return f"{lines[0]}\n{inner}\n{lines[-1]}"


def statements(script: str) -> Iterator[str]:
    """The script's statements (a trigger's body holds semicolons: ``complete_statement``)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and line.startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def load(url: str, snapshot: Path = SNAPSHOT) -> bool:
    """Write the snapshot into ``url``'s database when it is a new SQLite file and the snapshot
    is at the newest migration; whether it did (False: the caller runs the migrations)."""
    path = sqlite_path(url)
    if path is None or not snapshot.is_file():
        return False
    script = snapshot.read_text(encoding="utf-8")
    head, _, _ = script.partition("\n")
    if not head.startswith(HEADER) or head[len(HEADER) :].strip() != latest_revision():
        return False
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        con.execute("BEGIN IMMEDIATE")  # two processes starting at once: one writes it
        if con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
            con.execute("ROLLBACK")
            return False
        try:
            for statement in statements(script):
                con.execute(statement)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()
    return True


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate ``url``'s database to ``revision``: a new SQLite file gets the head's schema from
    the snapshot in one script, anything else runs the migrations (``db.upgrade``)."""
    if revision == "head" and load(url):
        return
    db.upgrade(url, revision)


def make(target: Path = SNAPSHOT) -> Path:
    """Migrate a new SQLite file with Alembic and write its dump to ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "head.db"
        url = f"sqlite:///{path}"
        db.upgrade(url)
        db.get_engine(url).dispose()
        text = f"{HEADER}{latest_revision()}\n" + dump(str(path))
    target.write_text(text, encoding="utf-8")
    return target


if __name__ == "__main__":  # python -m newsletter.schema_snapshot: after adding a migration
    print(f"wrote {make()}")
