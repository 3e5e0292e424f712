"""The messages in hand: claimed rows re-checked against their subscriptions just before SMTP.

A batch claims its rows seconds before it sends them; a subscriber who unsubscribes in between
must not be mailed once the unsubscribe is answered. So the batch takes its rows "in hand" a
chunk at a time, just before handing them to the transport: one statement reads which of their
subscriptions are still active and locks those rows until every message of the chunk has its
reply. A change of a subscription (a one-click unsubscribe, the preference centre, a bounce, an
erasure) is an ``UPDATE`` of that row, so it waits for the chunk: a message of the chunk went
out before the change commits, hence before its answer; a chunk taken after the change sees it
and the row is skipped. The lock:

- PostgreSQL: ``SELECT ... FOR SHARE`` in a transaction of its own on a second connection
  (two, alternating, so that the pooled loop keeps its messages in flight across a chunk's
  end), while the results are still written one autocommit statement each on the recorder, so
  a killed worker re-sends at most the messages in flight. A bad mailbox's subscription is
  marked on the hand's connection (the recorder would wait for that lock).
- SQLite has one writer: the hand is the recorder's own transaction (``BEGIN IMMEDIATE``, then
  the read, the sends, their results, ``COMMIT``), one message long on one connection, as many
  rows as connections in flight with a pool. SQLite's lock is not fair (a waiting writer polls,
  sleeping up to 100 ms between tries), so the batch lets go of it for ``SQLITE_PAUSE`` every
  ``HAND_SECONDS``: an unsubscribe during a send waits a few tries instead of until its end.
  Whatever else the batch writes meanwhile from another connection (a relay's health) would
  wait for that lock in the thread that holds it: a hand holds such a writer's ``gate``, and
  its writes wait in memory until the hand lets go.

A hand ends after ``HAND_ROWS`` rows or ``HAND_SECONDS``, whichever comes first, so a slow relay
keeps a waiting unsubscribe no longer than the message in flight.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import Integer, Select, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from newsletter.models import SubscriptionStatus
from newsletter.sending import driver_sql
from newsletter.sending.ledger import Claimed
from newsletter.sending.recorder import Recorder, connection_lost
from newsletter.tables import S

#: rows a hand re-checks and locks with one statement (PostgreSQL; more with a larger pool)
HAND_ROWS = 16
#: a hand older than this takes no more rows: a waiting unsubscribe waits about this long
HAND_SECONDS = 0.05
#: SQLite: how long the batch stays out of the write lock every ``HAND_SECONDS``
SQLITE_PAUSE = 0.01


#: PostgreSQL: the rows of a hand still subscribed, locked FOR SHARE (an UPDATE of them waits);
#: one statement built once, the ids an array (an IN list would be compiled again every hand)
_LOCK_ACTIVE = (
    select(S.c.subscriber_id)
    .where(
        S.c.newsletter_id == bindparam("newsletter"),
        S.c.subscriber_id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer))),
        S.c.status == SubscriptionStatus.active,
    )
    .order_by(S.c.subscriber_id)
    .with_for_update(read=True)
)


#: the same statement for psycopg itself (``driver_sql``): the SQLAlchemy one cost about 0.5 ms
#: of the worker's CPU a hand (its cache key, the array's processing, the result's wrapping)
_LOCK_ACTIVE_PG = driver_sql.statement(
    "SELECT subscriber_id FROM subscription WHERE newsletter_id = %s "
    "AND subscriber_id = ANY(%s) AND status = {active} ORDER BY subscriber_id FOR SHARE",
    active=[SubscriptionStatus.active],
)


class Gate(Protocol):
    """A writer on another connection that keeps its writes while SQLite's lock is held."""

    def hold(self) -> None: ...

    def let_go(self) -> None: ...


@dataclass
class Hand:
    conn: Connection  # holds the lock; a subscription change of these rows goes on it
    first: int  # indexes in the claim
    last: int
    active: frozenset[int]  # subscriber ids still subscribed when the hand was taken
    taken: float = field(default_factory=time.monotonic)

    def allows(self, row: Claimed) -> bool:
        return row.subscriber_id in self.active

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.taken > HAND_SECONDS


