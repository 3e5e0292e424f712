"""What became of one message, and recording it: one ``Outcome`` per row, one ``record`` call.

``classify`` turns what the transport did (a reply, or a temporary or permanent failure) into
an ``Outcome``; ``record`` writes it to the ledger (and, for a bad mailbox, to the subscription
and the suppression list) on the batch's autocommit connection. What the batch does beyond
that (webhooks, the circuit breaker, the rate limiter) it reads off the same outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from newsletter.audience import suppression
from newsletter.exceptions import PermanentFailure, TemporaryFailure, TransportError
from newsletter.sending import ledger
from newsletter.sending.ledger import Claimed, Executor
from newsletter.sending.ratelimit import THROTTLE_CODES

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_CODES = frozenset({550, 551, 553})


class Kind(StrEnum):
    sent = "sent"
    retry = "retry"  # a temporary failure: back to pending, later (or failed when out of tries)
    failed = "failed"  # a permanent failure that is not about the mailbox
    bounced = "bounced"  # a permanent failure about the mailbox (5.1.x): the address is dropped
    local = "local"  # refused on our side (no server reply): never the relay's fault
    skipped = "skipped"  # the subscriber left after the send started


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    response: str
    message_id: str | None = None
    code: int | None = None
    #: a retry for which no server was reached (every relay out, or none would connect): the
    #: relay's outage, not the message's, so it does not use up one of the message's tries
    unsent: bool = False

    @property
    def delivered(self) -> bool:
        """Whether a message went to the server (it used a token of the rate limit)."""
        return self.kind not in (Kind.local, Kind.skipped) and not self.unsent

    @property
    def throttled(self) -> bool:
        """A 421/451/454 reply: the shared rate slows down."""
        return self.kind is Kind.retry and self.code in THROTTLE_CODES

    @property
    def server_trouble(self) -> bool | None:
        """For the circuit breaker: True a failure of the server, False a success, None neither."""
        if self.kind in (Kind.sent, Kind.bounced):
            return False
        if self.kind in (Kind.retry, Kind.failed):
            return True
        return None


def is_bad_mailbox(code: int | None, response: str) -> bool:
    """5.1.x (bad address) is a bounce; 5.7.1 (policy) or 5.6.x (content) is not.

    Without an enhanced status code, only the mailbox reply codes 550/551/553 count.
    """
    enhanced = _ENHANCED.search(response)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in _MAILBOX_CODES


def classify(error: TransportError, message_id: str | None) -> Outcome:
    """The outcome of a send the transport refused."""
    if isinstance(error, TemporaryFailure):
        return Outcome(Kind.retry, str(error), message_id, error.code, unsent=error.connecting)
    if isinstance(error, PermanentFailure) and error.code is not None:
        kind = Kind.bounced if is_bad_mailbox(error.code, error.response) else Kind.failed
        return Outcome(kind, error.response, message_id, error.code)
    return Outcome(Kind.local, error.response or str(error), message_id)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float


def record(
    conn: Executor,
    row: Claimed,
    outcome: Outcome,
    *,
    issue_id: int,
    retry: RetryPolicy,
    subscriptions: Executor | None = None,
) -> bool:
    """Write ``outcome`` for ``row`` (only while this claim holds it); False when it did not.

    A bad mailbox's subscription is marked on ``subscriptions`` (the connection of the hand that
    holds that row's lock, ``sending.hands``), else on ``conn``."""
    if outcome.kind is Kind.sent:
        return ledger.record_sent(
            conn,
            delivery_id=row.delivery_id,
            message_id=outcome.message_id or "",
            response=outcome.response,
            lease=row.lease,
        )
    if outcome.kind is Kind.skipped:
        return ledger.record_skipped(conn, delivery_id=row.delivery_id, reason=outcome.response)
    if outcome.kind is Kind.retry:
        return ledger.record_retry(
            conn,
            delivery_id=row.delivery_id,
            attempts=row.attempts,
            response=outcome.response,
            max_attempts=retry.max_attempts,
            base_seconds=retry.base_seconds,
            lease=row.lease,
            counted=not outcome.unsent,
        )
    recorded = ledger.record_failed(
        conn, delivery_id=row.delivery_id, response=outcome.response, lease=row.lease
    )
    if outcome.kind is Kind.bounced:
        ledger.mark_bounced(
            subscriptions if subscriptions is not None else conn,
            subscriber_id=row.subscriber_id,
            issue_id=issue_id,
        )
        suppression.suppress(conn, row.email, suppression.Reason.bounced)
    return recorded


def webhook_event(outcome: Outcome, row: Claimed, *, max_attempts: int) -> str | None:
    """The ``delivery.*`` webhook event an outcome emits, if any."""
    if outcome.kind is Kind.sent:
        return "delivery.sent"
    if outcome.kind is Kind.bounced:
        return "delivery.bounced"
    if outcome.kind in (Kind.failed, Kind.local):
        return "delivery.failed"
    if outcome.kind is Kind.retry and row.attempts >= max_attempts and not outcome.unsent:
        return "delivery.failed"  # the retry gave up (a try given back never does)
    return None
