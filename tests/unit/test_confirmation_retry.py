"""When a confirmation that failed goes again: a backoff while the cause is unknown; soon after
the first relay is due back while every relay is out (a backoff grown over a relay outage kept
readers waiting minutes after the relay's return: the chaos run at 10,000 lost 26-42 of 1,000
confirmations in its 180 s wait)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.audience.confirmations import (
    RETRY_BASE_SECONDS,
    RETRY_LONGEST_SECONDS,
    RETRY_SPREAD_SECONDS,
    retry_delay,
)
from newsletter.exceptions import DatabaseUnavailable, TemporaryFailure

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("retries", [0, 1, 3, 6, 7])
def test_while_every_relay_is_out_it_goes_just_after_the_first_is_back(retries: int) -> None:
    out = TemporaryFailure(
        "no relay to send through", connecting=True, retry_at=NOW + timedelta(seconds=40)
    )
    delays = [retry_delay(retries, out, now=NOW) for _ in range(200)]
    assert all(40 <= d <= 40 + RETRY_SPREAD_SECONDS for d in delays)
    assert max(delays) - min(delays) > 0.5  # spread: not every waiting reader at one instant


def test_a_relay_due_back_already_is_tried_in_a_second_or_two() -> None:
    late = TemporaryFailure("no relay", connecting=True, retry_at=NOW - timedelta(seconds=5))
    assert all(1 <= retry_delay(4, late, now=NOW) <= 1 + RETRY_SPREAD_SECONDS for _ in range(50))


@pytest.mark.parametrize(
    "exc",
    [TemporaryFailure("451 4.3.0 busy", code=451), DatabaseUnavailable("the database is away")],
)
def test_otherwise_a_full_jitter_backoff_from_5_s_to_10_min(exc: Exception) -> None:
    for retries, ceiling in [(0, 5), (1, 10), (3, 40), (6, 320), (7, 600), (12, 600)]:
        delays = [retry_delay(retries, exc, now=NOW) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays), retries
        assert max(delays) > ceiling / 2  # the whole range is used, not a fixed wait
    assert RETRY_BASE_SECONDS == 5 and RETRY_LONGEST_SECONDS == 600
