"""A batch's sending loop with several messages in flight, one per connection of a pool.

``batch`` builds and records; here the loop keeps up to ``pool.size`` messages on the pool's
connections (``transports.pool``) and records each reply in claim order, so that a relay's
round trips overlap instead of adding up.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future
from typing import Protocol

from newsletter.config import Settings
from newsletter.exceptions import TransportError
from newsletter.sending import controls, ledger, outcomes
from newsletter.sending.hands import Hand, Hands
from newsletter.sending.outcomes import Kind, Outcome
from newsletter.sending.recorder import Recorder
from newsletter.transports.pool import TransportPool


class Run(Protocol):
    """What this loop needs of ``send_loop.Run``."""

    settings: Settings
    issue_id: int
    tokens: int
    rec: Recorder

    @property
    def result(self) -> BatchCounts: ...

    def _must_stop(self, index: int, row: ledger.Claimed) -> bool: ...

    def build(self, row: ledger.Claimed, hand: Hand) -> Outcome | tuple[str, bytes]: ...

    def settle(self, row: ledger.Claimed, outcome: Outcome, hand: Hand) -> None: ...


class BatchCounts(Protocol):
    lost: int
    stopped: bool


def send_all(run: Run, claimed: list[ledger.Claimed], pool: TransportPool, hands: Hands) -> None:
    """``send_all`` with up to ``pool.size`` messages in flight on the pool's connections.

    The loop builds each message here and hands it to a free connection; when every
    connection is busy it waits for the oldest message in flight and records its outcome
    (in claim order). Before a stop (pause, cancel, the breaker) every message in flight is
    recorded and only the rows never handed over are released. Rows are taken in ``hands``
    just before they leave; a hand ends once each of its messages has landed.
    """
    lease = claimed[0].lease
    held = {r.delivery_id for r in claimed}
    renewed = time.monotonic()
    flight: deque[tuple[int, Hand, ledger.Claimed, str, Future[str]]] = deque()

    def land_oldest() -> None:
        _index, hand, row, mid, future = flight.popleft()
        try:
            outcome = Outcome(Kind.sent, future.result(), mid)
        except TransportError as exc:
            outcome = outcomes.classify(exc, mid)
        run.settle(row, outcome, hand)

    def hand_for(index: int) -> Hand | None:
        """The hand of row ``index``, landing the oldest messages while two hands are open."""
        hand = hands.current(index)
        while hand is None:
            hands.settle(flight[0][0] if flight else index)
            if not hands.full:
                return hands.take(claimed, index)
            land_oldest()
            if run.result.stopped:
                return None
        return hand

    def stop_here(rest: list[int]) -> None:
        while flight:
            land_oldest()
        run.rec.call(ledger.release, delivery_ids=rest, lease=lease)

    for index, row in enumerate(claimed):
        rest = [r.delivery_id for r in claimed[index:]]
        if run._must_stop(index, row):
            stop_here(rest)
            run.rec.call(controls.settle_cancelled, issue_id=run.issue_id)
            run.result.stopped = True
            return
        if time.monotonic() - renewed > run.settings.lease_seconds / 3:
            held = run.rec.call(
                ledger.renew,
                delivery_ids=rest,
                lease=lease,
                lease_seconds=run.settings.lease_seconds,
            )
            renewed = time.monotonic()
        if row.delivery_id not in held:
            run.result.lost += 1
            continue
        hand = hand_for(index)
        if hand is None:  # the circuit breaker tripped on a landed message: this row stays
            stop_here(rest)
            return
        built = run.build(row, hand)
        if isinstance(built, Outcome):  # skipped, or a message we could not build
            run.settle(row, built, hand)
        else:
            if len(flight) >= pool.size:
                land_oldest()
                if run.result.stopped:  # the circuit breaker tripped: this row stays
                    stop_here(rest)
                    return
            mid, data = built
            run.tokens -= 1  # taken when it leaves (the reply may come after the next)
            run.rec.catch_up()  # a record sent ahead is confirmed before another message leaves
            future = pool.submit(run.settings.bounce_address, row.email, data)
            flight.append((index, hand, row, mid, future))
        if run.result.stopped:
            stop_here(rest[1:])
            return
    while flight:
        land_oldest()
