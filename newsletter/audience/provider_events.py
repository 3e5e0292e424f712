"""Bounces and complaints from the email providers' webhooks, applied by the existing rules.

``receive`` picks the provider's reader (``PROVIDERS``: ``ses`` in ``provider_sns``;
``postmark``, ``sendgrid``, ``mailgun`` and ``generic`` in ``provider_formats``), which verifies
the request and reads its events; then each event is applied like a DSN or an ARF report
(``bounces.apply_bounce`` / ``apply_complaint``): a hard bounce makes every subscription
``bounced`` and suppresses the address, a soft one is counted (the ``soft_bounce_limit``-th in a
row is hard), a complaint makes them ``complained``, suppresses the address and counts against
the send (the complaint-rate guardrail).

The reader is found by our Message-ID when the provider reports the original's (verified with
the secret key; it also names the issue), else by the address. Each event's key is written to
``BounceReceipt`` first: an event seen before (a provider's retry, a replayed request) is
reported as ``replayed`` and changes nothing. The caller commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from newsletter.addresses import normalise_email
from newsletter.audience import bounces, provider_formats, provider_sns, receipts
from newsletter.audience.bounce_parsing import Kind, could_be_ours, our_message_id
from newsletter.audience.provider_types import Batch, Fetcher, ProviderEvent, WebhookRequest
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.tables import SUB, I

__all__ = ["PROVIDERS", "Outcome", "Receipt", "apply_event", "receive"]

Reader = Callable[[Settings, WebhookRequest, Fetcher], Batch]

PROVIDERS: dict[str, Reader] = {
    "ses": provider_sns.read_ses,
    "postmark": lambda settings, request, _fetch: provider_formats.read_postmark(settings, request),
    "sendgrid": lambda settings, request, _fetch: provider_formats.read_sendgrid(settings, request),
    "mailgun": lambda settings, request, _fetch: provider_formats.read_mailgun(settings, request),
    "generic": lambda settings, request, _fetch: provider_formats.read_generic(settings, request),
}


@dataclass
class Outcome:
    kind: str
    subscriber_id: int | None
    issue_id: int | None
    outcome: str


@dataclass
class Receipt:
    """The answer to one webhook request."""

    provider: str
    applied: int = 0
    replayed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def receive(
    session: Session, settings: Settings, provider: str, request: WebhookRequest, fetch: Fetcher
) -> Receipt:
    """Verify one webhook request of ``provider`` and apply its events (the caller commits)."""
    reader = PROVIDERS.get(provider)
    if reader is None:
        names = ", ".join(sorted(PROVIDERS))
        raise NotFound(f"no bounce webhook for {provider!r} (there are: {names})")
    if not request.body.strip():
        raise InvalidInput(f"the {provider} webhook body is empty")
    batch = reader(settings, request, fetch)
    receipt = Receipt(provider, skipped=batch.skipped, note=batch.note)
    for event in batch.events:
        outcome = apply_event(session, settings, provider, event)
        if outcome is None:
            receipt.replayed += 1
        else:
            receipt.applied += 1
            receipt.outcomes.append(outcome)
    return receipt


def _issue_exists(session: Session, issue_id: int) -> bool:
    return session.execute(select(I.c.id).where(I.c.id == issue_id)).first() is not None


def _by_address(session: Session, email: str) -> int | None:
    candidates = {email.strip(), email.strip().lower()}
    with contextlib.suppress(InvalidInput):  # not valid: looked up as given
        candidates.add(normalise_email(email))
    wanted = [c for c in candidates if could_be_ours(c)]
    if not wanted:
        return None
    row = session.execute(select(SUB.c.id).where(SUB.c.email.in_(wanted)).limit(1)).first()
    return int(row.id) if row is not None else None


def find(
    session: Session, settings: Settings, event: ProviderEvent
) -> tuple[int | None, int | None]:
    """(subscriber id, issue id) an event is about: by our Message-ID, else by its address."""
    ours = our_message_id(settings, event.message_id) if event.message_id else None
    if ours is not None:
        issue_id, subscriber_id = ours
        found = session.execute(select(SUB.c.id).where(SUB.c.id == subscriber_id)).first()
        if found is not None:
            return subscriber_id, issue_id if _issue_exists(session, issue_id) else None
    return _by_address(session, event.email), None


def apply_event(
    session: Session, settings: Settings, provider: str, event: ProviderEvent
) -> Outcome | None:
    """Apply one event; None when its key was received before (nothing changes)."""
    subscriber_id, issue_id = find(session, settings, event)
    counted = issue_id
    if event.kind == Kind.complaint and counted is None and subscriber_id is not None:
        counted = receipts.sent_issue(session, subscriber_id)
    new = receipts.record(
        session,
        key=event.key,
        source=provider,
        kind=event.kind.value,
        issue_id=counted,
        subscriber_id=subscriber_id,
        also=event.also,
    )
    if not new:
        return None
    if subscriber_id is None:
        return Outcome(event.kind.value, None, counted, f"{event.kind} for no known subscriber")
    ids = [subscriber_id]
    detail = {"provider": provider, **event.detail}
    if event.kind == Kind.complaint:
        issues = {counted} if counted is not None else set()
        text = bounces.apply_complaint(
            session, settings, ids, issues, source=provider, detail=detail
        )
    else:
        text = bounces.apply_bounce(
            session,
            settings,
            ids,
            issue_id,
            hard=event.kind == Kind.hard,
            source=provider,
            status=event.status,
            detail=detail,
        )
    return Outcome(event.kind.value, subscriber_id, counted, text)
