"""The subscriber table's trigram index, paused for a large import.

``TrigramPause``: an import at least as large as the subscriber table (and of ``PAUSE_MIN_ROWS``
or more) drops the email trigram index (migration 0015) before its first row and builds it again
at its end, in its own transaction: keeping a GIN index up to date row by row costs about twice
what building it over the whole table does (1M addresses: 14 CPU-seconds of the COPY vs 8 for the
build). For the other sessions: the drop is its own short transaction (an ACCESS EXCLUSIVE lock
for milliseconds, waited for at most ``lock_timeout``, else no pause); meanwhile a search for part
of an address scans the table (slower, same answers); the build takes a SHARE lock, so readers go
on and writers of subscriber wait for the import's commit. The pausing import holds an advisory
lock on a connection of its own; an import killed midway leaves the index missing until the
next large import or the beat's import reaper (``restore_trigram_index``) builds it again.

Kept apart from ``csv_bulk`` (which loads psycopg for its COPY): the beat's import reaper, which
every worker loads, needs only ``restore_trigram_index``.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

TRIGRAM_INDEX = "ix_subscriber_email_trgm"  # migration 0015's
TRIGRAM_BUILD = f"INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON subscriber USING gin (email gin_trgm_ops)"
PAUSE_MIN_ROWS = 100_000
PAUSE_LOCK = 0x6E6C_7467  # the advisory lock of a paused trigram index ("nltg")


class TrigramPause:
    """The trigram index dropped for one large import, built again at its end (see above)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._holder: Connection | None = None  # holds PAUSE_LOCK while paused

    @property
    def paused(self) -> bool:
        return self._holder is not None

    def start(self, expected_rows: int) -> bool:
        """Drop the index if ``expected_rows`` make it worth it and nothing is in the way (or
        take over one left dropped); call before the import's transaction touches subscriber.
        True if paused."""
        if self.session.get_bind().dialect.name != "postgresql" or expected_rows < PAUSE_MIN_ROWS:
            return False
        table_rows = self.session.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('subscriber')")
        ).scalar()
        if expected_rows < (table_rows or 0):
            return False
        engine = self.session.get_bind()
        if not isinstance(engine, Engine):  # a session on one connection: no second one
            return False
        holder = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if holder.execute(select(func.pg_try_advisory_lock(PAUSE_LOCK))).scalar():
                holder.execute(text("SET lock_timeout = '1s'"))
                holder.execute(text(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}"))
                self._holder = holder
                return True
        except OperationalError:  # the lock not had within lock_timeout: no pause
            pass
        holder.close()  # the advisory lock goes with its connection
        return False

    def finish(self) -> None:
        """Build the index again in the import's transaction (the caller commits)."""
        if self._holder is not None:
            build_trigram_index(self.session)

    def release(self) -> None:
        """Let go of the advisory lock (always, also when the import failed)."""
        if self._holder is not None:
            self._holder.close()
            self._holder = None


def build_trigram_index(session: Session, lock_timeout: str = "10s") -> bool:
    """CREATE INDEX of the trigram index in the session's transaction, unless it is there or its
    lock is not had within ``lock_timeout`` (then nothing changes); True if built."""
    if _trigram_index(session):
        return False
    try:
        with session.begin_nested():
            session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
            session.execute(text(f"CREATE {TRIGRAM_BUILD}"))
            session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except OperationalError:
        return False
    return True


def restore_trigram_index(session: Session) -> bool:
    """In the session's transaction (the caller commits): build the trigram index again if it is
    missing (an import killed midway) and no import has it paused, waiting at most 2 s for its
    lock (PostgreSQL). Writers of subscriber wait for the build (seconds for a million rows);
    not CONCURRENTLY, which would wait for a running import and could deadlock with its
    ANALYZE. True if built."""
    if session.get_bind().dialect.name != "postgresql" or _trigram_index(session):
        return False
    if not session.execute(select(func.pg_try_advisory_xact_lock(PAUSE_LOCK))).scalar():
        return False  # an import has it paused: it builds it at its end
    return build_trigram_index(session, lock_timeout="2s")


def _trigram_index(session: Session) -> bool:
    """Whether the trigram index is there (on PostgreSQL; the migration makes none elsewhere)."""
    found = session.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": TRIGRAM_INDEX})
    return bool(found.scalar())
