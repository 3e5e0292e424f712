"""One batch's sending loop: for each claimed row, render, sign, send and record its outcome.

``batch.run_batch`` claims the rows and builds a ``Run``; the loop here looks at the issue's
status every ``STATUS_CHECK_EVERY`` messages (pause and cancel take effect there), takes tokens
from the rate limiter, renews the claim's lease on a slow batch, and lets the circuit breaker,
the webhooks and the limiter react to each outcome.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from newsletter import webhooks
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput, TransportError
from newsletter.models import utcnow
from newsletter.sending import controls, edition_pick, ledger, outcomes, probe
from newsletter.sending.breaker import CircuitBreaker
from newsletter.sending.hands import Hand, Hands
from newsletter.sending.outcomes import Kind, Outcome, RetryPolicy
from newsletter.sending.prepare import Prepared
from newsletter.sending.ratelimit import LimiterUnavailable, RateLimiter
from newsletter.sending.recipients import recipient
from newsletter.sending.recorder import Recorder
from newsletter.sending.results import BatchResult
from newsletter.transports import Announcing, Transport

#: how many messages between two looks at the issue's status (pause/cancel take effect here)
STATUS_CHECK_EVERY = 25
log = logging.getLogger(__name__)


class Run:
    """One batch's sending loop."""

    def __init__(
        self,
        settings: Settings,
        prep: Prepared,
        transport: Transport,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        result: BatchResult,
        rec: Recorder,
    ) -> None:
        self.settings, self.prep, self.transport, self.rec = settings, prep, transport, rec
        self.limiter, self.breaker, self.result = limiter, breaker, result
        self.issue_id: int = prep.issue.id  # type: ignore[assignment]
        self.generation: datetime | None = None
        self.tokens = 0
        self.hooks: frozenset[str] = frozenset()  # webhook events some endpoint wants
        self.chunk = max(1, min(10, getattr(limiter, "burst", 10) // 4))
        self.retry = RetryPolicy(settings.max_attempts, settings.retry_base_seconds)
        #: the transport, where it can announce the next message (``send_then``)
        self.announcer = transport if isinstance(transport, Announcing) else None
        self.held: set[int] = set()  # the batch's rows whose lease it still holds
        self.renewed = time.monotonic()
        #: (delivery id, its message or the outcome that stops it, or what building it raised):
        #: the next row's message, built while the server read the one before
        self._prebuilt: tuple[int, Outcome | tuple[str, bytes] | Exception] | None = None

    def send_all(self, claimed: list[ledger.Claimed], hands: Hands) -> None:
        lease = claimed[0].lease
        self.held = {r.delivery_id for r in claimed}
        self.renewed = time.monotonic()
        # where the transport can, each message's end opens the next one's transaction (one
        # round trip a message): that row is let in (status, rate, lease, hand) before
        # this one leaves, its hand held until it lands. PostgreSQL only, where a hand of its
        # own can be open beside the one in flight
        looks_ahead = self.rec.sends_ahead and self.announcer is not None
        verdict: Hand | _Stop | None = None
        for index, row in enumerate(claimed):
            if verdict is None:
                verdict = self._let_in(claimed, index, hands, landed_before=index)
            if isinstance(verdict, _Stop):
                if verdict is _STOPPED:
                    rest = [r.delivery_id for r in claimed[index:]]
                    self.rec.call(ledger.release, delivery_ids=rest, lease=lease)
                    self.rec.call(controls.settle_cancelled, issue_id=self.issue_id)
                    self.result.stopped = True
                    return
                self.result.lost += 1  # _LOST
                verdict = None
                continue
            hand, verdict = verdict, None
            then: tuple[ledger.Claimed, Hand] | None = None
            if looks_ahead and index + 1 < len(claimed):
                verdict = self._let_in(claimed, index + 1, hands, landed_before=index)
                following = claimed[index + 1]
                if isinstance(verdict, Hand) and following.active and verdict.allows(following):
                    then = (following, verdict)
            self.handle(row, hand, then)
            # the lock goes as soon as the hand's last reply is in (and the row let in next has
            # one of its own, or this one, kept)
            hands.landed_through(index, keep=index + 1 if isinstance(verdict, Hand) else index)
            if self.result.stopped:  # the circuit breaker tripped
                if then is not None:
                    self._abandon()
                rest = [r.delivery_id for r in claimed[index + 1 :]]
                self.rec.call(ledger.release, delivery_ids=rest, lease=lease)
                return

    def _let_in(
        self, claimed: list[ledger.Claimed], index: int, hands: Hands, *, landed_before: int
    ) -> Hand | _Stop:
        """Whether row ``index`` may go: the hand it goes in, or ``_STOPPED`` (paused,
        cancelled, no rate budget) or ``_LOST`` (its lease went to another batch). Every message
        before ``landed_before`` has its reply."""
        row = claimed[index]
        if self._must_stop(index, row, unsent=index - landed_before):
            return _STOPPED
        if time.monotonic() - self.renewed > self.settings.lease_seconds / 3:
            # a slow batch (rate limit, slow server) keeps its rows; rows whose lease ran
            # out anyway belong to another batch now and are not sent from here
            self.held = self.rec.call(
                ledger.renew,
                delivery_ids=[r.delivery_id for r in claimed[landed_before:]],
                lease=claimed[0].lease,
                lease_seconds=self.settings.lease_seconds,
            )
            self.renewed = time.monotonic()
        if row.delivery_id not in self.held:
            return _LOST
        hand = hands.current(index)
        if hand is None:  # every earlier message has its reply, or the hands allow one more
            hands.settle(landed_before)
            hand = hands.take(claimed, index)
        return hand

    def _abandon(self) -> None:
        """The row announced to the transport will not go after all."""
        if self.announcer is not None:
            self.announcer.abandon()

    def _must_stop(self, index: int, row: ledger.Claimed, *, unsent: int = 0) -> bool:
        """Paused or cancelled (looked at every few messages), or no rate budget to be had
        (``unsent``: rows let in before this one, not sent yet, each with a token of its own)."""
        if index and index % STATUS_CHECK_EVERY == 0 and not self._still_sending():
            return True
        if self.tokens <= unsent and row.active:
            try:
                self.limiter.acquire(self.chunk)
                self.tokens += self.chunk
            except LimiterUnavailable as exc:
                log.warning(
                    "issue %s: %s; batch stopped",
                    self.issue_id,
                    exc,
                    extra={"issue_id": self.issue_id},
                )
                return True
        return False

    def _still_sending(self) -> bool:
        """Sending (or a standing issue, or a sent one's late rows): not paused nor cancelled."""
        return self.rec.call(ledger.still_claimable, issue_id=self.issue_id)

    def handle(
        self, row: ledger.Claimed, hand: Hand, then: tuple[ledger.Claimed, Hand] | None = None
    ) -> None:
        """Send one row (announcing ``then``, the row let in next, and its hand), record its
        outcome, and let the rest of the batch react to it."""
        outcome = self.send_one(row, hand, then)
        if outcome.delivered:
            self.tokens -= 1
        self.settle(row, outcome, hand)

    def settle(self, row: ledger.Claimed, outcome: Outcome, hand: Hand) -> None:
        """Record one row's outcome and let the rest of the batch react to it. A message sent
        is recorded ahead where the recorder can: the statement goes to the server now and its
        reply is read once the next message is built, before that one leaves (``send_one``),
        so a worker killed or a database lost re-sends at most the message in flight, as when
        the batch waited for each reply."""
        if outcome.kind is Kind.sent and row.lease is not None and self.rec.sends_ahead:
            sql, values = ledger.record_sent_statement(
                delivery_id=row.delivery_id,
                message_id=outcome.message_id or "",
                response=outcome.response,
                lease=row.lease,
            )
            self.rec.ahead(sql, values, lambda count: self._recorded(row, count == 1))
        else:
            recorded = self.rec.call(
                outcomes.record,
                row,
                outcome,
                issue_id=self.issue_id,
                retry=self.retry,
                subscriptions=hand.conn,
            )
            if outcome.kind is Kind.sent:
                self._recorded(row, recorded)
        self.result.count(outcome)
        if outcome.kind in (Kind.failed, Kind.local, Kind.bounced):
            _log_failed(self.issue_id, row.delivery_id, outcome.response)
        event = outcomes.webhook_event(outcome, row, max_attempts=self.retry.max_attempts)
        if event is not None:
            self.hook(event, row, outcome)
        if outcome.throttled:
            self.limiter.throttled()
        if outcome.server_trouble is not None:
            self.observe(
                failed=outcome.server_trouble,
                reply=outcome.response,
                permanent=outcome.kind is Kind.failed,
            )

    def _recorded(self, row: ledger.Claimed, recorded: bool) -> None:
        if not recorded:
            log.warning(
                "delivery %s: sent after its lease was lost",
                row.delivery_id,
                extra={"issue_id": self.issue_id, "delivery_id": row.delivery_id},
            )

    def build(self, row: ledger.Claimed, hand: Hand) -> Outcome | tuple[str, bytes]:
        """(Message-ID, the signed message) for one row, or the outcome that stops it here."""
        if not row.active or not hand.allows(row):  # left since the start, or since the claim
            return Outcome(Kind.skipped, "no longer subscribed")
        prep = self.prep
        try:
            person = recipient(
                self.settings,
                prep,
                subscriber_id=row.subscriber_id,
                email=row.email,
                name=row.name,
                variant=row.variant,
            )
            template, language = edition_pick.template_for(self.settings, prep, row.language)
            person = edition_pick.greeted(person, language)
            if prep.signer is None:
                mid, data = template.render(person)
            else:
                mid, data, relaxed = template.render_relaxed(person)
                data = prep.signer.sign(data, relaxed_body_of_it=relaxed)
        except InvalidInput as exc:  # our formatting problem, never the recipient's bounce
            return Outcome(Kind.local, f"local: {exc}")
        return mid, data

    def send_one(
        self, row: ledger.Claimed, hand: Hand, then: tuple[ledger.Claimed, Hand] | None = None
    ) -> Outcome:
        """Render, sign and hand over one message (announcing ``then``'s transaction after it,
        where the transport can, and building its message while the server reads this one);
        what became of it (nothing recorded yet)."""
        built = self._built(row, hand)
        if isinstance(built, Outcome):
            self._abandon()  # this row was announced, perhaps: its transaction goes unfinished
            return built
        mid, data = built
        self.rec.catch_up()  # the last message's record confirmed before this one leaves
        try:
            if then is not None and self.announcer is not None:
                following, its_hand = then
                reply = self.announcer.send_then(
                    self.settings.bounce_address,
                    row.email,
                    data,
                    following.email,
                    lambda: self._prebuild(following, its_hand),
                )
            else:
                reply = self.transport.send(self.settings.bounce_address, row.email, data)
        except TransportError as exc:
            return outcomes.classify(exc, mid)
        return Outcome(Kind.sent, reply, mid)

    def _built(self, row: ledger.Claimed, hand: Hand) -> Outcome | tuple[str, bytes]:
        """The row's message: built already while the one before was read, or now."""
        prebuilt, self._prebuilt = self._prebuilt, None
        if prebuilt is None or prebuilt[0] != row.delivery_id:
            return self.build(row, hand)
        built = prebuilt[1]
        if isinstance(built, Exception):  # raised where building it would have
            raise built
        return built

    def _prebuild(self, row: ledger.Claimed, hand: Hand) -> None:
        """Build the next row's message now (the transport's ``meanwhile``: it must not raise;
        an error is raised at that row's turn)."""
        try:
            self._prebuilt = (row.delivery_id, self.build(row, hand))
        except Exception as exc:  # raised again at its own turn
            self._prebuilt = (row.delivery_id, exc)

    def hook(self, event: str, row: ledger.Claimed, outcome: Outcome) -> None:
        """Queue a webhook event; a no-op unless an endpoint wants it. Never stops the send."""
        if event not in self.hooks:
            return
        payload = {
            "issue_id": self.issue_id,
            "delivery_id": row.delivery_id,
            "subscriber_id": row.subscriber_id,
            "email": row.email,
            "message_id": outcome.message_id,
            "smtp_response": outcome.response[:1000],
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            self.rec.once(webhooks.emit, event, payload)  # not twice: no duplicate event
        except SQLAlchemyError:
            log.exception("delivery %s: %s webhook not queued", row.delivery_id, event)

    def observe(self, *, failed: bool, reply: str = "", permanent: bool = False) -> None:
        verdict = self.breaker.record(
            self.issue_id, self.generation, failed=failed, reply=reply, permanent=permanent
        )
        if verdict.tripped:
            # the relay down (temporary failures): probed later, and resumed when it answers
            probe_at = probe.first_probe_at(self.settings, utcnow()) if verdict.relay_down else None
            if self.rec.call(
                controls.trip, issue_id=self.issue_id, reason=verdict.reason, probe_at=probe_at
            ):
                log.warning(
                    "issue %s paused: %s",
                    self.issue_id,
                    verdict.reason,
                    extra={"issue_id": self.issue_id},
                )
            self.result.stopped = True


class _Stop:
    """A row not let in: the batch stops there, or the row went to another batch."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_STOPPED = _Stop("stopped")
_LOST = _Stop("lost")


def _log_failed(issue_id: int, delivery_id: int, response: str) -> None:
    log.warning(
        "issue %s: delivery %s failed: %s",
        issue_id,
        delivery_id,
        response,
        extra={"issue_id": issue_id, "delivery_id": delivery_id, "response": response},
    )
