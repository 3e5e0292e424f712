"""A temporary failure with no server reached (every relay out, none would connect) is the
relay's outage, not the message's: it uses no try, no rate-limit token, and never says the
delivery failed; a server's own 4xx does all three as before."""

from __future__ import annotations

from newsletter.sending.ledger import Claimed
from newsletter.sending.outcomes import Kind, classify, webhook_event
from newsletter.transports import TemporaryFailure

ROW = Claimed(1, 1, "olga@example.org", "Olga", attempts=5, active=True)


def test_no_server_reached_is_a_retry_that_uses_nothing_up() -> None:
    outage = classify(TemporaryFailure("no relay to send through", connecting=True), "<m@x>")

    assert outage.kind is Kind.retry and outage.unsent
    assert not outage.delivered  # no token of the shared rate
    assert outage.server_trouble is True  # the circuit breaker still counts it: it pauses
    assert webhook_event(outage, ROW, max_attempts=5) is None


def test_a_servers_4xx_is_a_counted_retry_that_gives_up_at_the_last_try() -> None:
    busy = classify(TemporaryFailure("451 4.3.0 busy", code=451), "<m@x>")

    assert busy.kind is Kind.retry and not busy.unsent
    assert busy.delivered and busy.throttled
    assert webhook_event(busy, ROW, max_attempts=5) == "delivery.failed"
    assert webhook_event(busy, ROW, max_attempts=6) is None
