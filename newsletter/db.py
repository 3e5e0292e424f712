"""Engine and sessions; SQLite pragmas; the migrations entry point and the schema's revision."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, any_, bindparam, cast, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import NullType
from sqlmodel import Session, create_engine

if TYPE_CHECKING:  # Alembic is loaded when a migration runs or the revision is read, not before:
    from alembic.config import Config  # a new SQLite file's schema needs none of it

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


@dataclass(frozen=True)
class PoolConfig:
    """PostgreSQL's connection pool per process (SQLite has none), from the settings."""

    size: int = 5
    max_overflow: int = 10
    recycle: int = 1800
    timeout: float = 30.0


_engines: OrderedDict[str, Engine] = OrderedDict()
_engines_lock = threading.Lock()
_ENGINES_KEPT = 8  # a process uses one database; tests and benches make many


def get_engine(url: str, pool: PoolConfig | None = None) -> Engine:
    """The process's engine for ``url``, made on first use with ``pool`` (or the defaults).

    The edges (``create_app``, the worker's ``configure``, the CLI) ask first, with the pool of
    their settings; every later caller gets that engine, whatever it passes.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _make_engine(url, pool or PoolConfig())
            while len(_engines) > _ENGINES_KEPT:
                _engines.popitem(last=False)
        _engines.move_to_end(url)
        return engine


def _make_engine(url: str, pool: PoolConfig) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # every worker process and the API each hold up to size + max_overflow connections
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle,
        pool_timeout=pool.timeout,
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


#: the dialects whose INSERT has ``ON CONFLICT DO NOTHING``, and the insert() that writes it
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_ignore(
    executor: Session | Connection,
    table: Table,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Select[Any],
    *,
    columns: Sequence[str] | None = None,
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: a row that would break a unique key is dropped.

    ``rows`` is one row (a mapping), many rows with the same keys (one executemany; none: no
    statement) or a SELECT whose columns are ``columns``, in order (``INSERT ... SELECT``).
    """
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    make = _INSERTS.get(bind.dialect.name)
    if make is None:  # every supported database has it; another one would insert duplicates
        raise NotImplementedError(f"insert_ignore: no ON CONFLICT on {bind.dialect.name}")
    if isinstance(rows, Select):
        if columns is None:
            raise ValueError("insert_ignore: an INSERT ... SELECT needs its columns")
        executor.execute(make(table).from_select(list(columns), rows).on_conflict_do_nothing())
    elif isinstance(rows, Mapping):
        executor.execute(make(table).values(dict(rows)).on_conflict_do_nothing())
    elif rows:
        executor.execute(make(table).on_conflict_do_nothing(), [dict(r) for r in rows])


def any_of(column: Any, values: Sequence[Any], dialect: str) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(CAST($1 AS type[]))``: one parameter,
    an array literal written here (psycopg's list dumper costs more than the query for a few
    thousand values). ``values`` are integers or strings. The parameter goes untyped, so that
    PostgreSQL reads it as the array itself: a text parameter cast in the query would be parsed
    again for every row a sequential scan compares."""
    if dialect != "postgresql":
        return column.in_(list(values))
    items = ",".join(str(v) if isinstance(v, int) else _array_text(v) for v in values)
    literal = bindparam(None, "{" + items + "}", type_=NullType())
    return column == any_(cast(literal, postgresql.ARRAY(column.type)))


def _array_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (``schema_snapshot.upgrade`` first tries the
    snapshot on a new SQLite file)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migrations this code ships (read once per process)."""
    from alembic.script import ScriptDirectory

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
# Alembic, loaded on first use (after the process set its logging up), names each of its
# plugins at INFO as it loads them: routine, and noise in a worker's or a command's output
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def schema_revisions(url: str) -> frozenset[str]:
    """The revision(s) the database is at (empty for a database never migrated)."""
    from alembic.runtime.migration import MigrationContext

    _quiet.reading.on = True
    try:
        with get_engine(url).connect() as conn:
            return frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        _quiet.reading.on = False


def schema_at_head(url: str) -> bool:
    """Whether the database's schema is the one this code expects (no more, no less)."""
    return schema_revisions(url) == migration_heads()
