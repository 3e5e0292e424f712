"""Retry timing shared by the delivery ledger and the webhook queue: exponential backoff with
full jitter."""

from __future__ import annotations

import random
from datetime import timedelta

#: no retry waits longer than this, however many attempts came before
LONGEST_WAIT_SECONDS = 6 * 3600.0


def backoff(attempts: int, *, base: float, rng: random.Random | None = None) -> timedelta:
    """The wait before the next attempt: ``base`` doubled per earlier attempt, capped at six
    hours, drawn uniformly from the upper half so that retries of many rows spread out."""
    ceiling = min(base * (2 ** max(attempts - 1, 0)), LONGEST_WAIT_SECONDS)
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))
