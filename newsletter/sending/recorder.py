"""The sender's database connection, which rides out a database restart.

A batch records each reply on one autocommit connection (``Recorder.call``). When the database
goes away under it (a restart, a failover, an administrator terminating the backend), the
statement fails with an ``OperationalError``: the recorder drops the connection, waits a little
and runs the statement again on a new one, for up to ``patience`` seconds. Every statement a
batch runs through it is guarded by the row's lease or status, so running one twice (the first
did commit, its answer was lost) changes nothing. When the database stays away longer, it
raises ``DatabaseUnavailable``: the batch's task is retried, and the rows it held come back
when their lease runs out (a message already handed over then goes out again, same Message-ID).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.exceptions import DatabaseUnavailable

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


class Recorder:
    """One autocommit connection at a time (PostgreSQL: without waiting for the WAL flush)."""

    def __init__(self, engine: Engine, *, patience: float) -> None:
        self.engine = engine
        self.patience = patience
        self.reconnects = 0  # new connections after a lost one (for the log and the tests)
        self._conn: Connection | None = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self.engine.dialect.name == "postgresql":
            # a worker crash cannot lose a committed row; a database crash could lose the last
            # few hundred milliseconds of results, which then go out again (same Message-ID)
            conn.execute(text("SET synchronous_commit TO off"))
        self._conn = conn
        return conn

    def connection(self) -> Connection:
        """The connection the next ``call`` runs on (opened now if there is none)."""
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
                if not self.reconnects:
                    log.warning("database connection lost (%s); reconnecting", exc.orig)
                self.reconnects += 1
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)

    def once(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """``fn(connection, ...)`` once (a statement not safe to run twice); a lost connection
        is dropped (the next ``call`` makes a new one) and the error raised."""
        try:
            return fn(self._current(), *args, **kw)
        except DBAPIError as exc:
            if connection_lost(exc):
                self._drop()
            raise
