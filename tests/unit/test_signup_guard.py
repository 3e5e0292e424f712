"""The sign-up box's checks on their own: the signed fill time, the honeypot, the page address."""

from __future__ import annotations

import time

import pytest

from newsletter.audience.embed import SOURCE_MAX, page_source
from newsletter.audience.signup_guard import BotCounter, BotReason, issue_stamp, verdict

SECRET = "unit-secret"


def judge(*, honeypot: str | None = None, stamp: str | None, now: float) -> BotReason | None:
    return verdict(secret=SECRET, honeypot=honeypot, stamp=stamp, min_seconds=3, now=now)


def test_the_fill_time_is_measured_from_the_signed_serving_time() -> None:
    served = 1_800_000_000.0
    stamp = issue_stamp(SECRET, now=served)
    assert judge(stamp=stamp, now=served + 0.5) is BotReason.too_fast
    assert judge(stamp=stamp, now=served + 2.99) is BotReason.too_fast
    assert judge(stamp=stamp, now=served + 3.0) is None
    assert judge(stamp=stamp, now=served + 86_400) is None  # a tab left open: still a person


def test_a_stamp_not_signed_with_the_key_or_altered_is_a_bots() -> None:
    now = time.time()
    assert judge(stamp=issue_stamp("other key", now=now - 60), now=now) is BotReason.bad_stamp
    good = issue_stamp(SECRET, now=now - 60)
    assert judge(stamp=good[:-2] + ("AA" if good[-2:] != "AA" else "BB"), now=now) is (
        BotReason.bad_stamp
    )
    assert judge(stamp="garbage", now=now) is BotReason.bad_stamp


def test_the_honeypot_wins_and_a_missing_stamp_leaves_the_honeypot_alone() -> None:
    now = time.time()
    assert judge(honeypot="http://spam.example", stamp=None, now=now) is BotReason.honeypot
    old = issue_stamp(SECRET, now=now - 60)
    assert judge(honeypot="x", stamp=old, now=now) is BotReason.honeypot
    assert judge(honeypot="", stamp=None, now=now) is None
    assert judge(honeypot=None, stamp="", now=now) is None


def test_refusals_are_counted_per_reason_in_process_without_redis() -> None:
    counter = BotCounter(None)
    counter.add(BotReason.honeypot)
    counter.add(BotReason.honeypot)
    counter.add(BotReason.too_fast)
    assert counter.counts() == {"honeypot": 2, "too_fast": 1, "bad_stamp": 0}


@pytest.mark.parametrize(
    "given",
    [
        "https://news.example.org/2026/11/story?x=1#top",
        "http://localhost:8080/article",
        "HTTPS://News.Example.org/a",
    ],
)
def test_an_article_address_is_kept_as_given(given: str) -> None:
    assert page_source(given) == given
    assert page_source(f"  {given} ") == given


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "ARTICLE_URL",  # the pasted code's placeholder, left as it is
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://news.example.org/a",
        "https://user:secret@news.example.org/a",
        "https://news.example.org/" + "a" * SOURCE_MAX,
        "https://news.example.org/a\nb",
        "https://news.example.org/a b",
        "https://news.example.org:notaport/a",
        "https:///no-host",
        "/relative/path",
    ],
)
def test_anything_else_is_not_a_page(given: str | None) -> None:
    assert page_source(given) is None
