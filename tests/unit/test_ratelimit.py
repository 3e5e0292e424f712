"""The send rate: a Redis token bucket shared by worker processes, and the slow-down."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from newsletter.sending import ratelimit
from newsletter.sending.ratelimit import LimiterUnavailable, LocalTokenBucket, RedisTokenBucket
from newsletter.transports.sink import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_local_bucket_gives_the_burst_then_meters_at_the_rate() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.acquire() == 0
    waited = sum(bucket.acquire() for _ in range(10))
    assert waited == pytest.approx(1.0)  # ten more at 10/s


def test_local_bucket_slows_down_when_throttled_and_recovers() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    bucket.throttled()
    assert bucket.factor == pytest.approx(ratelimit.DECREASE)
    bucket.throttled()
    assert bucket.factor == pytest.approx(ratelimit.DECREASE**2)
    clock.now += 10  # quiet for a while: back to full speed
    bucket.acquire()
    assert bucket.factor == 1.0


def test_a_bucket_refuses_more_than_its_size() -> None:
    with pytest.raises(ValueError, match="bucket of 2"):
        LocalTokenBucket(rate=1, burst=2).acquire(3)


def test_no_rate_means_no_limit() -> None:
    limiter = ratelimit.limiter_for(None, 0)
    assert isinstance(limiter, ratelimit.Unlimited)
    assert limiter.acquire(10_000) == 0


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    name = f"test:rate:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


def _take_for(
    redis_url: str, key: str, rate: float, burst: int, seconds: float, out: object
) -> None:
    """A worker process: take tokens one by one for ``seconds``; report how many."""
    bucket = RedisTokenBucket(redis.Redis.from_url(redis_url), rate=rate, burst=burst, key=key)
    taken, end = 0, time.monotonic() + seconds
    first = last = 0.0
    while time.monotonic() < end:
        bucket.acquire()
        last = time.time()  # one clock for both processes
        first = first or last
        taken += 1
    out.put((taken, first, last))  # type: ignore[attr-defined]


def test_the_rate_holds_across_two_worker_processes(redis_url: str, key: str) -> None:
    rate, burst, seconds = 50.0, 5, 2.0
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_take_for, args=(redis_url, key, rate, burst, seconds, out))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    reports = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=10)
    counts = [taken for taken, _, _ in reports]
    total = sum(counts)
    # alone, each would take as fast as Redis answers (thousands); together they share 50/s.
    # Upper bound: a token bucket hands out at most its burst plus the rate times the span
    # between the first and the last token taken by either (the processes may start seconds
    # apart on a loaded machine, so the span is measured, not assumed); 1 token of clock slack
    span = max(last for _, _, last in reports) - min(first for _, first, _ in reports)
    assert total <= burst + rate * span + 1
    assert total >= rate * seconds * 0.6  # and the bucket does hand its rate out
    assert min(counts) > 0


def test_a_throttle_reply_slows_every_worker_sharing_the_bucket(
    client: redis.Redis, redis_url: str, key: str
) -> None:
    first = RedisTokenBucket(client, rate=100, burst=10, key=key)
    second = RedisTokenBucket(redis.Redis.from_url(redis_url), rate=100, burst=10, key=key)
    first.acquire()
    first.throttled()
    first.throttled()
    second.acquire()  # the other worker's next look sees the lowered factor
    assert second.factor < 0.6
    assert second.factor == pytest.approx(ratelimit.DECREASE**2, abs=0.05)


def test_a_throttled_bucket_meters_slower(client: redis.Redis, key: str) -> None:
    bucket = RedisTokenBucket(client, rate=200, burst=1, key=key)
    for _ in range(5):
        bucket.throttled()  # factor 0.7^5 ~ 0.17: ~34/s, recovering at 20% of the rate per s
    start = time.monotonic()
    for _ in range(10):
        bucket.acquire()
    # at full speed ten tokens take 0.05 s; slowed, well over twice that
    assert time.monotonic() - start > 0.1


def test_an_unreachable_redis_is_reported_not_ignored() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    bucket = RedisTokenBucket(dead, rate=10, key="x")
    with pytest.raises(LimiterUnavailable, match="rate limiter"):
        bucket.acquire()
    bucket.throttled()  # advice only: does not raise
