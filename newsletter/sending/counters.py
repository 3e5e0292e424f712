"""Ledger rows per issue and status, read from ``issue_counter`` in constant time.

The counts are written by the database itself: triggers on ``delivery`` (migration 0020) change
them in the transaction of every insert, status change and delete of a ledger row, so no code
path (a fill, a claim, a result, a requeue, a cancel, a welcome row, an erasure) can forget them
and a rolled-back change rolls its counts back with it. A few shard rows per (issue, status)
keep concurrent workers off one hot row; a read sums them. ``check`` compares them with a
``GROUP BY`` of the ledger (tests, ``newsletter`` operators in doubt).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.engine import Connection
from sqlmodel import Session

from newsletter.tables import IC, D

Counts = dict[str, int]


def counts(session: Session | Connection, issue_id: int) -> Counts:
    """The issue's ledger rows by status (statuses with none left out)."""
    return counts_of(session, [issue_id]).get(issue_id, {})


def counts_of(session: Session | Connection, issue_ids: Collection[int]) -> dict[int, Counts]:
    """Ledger rows by status of each of ``issue_ids`` (an issue with none has no entry)."""
    if not issue_ids:
        return {}
    rows = session.execute(
        select(IC.c.issue_id, IC.c.status, func.sum(IC.c.n))
        .where(IC.c.issue_id.in_(list(issue_ids)))
        .group_by(IC.c.issue_id, IC.c.status)
    ).all()
    found: dict[int, Counts] = {}
    for issue_id, status, n in rows:
        if n:
            found.setdefault(int(issue_id), {})[str(status)] = int(n)
    return found


def totals(session: Session | Connection) -> Counts:
    """Ledger rows by status over every issue."""
    rows = session.execute(select(IC.c.status, func.sum(IC.c.n)).group_by(IC.c.status)).all()
    return {str(status): int(n) for status, n in rows if n}


def check(session: Session | Connection, issue_id: int) -> tuple[Counts, Counts]:
    """(the counters, a ``GROUP BY`` of the ledger) of one issue, read by one statement (one
    snapshot, so they must be equal even while workers send); a scan: for checks, not polls."""
    kept = (
        select(literal("counter").label("side"), IC.c.status, func.sum(IC.c.n).label("n"))
        .where(IC.c.issue_id == issue_id)
        .group_by(IC.c.status)
    )
    scanned = (
        select(literal("ledger").label("side"), D.c.status, func.count().label("n"))
        .where(D.c.issue_id == issue_id)
        .group_by(D.c.status)
    )
    found: dict[str, Counts] = {"counter": {}, "ledger": {}}
    for side, status, n in session.execute(union_all(kept, scanned)).all():
        if n:
            found[str(side)][str(status)] = int(n)
    return found["counter"], found["ledger"]


def tidy(conn: Connection) -> None:
    """PostgreSQL: clear the counter rows' dead versions (``VACUUM``; skipped while another
    runs). Call it on an autocommit connection.

    Every counted statement updates a counter row and leaves its old version behind. A send
    records each reply by itself, so on a table of a few rows thousands of old versions pile up
    a second, and every later update walks past them: a reply's UPDATE with its trigger cost
    0.28-0.40 ms of the backend's CPU, and 0.18-0.24 ms with the table vacuumed every 200
    messages, the ``VACUUM`` itself 2-4 ms (6,000 claim + reply cycles on one connection; the
    README's delivery section). ``batch`` calls it at most once a second a process. A connection
    that does not own the table gets PostgreSQL's warning and a skip, never an error.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("VACUUM (SKIP_LOCKED) issue_counter")
