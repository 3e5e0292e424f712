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
from functools import partial
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


# the same window, looked at without logging anything (a sign-in limiter logs failures only)
_LUA_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
end
return 0
"""
_LUA_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 0
"""


class Window(Protocol):
    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        """Log one attempt if fewer than ``limit`` are in the window: 0, else the wait."""

    def peek(self, key: str, *, limit: int, seconds: int) -> int:
        """0 if fewer than ``limit`` attempts are in the window, else the wait; logs nothing."""

    def add(self, key: str, *, seconds: int) -> None:
        """Log one attempt, whatever the count."""


class RedisWindow:
    def __init__(self, client: redis.Redis, *, prefix: str = "newsletter:signup:") -> None:
        self.prefix = prefix
        self._script = client.register_script(_LUA)
        self._peek = client.register_script(_LUA_PEEK)
        self._add = client.register_script(_LUA_ADD)

    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        wait = self._script(
            keys=[self.prefix + key], args=[limit, seconds * 1000, uuid.uuid4().hex]
        )
        return int(wait)

    def peek(self, key: str, *, limit: int, seconds: int) -> int:
        return int(self._peek(keys=[self.prefix + key], args=[limit, seconds * 1000]))

    def add(self, key: str, *, seconds: int) -> None:
        self._add(keys=[self.prefix + key], args=[seconds * 1000, uuid.uuid4().hex])


class MemoryWindow:
    """The same log in process, for a deployment without Redis (one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, seconds: int) -> int:
        with self._lock:
            wait = self._wait(key, limit, seconds)
            if not wait:
                self._log[key].append(self._clock())
            return wait

    def peek(self, key: str, *, limit: int, seconds: int) -> int:
        with self._lock:
            return self._wait(key, limit, seconds)

    def add(self, key: str, *, seconds: int) -> None:
        with self._lock:
            self._log.setdefault(key, deque()).append(self._clock())

    def _wait(self, key: str, limit: int, seconds: int) -> int:
        now = self._clock()
        times = self._log.setdefault(key, deque())
        while times and times[0] <= now - seconds:
            times.popleft()
        return max(1, math.ceil(times[0] + seconds - now)) if len(times) >= limit else 0


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
        self._check(f"address:{_address_key(address)}", self.per_address)

    def _check(self, key: str, limit: int) -> None:
        if limit > 0:
            _refuse_when_over(
                partial(self.window.hit, key, limit=limit, seconds=self.seconds),
                what="sign-up",
                too_many="too many sign-up attempts",
            )


def _refuse_when_over(wait_of: Callable[[], int], *, what: str, too_many: str) -> bool:
    """Raise RateLimited when ``wait_of()`` says to wait; False when Redis could not answer
    (the limit is then not checked: a broken limiter must not stop sign-ups or sign-ins)."""
    try:
        wait = wait_of()
    except redis.RedisError as exc:
        log.warning("%s limit not checked (Redis: %s)", what, exc)
        return False
    if wait:
        raise RateLimited(f"{too_many}; try again in {wait} seconds", retry_after=wait)
    return True


def _address_key(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


@dataclass
class FailureLimiter:
    """Sign-in attempts: only failures count, per client IP and per (address, IP).

    A successful sign-in costs nothing, and someone who knows an editor's address can use up
    only their own IP's share for it, never lock the editor out; an IP spraying guesses over
    many addresses is stopped by its own limit. Checked before the password is verified.
    """

    window: Window
    per_ip: int
    per_address: int
    seconds: int

    def _keys(self, ip: str | None, address: str) -> list[tuple[str, int]]:
        who = ip or "-"
        keys = [(f"address:{_address_key(address)}:ip:{who}", self.per_address)]
        return keys + ([(f"ip:{ip}", self.per_ip)] if ip else [])

    def check(self, *, ip: str | None, address: str) -> None:
        """Raise RateLimited when this IP, or this address from this IP, failed too often."""
        for key, limit in self._keys(ip, address):
            if limit <= 0:
                continue
            checked = _refuse_when_over(
                partial(self.window.peek, key, limit=limit, seconds=self.seconds),
                what="sign-in",
                too_many="too many failed sign-ins",
            )
            if not checked:
                return

    def failed(self, *, ip: str | None, address: str) -> None:
        """Count one failed attempt against this IP and this (address, IP)."""
        for key, _limit in self._keys(ip, address):
            try:
                self.window.add(key, seconds=self.seconds)
            except redis.RedisError as exc:
                log.warning("failed sign-in not counted (Redis: %s)", exc)
                return


def redis_client(url: str) -> redis.Redis:
    # one quick try: a sign-up must not hang on a Redis that is down (the limit is skipped)
    return redis.Redis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def window_for(settings: Settings, *, prefix: str) -> Window:
    """On the shared Redis when there is one, else in process."""
    url = settings.shared_redis_url
    return RedisWindow(redis_client(url), prefix=prefix) if url else MemoryWindow()


def signup_limiter(settings: Settings, *, prefix: str = "newsletter:signup:") -> SignupLimiter:
    """The sign-up limiter for ``settings``."""
    window = window_for(settings, prefix=prefix)
    return SignupLimiter(
        window,
        per_ip=settings.signup_limit_per_ip,
        per_address=settings.signup_limit_per_address,
        seconds=settings.signup_limit_window_seconds,
    )
