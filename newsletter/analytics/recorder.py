"""The tracking events' buffer: the redirect hands its hit over and answers; a flusher thread
records the hits many at a time (``recording.record_many``: set-based, same verdicts).

One ``Recorder`` per process (the app makes it, ``Settings.track_flush_seconds`` apart). ``add``
only appends to a list under a lock, so a click costs the request no query and no thread hop.
The flusher wakes every ``interval`` seconds (sooner when ``batch`` hits are waiting) and
records what is buffered in one transaction; a batch that fails (the database is away) is
logged and dropped, as a lost event must never reach the reader. ``stop`` (the app's shutdown)
flushes what is left, so a clean stop (SIGTERM, Ctrl-C) loses nothing. What a SIGKILL or a
crash can lose: the hits still in the buffer, at most the last ``interval`` seconds' events of
that process (0.2 s by default).
"""

from __future__ import annotations

import logging
import threading

from newsletter import db
from newsletter.analytics import recording
from newsletter.analytics.recording import Hit
from newsletter.analytics.verdicts import Limits

log = logging.getLogger(__name__)


class Recorder:
    """A buffer of hits and the one thread that records them."""

    def __init__(
        self,
        database_url: str,
        *,
        limits: Limits,
        retention_days: int,
        interval: float = 0.2,
        batch: int = 2000,
    ) -> None:
        self.database_url = database_url
        self.limits = limits
        self.retention_days = retention_days
        self.interval = interval
        self.batch = batch
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._flushing = threading.Lock()  # one flush at a time: arrival order is kept
        self._thread: threading.Thread | None = None

    def add(self, hit: Hit) -> None:
        """Buffer one hit (the flusher starts with the first)."""
        with self._lock:
            self._hits.append(hit)
            waiting = len(self._hits)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="tracking-recorder", daemon=True
                )
                self._thread.start()
        if waiting >= self.batch:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._hits)

    def flush(self) -> int:
        """Record every buffered hit now: how many hits were taken."""
        with self._flushing:
            with self._lock:
                hits, self._hits = self._hits, []
            for start in range(0, len(hits), self.batch):
                self._record(hits[start : start + self.batch])
            return len(hits)

    def stop(self) -> None:
        """Stop the flusher and record what is left (the app's shutdown)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        self.flush()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            stopping = self._stopping
            self.flush()
            if stopping:
                return

    def _record(self, hits: list[Hit]) -> None:
        try:
            with db.session_scope(self.database_url) as session:
                recording.record_many(
                    session, hits, limits=self.limits, retention_days=self.retention_days
                )
        except Exception:  # a lost event must not surface anywhere: the readers have their pages
            log.exception("tracking: %d event(s) were not recorded", len(hits))
