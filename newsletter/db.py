"""Engine and sessions; SQLite pragmas; the migrations entry point and the schema's revision."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: what the web app, the worker and the CLI say when the database is behind the code
SCHEMA_BEHIND = "schema not at head: run `newsletter db upgrade`"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the worker write while the CLI reads progress; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # PostgreSQL: the pool comes from Settings (read once per URL, when its engine is made);
    # every worker process and the API each hold up to pool_size + max_overflow connections
    from newsletter.config import get_settings

    settings = get_settings()
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle,
        pool_timeout=settings.db_pool_timeout,
    )


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migrations this code ships (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


class _QuietReading(logging.Filter):
    """Drops alembic's "Context impl ..." lines while this thread only reads the revision (a
    readiness probe every few seconds would otherwise log them every few seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.reading, "on", False)


_quiet = _QuietReading()
logging.getLogger("alembic.runtime.migration").addFilter(_quiet)


def schema_revisions(url: str) -> frozenset[str]:
    """The revision(s) the database is at (empty for a database never migrated)."""
    _quiet.reading.on = True
    try:
        with get_engine(url).connect() as conn:
            return frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        _quiet.reading.on = False


def schema_at_head(url: str) -> bool:
    """Whether the database's schema is the one this code expects (no more, no less)."""
    return schema_revisions(url) == migration_heads()
