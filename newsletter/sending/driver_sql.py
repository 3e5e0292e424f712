"""The send's per-message statements on PostgreSQL, run by psycopg itself as prepared statements.

Recording a reply through SQLAlchemy's ``Connection.execute`` cost 0.27-0.28 ms of the worker's
CPU a message (the compiled cache's key, parameter processing, the result's wrapping), against
0.09 ms for the same UPDATE on psycopg's own connection, prepared once per connection
(3,000 UPDATEs each way in one process; the README's delivery section). The worker spent about
1.3 ms a message in all, so this was the largest single share it could give back.

``rowcount`` runs a ``statement`` (psycopg's ``%s`` placeholders) on the driver connection under
an autocommit SQLAlchemy ``Connection`` and returns the rows it changed. Errors come back as
SQLAlchemy's own exceptions (``OperationalError`` for a lost connection ...), so that the
recorder's reconnect logic and every caller see what they saw before. Anywhere else (SQLite, a
connection inside a transaction, another driver) the caller's SQLAlchemy statement runs instead:
``usable`` tells which.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, TypeGuard, cast

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

#: the connection's cursor for these statements, kept in its ``info`` (one per connection)
_CURSOR = "newsletter.driver_sql.cursor"


def usable(conn: object) -> TypeGuard[Connection]:
    """An autocommit SQLAlchemy ``Connection`` on psycopg: each statement commits by itself."""
    if not isinstance(conn, Connection) or conn.dialect.driver != "psycopg":
        return False
    raw = conn.connection.dbapi_connection
    return bool(getattr(raw, "autocommit", False))


def statement(template: str, **statuses: Iterable[StrEnum | str]) -> str:
    """``template`` with each ``{name}`` replaced by its statuses as SQL string literals (our
    own enum values, checked to be plain words): ``status IN ({among})``."""
    words: dict[str, str] = {}
    for name, values in statuses.items():
        listed = [str(value) for value in values]
        if not listed or not all(value.isidentifier() for value in listed):
            raise ValueError(f"{name}: not status words: {listed!r}")
        words[name] = ", ".join(f"'{value}'" for value in listed)
    return template.format(**words)


def rowcount(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """``sql`` on ``conn``'s psycopg connection, prepared; the rows it changed."""
    import psycopg  # the driver of a PostgreSQL URL; never imported for SQLite

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    cursor: psycopg.Cursor[Any] | None = conn.info.get(_CURSOR)
    try:
        if cursor is None or cursor.connection is not raw or cursor.closed:
            cursor = conn.info[_CURSOR] = raw.cursor()
        cursor.execute(sql, params, prepare=True)
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg.Error, dialect=conn.dialect) from exc
    return int(cursor.rowcount)
