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

``send`` and ``collect`` split one such statement in two for the sender's record of a reply: the
statement (with its own commit: autocommit) is written to the server, the batch builds its next
message, and the reply is read before that message leaves (``Recorder.ahead``). The server runs
and commits it whether or not the worker is still there to read the answer. What it saves is the
round trip's wait and psycopg's per-statement Python (libpq's calls directly, a statement
prepared once per connection).
"""

from __future__ import annotations

import hashlib
import re
import select
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq

#: the connection's cursor for these statements, kept in its ``info`` (one per connection)
_CURSOR = "newsletter.driver_sql.cursor"
#: ``send``'s statements prepared on the connection: {sql: name}, kept in its ``info``
_PREPARED = "newsletter.driver_sql.prepared"
_PLACEHOLDER = re.compile(r"%s")


def usable(conn: object) -> TypeGuard[Connection]:
    """An autocommit SQLAlchemy ``Connection`` on psycopg: each statement commits by itself."""
    if not isinstance(conn, Connection) or conn.dialect.driver != "psycopg":
        return False
    raw = conn.connection.dbapi_connection
    return bool(getattr(raw, "autocommit", False))


def usable_in_transaction(conn: Connection) -> bool:
    """A SQLAlchemy ``Connection`` on psycopg (``column``'s: in the connection's transaction)."""
    return conn.dialect.driver == "psycopg"


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
    return int(_executed(conn, sql, params).rowcount)


def value(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """``sql``'s first value (None without a row) on ``conn``'s psycopg connection, prepared
    (``usable``: autocommit)."""
    row = _executed(conn, sql, params).fetchone()
    return None if row is None else row[0]


def column(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """``sql``'s first column on ``conn``'s psycopg connection, prepared, in ``conn``'s
    transaction (begun here if none is: its ``commit`` ends it)."""
    if not conn.in_transaction():
        conn.begin()
    return [row[0] for row in _executed(conn, sql, params).fetchall()]


def _executed(conn: Connection, sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
    """The connection's cursor (kept in its ``info``) after running ``sql``, prepared; psycopg's
    errors as SQLAlchemy's."""
    import psycopg  # the driver of a PostgreSQL URL; never imported for SQLite

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    cursor: psycopg.Cursor[Any] | None = conn.info.get(_CURSOR)
    try:
        if cursor is None or cursor.connection is not raw or cursor.closed:
            cursor = conn.info[_CURSOR] = raw.cursor()
        cursor.execute(sql, params, prepare=True)
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg.Error, dialect=conn.dialect) from exc
    return cursor


def send(conn: Connection, sql: str, params: Sequence[Any]) -> None:
    """Write ``sql`` (psycopg's ``%s`` placeholders; its values str, int, datetime or None) to
    the server without waiting for its reply; ``collect`` must read it before the connection
    runs anything else."""
    import psycopg

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    pgconn = raw.pgconn
    try:
        name = _prepared(conn, pgconn, sql)
        pgconn.send_query_prepared(name, [_text(value) for value in params])
        while pgconn.flush():  # the few hundred bytes of a statement: at once, in practice
            select.select([], [pgconn.socket], [])
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg.Error, dialect=conn.dialect) from exc


def collect(conn: Connection) -> int:
    """The reply of the statement ``send`` wrote on ``conn``: the rows it changed."""
    import psycopg
    from psycopg import errors, pq

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    pgconn = raw.pgconn
    try:
        pgconn.consume_input()
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        while pgconn.get_result() is not None:  # the end of this statement's replies
            pass
        if result is None:
            raise psycopg.OperationalError("no reply to the statement sent")
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise _error(pgconn, result)
    except errors.InvalidSqlStatementName as exc:  # psycopg's DEALLOCATE ALL (after a ROLLBACK)
        forget_prepared(conn)
        raise NotPrepared(str(exc)) from exc
    except psycopg.Error as exc:
        raise DBAPIError.instance("(reply)", (), exc, psycopg.Error, dialect=conn.dialect) from exc
    return int(result.command_tuples or 0)


class NotPrepared(Exception):
    """The statement ``send`` wrote was not run: the connection had lost its prepared form."""


def forget_prepared(conn: Connection) -> None:
    """``send`` prepares its statements again on ``conn``: psycopg deallocates every prepared
    statement of a connection after a ``ROLLBACK`` (the pool's reset when it is put back)."""
    conn.info.pop(_PREPARED, None)


def _prepared(conn: Connection, pgconn: pq.abc.PGconn, sql: str) -> bytes:
    """``sql``'s name on this connection, prepared now the first time."""
    from psycopg import errors, pq

    known: tuple[object, dict[str, bytes]] | None = conn.info.get(_PREPARED)
    if known is None or known[0] is not pgconn:  # a new connection under the same record
        known = conn.info[_PREPARED] = (pgconn, {})
    names = known[1]
    name = names.get(sql)
    if name is None:  # named after its text: prepared already (kept by the pool's reset) is fine
        name = f"newsletter_{hashlib.sha256(sql.encode()).hexdigest()[:20]}".encode()
        numbered = iter(range(1, sql.count("%s") + 1))
        native = _PLACEHOLDER.sub(lambda _m: f"${next(numbered)}", sql)
        result = pgconn.prepare(name, native.encode())
        if result.status != pq.ExecStatus.COMMAND_OK:
            error = _error(pgconn, result)
            if not isinstance(error, errors.DuplicatePreparedStatement):
                raise error
        names[sql] = name
    return name


def _error(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> psycopg.Error:
    """The statement's error; a connection gone bad under it is psycopg's ``OperationalError``
    (as psycopg's own calls raise it: the recorder reconnects on it)."""
    import psycopg
    from psycopg import errors, pq

    if pgconn.status != pq.ConnStatus.OK:
        message = (result.error_message or pgconn.error_message).decode("utf-8", "replace")
        return psycopg.OperationalError(message.strip() or "the connection was lost")
    return errors.error_from_result(result, encoding="utf-8")


def _text(value: object) -> bytes | None:
    """A parameter in PostgreSQL's text format."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()
