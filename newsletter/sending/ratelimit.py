"""One send rate for every worker: a token bucket in Redis, run atomically as a Lua script.

The bucket holds up to ``burst`` tokens and refills at ``rate x factor`` per second, by Redis's
own clock (``TIME``), so workers on different machines agree. ``factor`` is the slow-down: a
421/451/454 reply ("slow down", "try later") multiplies it by ``DECREASE`` (floor ``MIN_FACTOR``),
and it climbs back by ``RECOVERY`` per second while no such reply comes: additive increase,
multiplicative decrease, shared by all workers because it lives in the same hash.

Without Redis (the embedded demo: SQLite and a file broker, one process) the same algorithm
runs in process, behind a lock. With ``rate == 0`` there is no limit and no slow-down.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from newsletter.exceptions import NewsletterError

if TYPE_CHECKING:
    import redis  # imported where a Redis bucket is made: the demo (no Redis) never loads it

#: slow-down when the server pushes back, and how fast the rate comes back
DECREASE = 0.7
MIN_FACTOR = 0.05
RECOVERY = 0.2  # of the configured rate, per second

#: SMTP replies that mean "you are sending too fast / come back later"
THROTTLE_CODES = frozenset({421, 451, 454})

# KEYS[1] = bucket hash; ARGV = rate, burst, tokens wanted (0 = throttle signal),
# decrease, min factor, recovery per second. Returns the seconds to wait as a string
# ("0" = granted) and the current factor.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'factor')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local factor = tonumber(state[3]) or 1
local elapsed = math.max(0, now - ts)
factor = math.min(1, factor + elapsed * tonumber(ARGV[6]))
tokens = math.min(burst, tokens + elapsed * rate * factor)
local wait = 0
if want == 0 then
  factor = math.max(tonumber(ARGV[5]), factor * tonumber(ARGV[4]))
  tokens = math.min(tokens, 0)
elseif tokens + 1e-9 >= want then
  tokens = math.max(0, tokens - want)
else
  wait = (want - tokens) / (rate * factor)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now),
           'factor', tostring(factor))
redis.call('EXPIRE', KEYS[1], 3600)
return {tostring(wait), tostring(factor)}
"""


class LimiterUnavailable(NewsletterError):
    """Redis could not be asked: the sender stops the batch rather than send unmetered."""


class RateLimiter(Protocol):
    def acquire(self, n: int = 1) -> float:
        """Block until ``n`` messages may leave; returns the seconds waited."""

    def throttled(self) -> None:
        """The server answered 421/451/454: everybody slows down."""

    @property
    def factor(self) -> float: ...


class Unlimited:
    factor = 1.0

    def acquire(self, n: int = 1) -> float:
        return 0.0

    def throttled(self) -> None:
        return None


class RedisTokenBucket:
    """The shared bucket. ``key`` names it; all workers of one deployment use the same one."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        rate: float,
        burst: int = 0,
        key: str = "newsletter:send-rate",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst or max(1, round(rate))
        self.key = key
        self._script = client.register_script(_LUA)
        self._sleep = sleep
        self._factor = 1.0

    @property
    def factor(self) -> float:
        return self._factor

    def _call(self, want: int) -> float:
        import redis

        try:
            wait, factor = self._script(
                keys=[self.key],
                args=[self.rate, self.burst, want, DECREASE, MIN_FACTOR, RECOVERY],
            )
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"rate limiter: {exc}") from exc
        self._factor = float(factor)
        return float(wait)

    def acquire(self, n: int = 1) -> float:
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst}")
        waited = 0.0
        while (wait := self._call(n)) > 0:
            wait = min(wait, 1.0)  # look again at least every second: the factor may recover
            self._sleep(wait)
            waited += wait
        return waited

    def throttled(self) -> None:
        # the slow-down is advice; the next acquire reports a Redis that stays away
        with contextlib.suppress(LimiterUnavailable):
            self._call(0)


class LocalTokenBucket:
    """The same bucket for one process (threads), when there is no Redis."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst or max(1, round(rate))
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._ts = clock()
        self._factor = 1.0
        self._lock = threading.Lock()

    @property
    def factor(self) -> float:
        return self._factor

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._ts)
        self._ts = now
        self._factor = min(1.0, self._factor + elapsed * RECOVERY)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate * self._factor)

    def acquire(self, n: int = 1) -> float:
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst}")
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens + 1e-9 >= n:  # float refills land a hair short
                    self._tokens = max(0.0, self._tokens - n)
                    return waited
                wait = min(1.0, (n - self._tokens) / (self.rate * self._factor))
            self._sleep(wait)
            waited += wait

    def throttled(self) -> None:
        with self._lock:
            self._refill()
            self._factor = max(MIN_FACTOR, self._factor * DECREASE)
            self._tokens = min(self._tokens, 0.0)


_limiters: dict[tuple[str | None, float, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(redis_url: str | None, rate: float, burst: int = 0) -> RateLimiter:
    """The process's limiter for these settings (one Redis connection pool per process)."""
    key = (redis_url, rate, burst)
    with _limiters_lock:
        current = _limiters.get(key)
        if current is None:
            if rate <= 0:
                current = Unlimited()
            elif redis_url:
                import redis

                client = redis.Redis.from_url(redis_url, socket_timeout=5, health_check_interval=30)
                current = RedisTokenBucket(client, rate=rate, burst=burst)
            else:
                current = LocalTokenBucket(rate=rate, burst=burst)
            _limiters[key] = current
        return current
