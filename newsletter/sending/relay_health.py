"""Which relays are out, until when and why: the ``relay_health`` table, and each relay's breaker.

The state lives in the database (``RelayHealth``), not in Redis: the embedded default has no
Redis, the CLI and /metrics read the same rows as the workers, and the table only changes when
a relay goes out or comes back (a few writes an outage). Each process reads it at most once a
``REFRESH`` seconds (the send path asks before every message) and sees its own writes at once;
another process's verdict reaches it within that second, and until then it would find the
relay's trouble for itself.

A relay goes out for a cool-down when a connection to it fails (``relays``), or when its breaker
(``RelayBreaker``: the share of temporary failures in its last sends in this process) trips. The
cool-down doubles with each time out in a row, up to the maximum; when it ends the relay is
tried again (by the next message, or by the beat's health check) and a success puts it back.

On SQLite a batch holds the one write lock while a message is in hand (``hands``), and a write
from another connection would wait for it, in the very thread that holds it: while ``held``,
the writes are kept (this process sees them at once) and go to the table when it lets go.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from newsletter.db import get_engine
from newsletter.models import RelayHealth, utcnow

#: seconds a process trusts what it last read of the table
REFRESH = 1.0
_T = RelayHealth.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class State:
    name: str
    out_until: datetime | None = None
    reason: str = ""
    outs: int = 0
    changed_at: datetime | None = None

    def out(self, now: datetime) -> bool:
        return self.out_until is not None and self.out_until > now


class Health:
    """One process's view of the table, and its writes."""

    def __init__(
        self,
        engine: Engine,
        *,
        cooldown: float,
        cooldown_max: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.cooldown, self.cooldown_max = engine, cooldown, cooldown_max
        self._clock = clock
        self._states: dict[str, State] = {}
        self._read_at = float("-inf")
        self._reading = False  # a thread is reading the table now: the others keep the old view
        self._lock = threading.Lock()
        self._held = 0  # batches holding SQLite's write lock (``hold``)
        self._pending: dict[str, State] = {}  # writes kept until they let go

    def states(self) -> dict[str, State]:
        """Every relay that has a row (read again after ``REFRESH`` seconds).

        One thread reads; the others (a pool's connections each ask before every message) keep
        the view they had until it is back. When they all read at once, each took a database
        connection of its own beyond the pool's size, which was closed again after: a new
        PostgreSQL backend every few hundred milliseconds a process during a pooled send."""
        with self._lock:
            fresh_enough = self._clock() - self._read_at < REFRESH
            if fresh_enough or (self._reading and self._read_at > float("-inf")):
                return self._states
            self._reading = True
        try:
            fresh = read_states(self.engine)
        except SQLAlchemyError:  # the database away: keep what we knew, try again next time
            fresh = self._states
        finally:
            with self._lock:
                self._reading = False
        with self._lock:
            self._states, self._read_at = {**fresh, **self._pending}, self._clock()
            return self._states

    def out(self, now: datetime | None = None) -> dict[str, State]:
        """The relays out right now."""
        now = now or utcnow()
        return {name: s for name, s in self.states().items() if s.out(now)}

    def mark_out(self, name: str, reason: str) -> State:
        """Take ``name`` out for its next cool-down (unless another process just did)."""
        now = utcnow()
        current = self.states().get(name)
        if current is not None and current.out(now):
            return current
        outs = (current.outs if current else 0) + 1
        wait = min(self.cooldown_max, self.cooldown * 2 ** (outs - 1))
        state = State(name, now + timedelta(seconds=wait), reason[:1000], outs, now)
        self._write(state)
        return state

    def mark_back(self, name: str) -> None:
        """``name`` answered: in service again, its next cool-down the first one."""
        current = self.states().get(name)
        if current is None or (current.out_until is None and current.outs == 0):
            return  # the common case: nothing to write
        reason = (
            current.reason if current.reason.startswith("back") else f"back after: {current.reason}"
        )
        self._write(State(name, None, reason[:1000], 0, utcnow()))

    def hold(self) -> None:
        """A batch took SQLite's write lock: keep the writes until ``let_go``."""
        with self._lock:
            self._held += 1

    def let_go(self) -> None:
        """The lock is free again: the writes kept meanwhile go to the table."""
        with self._lock:
            self._held -= 1
            if self._held:
                return
            pending, self._pending = list(self._pending.values()), {}
        for state in pending:
            self._store(state)

    def _write(self, state: State) -> None:
        with self._lock:
            self._states = {**self._states, state.name: state}
            if self._held:
                self._pending[state.name] = state
                return
        self._store(state)

    def _store(self, state: State) -> None:
        values = {
            "out_until": state.out_until,
            "reason": state.reason,
            "outs": state.outs,
            "changed_at": state.changed_at,
        }
        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(_T).where(_T.c.name == state.name).values(values))
                if done.rowcount == 0:
                    conn.execute(insert(_T).values(name=state.name, **values))
        except IntegrityError:  # another process inserted it first: ours is as good
            with self.engine.begin() as conn:
                conn.execute(update(_T).where(_T.c.name == state.name).values(values))
        except SQLAlchemyError:
            pass  # the database away: this process still knows, the others find out


def read_states(engine: Engine) -> dict[str, State]:
    with engine.connect() as conn:
        rows = conn.execute(select(_T)).all()
    return {
        row.name: State(
            row.name, _aware(row.out_until), row.reason, row.outs, _aware(row.changed_at)
        )
        for row in rows
    }


_healths: dict[tuple[str, float, float], Health] = {}
_healths_lock = threading.Lock()


def health_for(database_url: str, cooldown: float, cooldown_max: float) -> Health:
    """The process's view of the relays' health for this database."""
    key = (database_url, cooldown, cooldown_max)
    with _healths_lock:
        if key not in _healths:
            engine = get_engine(database_url)
            _healths[key] = Health(engine, cooldown=cooldown, cooldown_max=cooldown_max)
        return _healths[key]


class RelayBreaker:
    """Per relay, this process's last ``window`` results: True when the share of temporary
    failures among them reaches ``threshold`` (the window then starts again)."""

    def __init__(self, *, window: int, threshold: float) -> None:
        self.window, self.threshold = window, threshold
        self.min_results = max(1, window // 2)
        self._results: dict[str, deque[bool]] = {}
        self._lock = threading.Lock()

    def record(self, name: str, *, failed: bool) -> str | None:
        """Add one result; the reason to take the relay out, or None."""
        with self._lock:
            results = self._results.setdefault(name, deque(maxlen=self.window))
            results.append(failed)
            bad, seen = sum(results), len(results)
            if not failed or seen < self.min_results or bad / seen < self.threshold:
                return None
            results.clear()
        return f"{bad} of its last {seen} sends failed"


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
