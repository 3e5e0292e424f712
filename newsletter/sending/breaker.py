"""The circuit breaker: pause an issue when too many recent sends fail, and say why.

Each worker process keeps a sliding window of its last results per issue (a deque); the workers
of one deployment talk to the same SMTP server, so each sees the same trouble. A failure here
is a temporary failure (4xx, timeout, dropped connection) or a permanent one that is not about
the mailbox (5.7.x policy, 5.6.x content, ...): a bad address is the subscriber's problem, not
the server's. When the share of failures in a full-enough window passes the threshold, the issue
is paused with the reason and the last reply. When most of those failures were temporary (the
relay down or refusing for now: 4xx, timeouts, refused connections), the pause is half-open: the
tick probes the relay after a cool-down and resumes the send once it answers (``probe``);
otherwise (policy or content refusals, 5xx) an operator resumes it once the cause is fixed.
The texts the status shows for both are made here.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from newsletter.config import Settings

#: how the breaker's reasons start (``status_reason``)
PREFIX = "circuit breaker: "


@dataclass
class Window:
    """The last ``size`` results, and how many of them failed (counted as they come and go: the
    breaker looks after every message, and a window is 100 results by default)."""

    size: int
    results: deque[int] = field(init=False)  # 0 success, 1 temporary, 2 permanent failure
    last_failure: str = ""
    failures: int = 0
    permanent: int = 0

    def __post_init__(self) -> None:
        self.results = deque(maxlen=self.size)

    def add(self, result: int) -> None:
        if len(self.results) == self.size:  # the oldest result leaves the window
            oldest = self.results[0]
            self.failures -= oldest != 0
            self.permanent -= oldest == 2
        self.results.append(result)
        self.failures += result != 0
        self.permanent += result == 2

    def clear(self) -> None:
        self.results.clear()
        self.failures = self.permanent = 0


@dataclass(frozen=True)
class Verdict:
    tripped: bool
    reason: str = ""
    relay_down: bool = False  # most failures were temporary: a probe may resume the send


class CircuitBreaker:
    def __init__(self, *, window: int, min_results: int, threshold: float) -> None:
        self.window, self.min_results, self.threshold = window, min_results, threshold
        self._windows: dict[tuple[int, datetime | None], Window] = {}
        self._lock = threading.Lock()

    def record(
        self,
        issue_id: int,
        generation: datetime | None,
        *,
        failed: bool,
        reply: str = "",
        permanent: bool = False,
    ) -> Verdict:
        """Add one result (``permanent``: a failed one was a 5xx refusal, not a 4xx or a lost
        connection). ``generation`` is the issue's last status change: a resumed issue starts
        with an empty window, in every process."""
        key = (issue_id, generation)
        with self._lock:
            win = self._windows.get(key)
            if win is None:
                for old in [k for k in self._windows if k[0] == issue_id]:
                    del self._windows[old]
                win = self._windows[key] = Window(self.window)
            win.add((2 if permanent else 1) if failed else 0)
            if failed:
                win.last_failure = reply
            seen, bad, permanent_ones = len(win.results), win.failures, win.permanent
            if seen < self.min_results or bad / seen < self.threshold:
                return Verdict(False)
            win.clear()
        return Verdict(
            True,
            f"{PREFIX}{bad} of the last {seen} sends failed"
            + (f" (last: {win.last_failure[:200]})" if win.last_failure else ""),
            relay_down=bad - permanent_ones > permanent_ones,
        )


def _hms(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(UTC):%H:%M:%S} UTC"


def cause(reason: str | None) -> str:
    """What the breaker paused for, without its prefix."""
    return (reason or "").removeprefix(PREFIX)


def paused_text(reason: str | None, paused_at: datetime | None, next_probe_at: datetime) -> str:
    """The status of an issue the breaker paused that a probe will resume."""
    at = f" at {_hms(paused_at)}" if paused_at else ""
    return (
        f"paused by the circuit breaker{at}: {cause(reason)}; "
        f"next probe of the relay at {_hms(next_probe_at)}"
    )


def resumed_text(reason: str | None, paused_at: datetime | None, answered_at: datetime) -> str:
    """The status reason of a send a probe resumed."""
    at = f"paused at {_hms(paused_at)}: " if paused_at else "paused: "
    return (
        f"resumed automatically after the relay answered again at {_hms(answered_at)} "
        f"({at}{cause(reason)})"
    )[:1000]


_breakers: dict[tuple[int, int, float], CircuitBreaker] = {}


def breaker_for(settings: Settings) -> CircuitBreaker:
    """The process's circuit breaker for these settings."""
    key = (settings.breaker_window, settings.breaker_min_results, settings.breaker_threshold)
    if key not in _breakers:
        _breakers[key] = CircuitBreaker(window=key[0], min_results=key[1], threshold=key[2])
    return _breakers[key]
