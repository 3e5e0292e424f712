"""Caps per receiving-domain group, for a relay marked ``caps`` (one that talks to the big
mailbox providers' MX hosts itself): messages per connection and a rate per group.

A recipient's domain falls in one group: gmail (gmail.com, googlemail.com), yahoo (yahoo.*,
ymail.com, aol.com), microsoft (outlook.*, hotmail.*, live.*, msn.com) or others. ``relays``
keeps one connection per group to such a relay and closes it after the group's
``per_connection`` messages; the rate is a token bucket per relay and group shared by every
worker (``ratelimit``'s: Redis when there is one, else this process's).
"""

from __future__ import annotations

import threading

from newsletter.config_relays import GroupCap
from newsletter.sending.ratelimit import LocalTokenBucket, RateLimiter, RedisTokenBucket

_EXACT = {
    "gmail.com": "gmail",
    "googlemail.com": "gmail",
    "ymail.com": "yahoo",
    "aol.com": "yahoo",
    "msn.com": "microsoft",
}
#: the first label of the domain (yahoo.co.uk, outlook.de, hotmail.fr, live.com ...)
_FIRST_LABEL = {
    "yahoo": "yahoo",
    "outlook": "microsoft",
    "hotmail": "microsoft",
    "live": "microsoft",
}


def group_of(address: str) -> str:
    """The receiving-domain group of an address."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if domain in _EXACT:
        return _EXACT[domain]
    first, dot, rest = domain.partition(".")
    if dot and rest and first in _FIRST_LABEL:
        return _FIRST_LABEL[first]
    return "others"


class GroupLimits:
    """The caps of each group, and their shared rate buckets (made on first use)."""

    def __init__(self, caps: dict[str, GroupCap], redis_url: str | None) -> None:
        self.caps, self.redis_url = caps, redis_url
        self._buckets: dict[tuple[str, str], RateLimiter] = {}
        self._lock = threading.Lock()

    def cap(self, group: str) -> GroupCap:
        return self.caps.get(group, GroupCap())

    def wait_turn(self, relay: str, group: str) -> float:
        """Block until one more message of ``group`` may go through ``relay``; seconds waited."""
        rate = self.cap(group).rate
        if rate <= 0:
            return 0.0
        return self._bucket(relay, group, rate).acquire(1)

    def _bucket(self, relay: str, group: str, rate: float) -> RateLimiter:
        with self._lock:
            bucket = self._buckets.get((relay, group))
            if bucket is None:
                burst = max(1, round(rate))
                if self.redis_url:
                    import redis  # here: a process without Redis (the demo) never loads it

                    client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
                    key = f"newsletter:group-rate:{relay}:{group}"
                    bucket = RedisTokenBucket(client, rate=rate, burst=burst, key=key)
                else:
                    bucket = LocalTokenBucket(rate=rate, burst=burst)
                self._buckets[(relay, group)] = bucket
            return bucket


_limits: dict[tuple[str | None, tuple[tuple[str, GroupCap], ...]], GroupLimits] = {}
_limits_lock = threading.Lock()


def limits_for(caps: dict[str, GroupCap], redis_url: str | None) -> GroupLimits:
    """The process's group limits for these caps (one bucket per relay and group)."""
    key = (redis_url, tuple(sorted(caps.items())))
    with _limits_lock:
        if key not in _limits:
            _limits[key] = GroupLimits(caps, redis_url)
        return _limits[key]
