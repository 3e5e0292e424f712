"""The circuit breaker: pause an issue when too many recent sends fail, and say why.

Each worker process keeps a sliding window of its last results per issue (a deque); the workers
of one deployment talk to the same SMTP server, so each sees the same trouble. A failure here
is a temporary failure (4xx, timeout, dropped connection) or a permanent one that is not about
the mailbox (5.7.x policy, 5.6.x content, ...): a bad address is the subscriber's problem, not
the server's. When the share of failures in a full-enough window passes the threshold, the issue
is paused with the reason and the last reply; an operator resumes it once the cause is fixed.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from newsletter.config import Settings


@dataclass
class Window:
    size: int
    results: deque[bool] = field(init=False)  # True = failure
    last_failure: str = ""

    def __post_init__(self) -> None:
        self.results = deque(maxlen=self.size)

    @property
    def failures(self) -> int:
        return sum(self.results)


@dataclass(frozen=True)
class Verdict:
    tripped: bool
    reason: str = ""


class CircuitBreaker:
    def __init__(self, *, window: int, min_results: int, threshold: float) -> None:
        self.window, self.min_results, self.threshold = window, min_results, threshold
        self._windows: dict[tuple[int, datetime | None], Window] = {}
        self._lock = threading.Lock()

    def record(
        self, issue_id: int, generation: datetime | None, *, failed: bool, reply: str = ""
    ) -> Verdict:
        """Add one result. ``generation`` is the issue's last status change: a resumed issue
        starts with an empty window, in every process."""
        key = (issue_id, generation)
        with self._lock:
            win = self._windows.get(key)
            if win is None:
                for old in [k for k in self._windows if k[0] == issue_id]:
                    del self._windows[old]
                win = self._windows[key] = Window(self.window)
            win.results.append(failed)
            if failed:
                win.last_failure = reply
            seen, bad = len(win.results), win.failures
            if seen < self.min_results or bad / seen < self.threshold:
                return Verdict(False)
            win.results.clear()
        return Verdict(
            True,
            f"circuit breaker: {bad} of the last {seen} sends failed"
            + (f" (last: {win.last_failure[:200]})" if win.last_failure else ""),
        )


_breakers: dict[tuple[int, int, float], CircuitBreaker] = {}


def breaker_for(settings: Settings) -> CircuitBreaker:
    """The process's circuit breaker for these settings."""
    key = (settings.breaker_window, settings.breaker_min_results, settings.breaker_threshold)
    if key not in _breakers:
        _breakers[key] = CircuitBreaker(window=key[0], min_results=key[1], threshold=key[2])
    return _breakers[key]
