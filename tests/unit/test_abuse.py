"""Sign-up limits: the sliding-window log in process and on Redis, and the limiter around it."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis

from newsletter.audience import abuse
from newsletter.config import Settings
from newsletter.exceptions import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_memory_window_accepts_up_to_the_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    window = abuse.MemoryWindow(clock)
    assert [window.hit("k", limit=2, seconds=60) for _ in range(2)] == [0, 0]
    clock.now += 10
    assert window.hit("k", limit=2, seconds=60) == 50  # the first attempt leaves in 50 s
    assert window.hit("other", limit=2, seconds=60) == 0


def test_the_memory_window_slides() -> None:
    clock = Clock()
    window = abuse.MemoryWindow(clock)
    window.hit("k", limit=2, seconds=60)
    clock.now += 30
    window.hit("k", limit=2, seconds=60)
    clock.now += 31  # the first has left the window, the second has not
    assert window.hit("k", limit=2, seconds=60) == 0
    assert window.hit("k", limit=2, seconds=60) == 29


def test_refused_attempts_are_not_logged() -> None:
    clock = Clock()
    window = abuse.MemoryWindow(clock)
    window.hit("k", limit=1, seconds=60)
    for _ in range(5):
        clock.now += 10
        window.hit("k", limit=1, seconds=60)
    clock.now += 11  # 61 s after the only accepted one
    assert window.hit("k", limit=1, seconds=60) == 0


@pytest.fixture
def redis_window(redis_url: str) -> abuse.RedisWindow:
    client = redis.Redis.from_url(redis_url)
    return abuse.RedisWindow(client, prefix=f"newsletter-test:{uuid.uuid4().hex}:")


def test_the_redis_window_accepts_up_to_the_limit(redis_window: abuse.RedisWindow) -> None:
    assert [redis_window.hit("k", limit=3, seconds=60) for _ in range(3)] == [0, 0, 0]
    wait = redis_window.hit("k", limit=3, seconds=60)
    assert 59 <= wait <= 60
    assert redis_window.hit("other", limit=3, seconds=60) == 0


def test_the_redis_window_expires_its_keys(redis_window: abuse.RedisWindow, redis_url: str) -> None:
    redis_window.hit("k", limit=3, seconds=60)
    ttl = redis.Redis.from_url(redis_url).pttl(redis_window.prefix + "k")
    assert 0 < ttl <= 60_000


def limiter(window: abuse.Window, *, per_ip: int = 2, per_address: int = 1) -> abuse.SignupLimiter:
    return abuse.SignupLimiter(window, per_ip=per_ip, per_address=per_address, seconds=3600)


def test_the_limiter_raises_rate_limited_with_retry_after() -> None:
    check = limiter(abuse.MemoryWindow(Clock()))
    check.check_address("reader@example.org")
    with pytest.raises(RateLimited, match="too many sign-up attempts") as caught:
        check.check_address("Reader@Example.org")  # the same address in another case
    assert caught.value.retry_after == 3600


def test_a_limit_of_zero_means_no_limit() -> None:
    check = limiter(abuse.MemoryWindow(Clock()), per_ip=0)
    for _ in range(50):
        check.check_ip("203.0.113.9")


def test_addresses_are_not_stored_in_the_clear(
    redis_window: abuse.RedisWindow, redis_url: str
) -> None:
    limiter(redis_window).check_address("secret.person@example.org")
    keys = redis.Redis.from_url(redis_url).keys(redis_window.prefix + "*")
    assert keys and all(b"secret.person" not in k for k in keys)


def test_an_unreachable_redis_lets_sign_ups_through(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an earlier test's Celery worker set-up may have disabled loggers that existed then
    monkeypatch.setattr(abuse.log, "disabled", False)
    caplog.set_level(logging.WARNING, logger=abuse.log.name)
    settings = Settings(redis_url="redis://127.0.0.1:1/0", signup_limit_per_ip=1)
    check = abuse.signup_limiter(settings)
    check.check_ip("203.0.113.9")
    check.check_ip("203.0.113.9")
    assert "sign-up limit not checked" in caplog.text


def test_the_settings_pick_redis_when_there_is_one() -> None:
    assert isinstance(abuse.signup_limiter(Settings()).window, abuse.MemoryWindow)
    with_redis = abuse.signup_limiter(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert isinstance(with_redis.window, abuse.RedisWindow)
    assert (with_redis.per_ip, with_redis.per_address, with_redis.seconds) == (10, 3, 3600)
