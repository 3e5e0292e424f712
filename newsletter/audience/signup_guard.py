"""Bot protection of the public sign-up without a third party: a honeypot and a minimum fill time.

- **Honeypot**: every sign-up form carries a text field (``website``) that people never see (it
  is moved off screen, ``aria-hidden``, ``tabindex=-1``, ``autocomplete=off``); form-filling bots
  fill it. A sign-up with it filled is a bot's.
- **Minimum fill time**: a form served by this service (the sign-up box, ``GET /embed/<slug>``)
  carries ``issued``, the time it was served signed with the secret key (itsdangerous); sent back
  sooner than ``NEWSLETTER_SIGNUP_MIN_FILL_SECONDS`` it is a bot's, and so is a stamp that does
  not verify (made up or altered). A form without a stamp (the static snippet pasted into an
  article template cannot be signed per page view) is judged by the honeypot alone.

A bot's sign-up is answered exactly as a person's (the caller runs the same sign-up and rolls it
back: same status, same page, the same statements), so a bot cannot learn what gave it away;
nothing is stored and nothing is sent. Refusals are counted per reason for ``/metrics``
(``newsletter_signup_bots_total{reason}``): in Redis when one is shared, so one scrape covers
every web process, else in this process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum

import redis
from itsdangerous import BadSignature, URLSafeSerializer
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from newsletter.audience.abuse import redis_client
from newsletter.config import Settings

__all__ = [
    "HONEYPOT_FIELD",
    "BotCounter",
    "BotReason",
    "BotsCollector",
    "bot_counter",
    "issue_stamp",
    "verdict",
]

log = logging.getLogger(__name__)

#: the honeypot's field name: a field bots like to fill
HONEYPOT_FIELD = "website"
_SALT = "signup-form-issued"
_KEY = "newsletter:signup:bots"


class BotReason(StrEnum):
    honeypot = "honeypot"  # the hidden field was filled
    too_fast = "too_fast"  # sent back sooner than the minimum fill time
    bad_stamp = "bad_stamp"  # an ``issued`` stamp that does not verify


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def issue_stamp(secret: str, *, now: float | None = None) -> str:
    """The signed time a form is served at (milliseconds since the epoch)."""
    issued_ms = int((time.time() if now is None else now) * 1000)
    return str(_serializer(secret).dumps(issued_ms))


def verdict(
    *,
    secret: str,
    honeypot: str | None,
    stamp: str | None,
    min_seconds: float,
    now: float | None = None,
) -> BotReason | None:
    """Why this submission is a bot's, or None for (what looks like) a person's."""
    if honeypot:
        return BotReason.honeypot
    if not stamp:
        return None  # the static snippet: honeypot only
    try:
        issued_ms = _serializer(secret).loads(stamp)
    except BadSignature:
        return BotReason.bad_stamp
    if not isinstance(issued_ms, int) or isinstance(issued_ms, bool):
        return BotReason.bad_stamp
    elapsed = (time.time() if now is None else now) - issued_ms / 1000
    return BotReason.too_fast if elapsed < min_seconds else None


class BotCounter:
    """Bot refusals per reason: a Redis hash when one is shared, else in this process."""

    def __init__(self, client: redis.Redis | None) -> None:
        self._client = client
        self._local: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, reason: BotReason) -> None:
        if self._client is not None:
            try:
                self._client.hincrby(_KEY, str(reason), 1)
                return
            except redis.RedisError as exc:
                log.warning("bot refusal counted in this process only (Redis: %s)", exc)
        with self._lock:
            self._local[str(reason)] += 1

    def counts(self) -> dict[str, int]:
        shared: dict[str, int] = {}
        if self._client is not None:
            try:
                raw = self._client.hgetall(_KEY)
                shared = {_text(k): int(v) for k, v in raw.items()}
            except redis.RedisError as exc:
                log.warning("bot refusals not read (Redis: %s)", exc)
        with self._lock:
            local = dict(self._local)
        return {r.value: shared.get(r.value, 0) + local.get(r.value, 0) for r in BotReason}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def bot_counter(settings: Settings) -> BotCounter:
    """The counter for ``settings``: on the shared Redis when there is one."""
    url = settings.shared_redis_url
    return BotCounter(redis_client(url) if url else None)


class BotsCollector(Collector):
    """``newsletter_signup_bots_total{reason}`` at each scrape."""

    def __init__(self, counter: BotCounter) -> None:
        self.counter = counter

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "newsletter_signup_bots",
            "Sign-ups refused as a bot's (answered as a person's, nothing stored or sent)",
            labels=["reason"],
        )
        for reason, count in self.counter.counts().items():
            family.add_metric([reason], count)
        yield family