class Hands:
    """The open hands of one batch, oldest first."""

    def __init__(
        self,
        engine: Engine,
        recorder: Recorder,
        *,
        newsletter_id: int,
        connections: int,
        gate: Gate | None = None,
    ) -> None:
        self.postgres = engine.dialect.name == "postgresql"
        self.engine, self.recorder, self.newsletter_id = engine, recorder, newsletter_id
        self.gate = gate
        self.rows = max(HAND_ROWS, connections) if self.postgres or connections > 1 else 1
        self.most_open = 2 if self.postgres else 1
        self.open: deque[Hand] = deque()
        self.spare: list[Connection] = []
        self.conns: list[Connection] = []
        self.paused = time.monotonic()
        self._taken: Connection | None = None  # PostgreSQL: the connection the last take locked on

    def __enter__(self) -> Hands:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        while self.open:  # results already written (SQLite: in the hand) are kept
            self._finish(self.open.popleft())
        for conn in self.conns:
            with suppress(DBAPIError):
                conn.exec_driver_sql("RESET synchronous_commit")
                conn.commit()
            with suppress(DBAPIError):
                conn.close()

    def current(self, index: int) -> Hand | None:
        """The open hand covering ``index`` (a hand past its time covers no further rows)."""
        if not self.open:
            return None
        hand = self.open[-1]
        if not hand.first <= index <= hand.last:
            return None
        if index > hand.first and hand.expired:
            hand.last = index - 1
            return None
        return hand

    def landed_through(self, index: int, *, keep: int | None = None) -> None:
        """Every message up to ``index`` has its reply (one at a time): end the hands there,
        a hand past its time included, unless it holds row ``keep`` (let in already)."""
        if self.open and self.open[-1].expired:
            self.open[-1].last = min(self.open[-1].last, index if keep is None else keep)
        self.settle(index + 1)

    def settle(self, landed_before: int) -> None:
        """Finish the hands whose every message has its reply (all before ``landed_before``)."""
        while self.open and self.open[0].last < landed_before:
            self._finish(self.open.popleft())

    @property
    def full(self) -> bool:
        return len(self.open) >= self.most_open

    def take(self, claimed: Sequence[Claimed], index: int) -> Hand:
        """Re-check and lock the rows from ``index`` on; ``full`` must be False."""
        rows = claimed[index : index + self.rows]
        ids = sorted({r.subscriber_id for r in rows})
        if self.postgres:
            active = self.recorder.call(lambda _rec: self._locked(self.newsletter_id, ids))
        else:
            query = (
                select(S.c.subscriber_id)
                .where(
                    S.c.newsletter_id == self.newsletter_id,
                    S.c.subscriber_id.in_(ids),
                    S.c.status == SubscriptionStatus.active,
                )
                .order_by(S.c.subscriber_id)
            )
            active = self._write_locked(query)
        conn = self._taken if self._taken is not None else self.recorder.connection()
        hand = Hand(conn, index, index + len(rows) - 1, active)
        self.open.append(hand)
        return hand

    def _write_locked(self, query: Select[Any]) -> frozenset[int]:
        """SQLite: the query in the recorder's transaction, which holds the write lock."""
        conn = self.recorder.connection()
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock: every writer waits
        if self.gate is not None:
            self.gate.hold()
        try:
            return frozenset(conn.execute(query).scalars())
        except BaseException:  # no hand to finish: the lock and the gate go now
            with suppress(DBAPIError):
                conn.exec_driver_sql("ROLLBACK")
            if self.gate is not None:
                self.gate.let_go()
            raise

    def _locked(self, newsletter_id: int, ids: list[int]) -> frozenset[int]:
        """PostgreSQL: the rows still subscribed, locked on a hand connection of its own
        (``_taken``); a connection the database dropped (a restart) is discarded and the
        recorder's ``call`` tries again."""
        conn = self.spare.pop() if self.spare else self._new()
        try:
            if driver_sql.usable_in_transaction(conn):
                active = frozenset(driver_sql.column(conn, _LOCK_ACTIVE_PG, (newsletter_id, ids)))
            else:
                values = {"newsletter": newsletter_id, "ids": ids}
                active = frozenset(conn.execute(_LOCK_ACTIVE, values).scalars())
        except DBAPIError as exc:
            if connection_lost(exc):
                self._discard(conn)
            raise
        self._taken = conn
        return active

    def _new(self) -> Connection:
        conn = self.engine.connect()
        # a hand's transaction only locks rows (and marks a bad mailbox, as the recorder's
        # results do): its commit need not wait for the WAL flush, 200 -> 70 us here; a database
        # crash loses its locks anyway (reset before the connection goes back to the pool)
        conn.exec_driver_sql("SET synchronous_commit TO off")
        conn.commit()
        self.conns.append(conn)
        return conn

    def _discard(self, conn: Connection) -> None:
        self.conns.remove(conn)
        with suppress(Exception):
            conn.invalidate()
        with suppress(Exception):
            conn.close()

    def _finish(self, hand: Hand) -> None:
        if not self.postgres:
            try:
                hand.conn.exec_driver_sql("COMMIT")
            finally:
                if self.gate is not None:
                    self.gate.let_go()  # its writes now, before the batch takes the lock again
            if time.monotonic() - self.paused > HAND_SECONDS:
                time.sleep(SQLITE_PAUSE)  # a waiting writer's turn
                self.paused = time.monotonic()
            return
        try:
            hand.conn.commit()
        except DBAPIError as exc:  # its lock went with the connection; the results are kept
            if not connection_lost(exc):
                raise
            self._discard(hand.conn)
            return
        self.spare.append(hand.conn)
