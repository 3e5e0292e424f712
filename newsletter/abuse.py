"""Sign-up abuse limits: at most N sign-ups per client IP and per address in a sliding window.

A sign-up sends an email to an address typed by a stranger, so the form must not become a way to
mail-bomb someone or to fill the list with junk. Each limit is a sliding-window log: a Redis
sorted set of the accepted attempts' times (Redis's own clock, one Lua script, so every API
process shares it), or the same log in process when no Redis is configured (the embedded demo).
Only accepted attempts are logged, so ``retry_after`` is exact: the moment the oldest one leaves
the window.

Addresses are keyed by a SHA-256 of the normalised address, never the address itself. If Redis
cannot be reached the limit is skipped with a warning: sign-ups matter more than the limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from newsletter.config import Settings
from newsletter.exceptions import RateLimited

log = logging.getLogger(__name__)

# KEYS[1] = the sorted set; ARGV = limit, window in ms, a unique member. Returns 0 when the
# attempt is accepted (and logged), else the whole seconds until one will be.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class Window(Protocol):
    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        """Log one attempt if fewer than ``limit`` are in the window: 0, else the wait."""


class RedisWindow:
    def __init__(self, client: redis.Redis, *, prefix: str = "newsletter:signup:") -> None:
        self.prefix = prefix
        self._script = client.register_script(_LUA)

    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        wait = self._script(
            keys=[self.prefix + key], args=[limit, seconds * 1000, uuid.uuid4().hex]
        )
        return int(wait)


class MemoryWindow:
    """The same log in process, for a deployment without Redis (one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        now = self._clock()
        with self._lock:
            times = self._log.setdefault(key, deque())
            while times and times[0] <= now - seconds:
                times.popleft()
            if len(times) >= limit:
                return max(1, math.ceil(times[0] + seconds - now))
            times.append(now)
            return 0


@dataclass
class SignupLimiter:
    window: Window
    per_ip: int
    per_address: int
    seconds: int

    def check_ip(self, ip: str | None) -> None:
        """Raise RateLimited when this client IP has used up its sign-ups."""
        if ip:
            self._check(f"ip:{ip}", self.per_ip)

    def check_address(self, address: str) -> None:
        """Raise RateLimited when this (normalised) address has had its sign-ups."""
        digest = hashlib.sha256(address.lower().encode("utf-8")).hexdigest()
        self._check(f"address:{digest}", self.per_address)

    def _check(self, key: str, limit: int) -> None:
        if limit <= 0:
            return
        try:
            wait = self.window.hit(key, limit=limit, seconds=self.seconds)
        except redis.RedisError as exc:
            log.warning("sign-up limit not checked (Redis: %s)", exc)
            return
        if wait:
            raise RateLimited(
                f"too many sign-up attempts; try again in {wait} seconds", retry_after=wait
            )


def _client(url: str) -> redis.Redis:
    # one quick try: a sign-up must not hang on a Redis that is down (the limit is skipped)
    return redis.Redis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def signup_limiter(settings: Settings, *, prefix: str = "newsletter:signup:") -> SignupLimiter:
    """The limiter for ``settings``: on the shared Redis when there is one, else in process."""
    url = settings.shared_redis_url
    window: Window = RedisWindow(_client(url), prefix=prefix) if url else MemoryWindow()
    return SignupLimiter(
        window,
        per_ip=settings.signup_limit_per_ip,
        per_address=settings.signup_limit_per_address,
        seconds=settings.signup_limit_window_seconds,
    )
