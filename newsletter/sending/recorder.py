"""The sender's database connection, which rides out a database restart.

A batch records each reply on one autocommit connection (``Recorder.call``). When the database
goes away under it (a restart, a failover, an administrator terminating the backend), the
statement fails with an ``OperationalError``: the recorder drops the connection, waits a little
and runs the statement again on a new one, for up to ``patience`` seconds. Every statement a
batch runs through it is guarded by the row's lease or status, so running one twice (the first
did commit, its answer was lost) changes nothing. When the database stays away longer, it
raises ``DatabaseUnavailable``: the batch's task is retried, and the rows it held come back
when their lease runs out (a message already handed over then goes out again, same Message-ID).

On PostgreSQL with psycopg the record of a delivered message is sent ahead (``ahead``): the
statement is written to the server, which runs and commits it by itself, and the batch builds its
next message meanwhile; the reply is read (``catch_up``) before that message leaves (and before
the connection's next statement), by then arrived. A lost connection at that point runs the
statement again on a new one, as ``call`` does, so no more messages are unrecorded at a crash or
an outage than when the batch waited for each reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.exceptions import DatabaseUnavailable
from newsletter.sending import driver_sql

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)

#: the first wait before a new connection; doubled after each failed try, up to ``LONGEST``
FIRST_WAIT = 0.05
LONGEST_WAIT = 1.0


def connection_lost(exc: BaseException) -> bool:
    """The database went away (or is not taking connections yet), as opposed to a statement
    it refused: worth a new connection and another try."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


@dataclass(frozen=True)
class _Ahead:
    """A statement written to the server whose reply is not read yet."""

    sql: str
    params: Sequence[Any]
    then: Callable[[int], None]


class Recorder:
    """One autocommit connection at a time (PostgreSQL: without waiting for the WAL flush)."""

    def __init__(self, engine: Engine, *, patience: float) -> None:
        self.engine = engine
        self.patience = patience
        self.reconnects = 0  # new connections after a lost one (for the log and the tests)
        self._conn: Connection | None = None
        self._ahead: _Ahead | None = None
        #: ``ahead`` can write a statement and read its reply later (PostgreSQL on psycopg)
        dialect = engine.dialect
        self.sends_ahead = dialect.name == "postgresql" and dialect.driver == "psycopg"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the statement sent ahead still lands; the batch's own error is the one raised
            self.close()
        except (DBAPIError, DatabaseUnavailable) as exc:
            log.warning("the last result not confirmed: %s", exc)

    def _open(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self.engine.dialect.name == "postgresql":
            # a worker crash cannot lose a committed row; a database crash could lose the last
            # few hundred milliseconds of results, which then go out again (same Message-ID)
            conn.execute(text("SET synchronous_commit TO off"))
            driver_sql.forget_prepared(conn)  # gone with the pool's reset of the connection
        self._conn = conn
        return conn

    def connection(self) -> Connection:
        """The connection the next ``call`` runs on (opened now if there is none)."""
        self.catch_up()
        return self._current()

    def _current(self) -> Connection:
        return self._open() if self._conn is None else self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.invalidate()
            with suppress(Exception):
                conn.close()

    def close(self) -> None:
        self.catch_up()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self.engine.dialect.name == "postgresql":
                conn.execute(text("RESET synchronous_commit"))
            conn.close()
        except DBAPIError:  # gone already: nothing of it goes back to the pool
            self._conn = conn
            self._drop()

    def call(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """``fn(connection, ...)``, again on a new connection while the database is away (up to
        ``patience`` seconds); ``fn`` must be safe to run twice. ``DatabaseUnavailable`` after."""
        self.catch_up()
        deadline = time.monotonic() + self.patience
        wait = FIRST_WAIT
        while True:
            try:
                return fn(self._current(), *args, **kw)
            except DBAPIError as exc:
                if not connection_lost(exc):
                    raise
                self._drop()
                if time.monotonic() + wait > deadline:
                    raise DatabaseUnavailable(f"the database is unreachable: {exc.orig}") from exc
                self._reconnecting(exc)
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)

    def once(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """``fn(connection, ...)`` once (a statement not safe to run twice); a lost connection
        is dropped (the next ``call`` makes a new one) and the error raised."""
        self.catch_up()
        try:
            return fn(self._current(), *args, **kw)
        except DBAPIError as exc:
            if connection_lost(exc):
                self._drop()
            raise

    def ahead(self, sql: str, params: Sequence[Any], then: Callable[[int], None]) -> None:
        """Write ``sql`` (psycopg's placeholders; safe to run twice, autocommit) to the server
        and return without its reply; ``then`` gets the rows it changed when the reply is read,
        before the connection's next statement. Only where ``sends_ahead``."""
        self.catch_up()
        try:
            driver_sql.send(self._current(), sql, params)
        except DBAPIError as exc:
            if not connection_lost(exc):
                raise
            self._drop()
            self._reconnecting(exc)
            then(self.call(driver_sql.rowcount, sql, params))  # on a new connection, waiting
            return
        self._ahead = _Ahead(sql, params, then)

    def catch_up(self) -> None:
        """Read the reply of the statement sent ``ahead``, if any; a connection lost meanwhile
        runs it again on a new one (``call``: it is safe to run twice)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        count: int | None = None  # None: not known to have run, so it runs again, waiting
        try:
            if self._conn is not None:  # a drop reads the reply first: the connection is there
                count = driver_sql.collect(self._conn)
        except driver_sql.NotPrepared:  # not run (prepared again on the next ``ahead``)
            pass
        except DBAPIError as exc:
            if not connection_lost(exc):
                raise
            self._drop()
            self._reconnecting(exc)
        if count is None:
            count = self.call(driver_sql.rowcount, ahead.sql, ahead.params)
        ahead.then(count)

    def _reconnecting(self, exc: BaseException) -> None:
        if not self.reconnects:
            log.warning("database connection lost (%s); reconnecting", getattr(exc, "orig", exc))
        self.reconnects += 1
