"""What comes back to the bounce and unsubscribe mailboxes: DSNs, ARF complaints, mailto.

``process_message`` classifies one raw message and applies it:

- an ARF report (``multipart/report; report-type=feedback-report``): a spam complaint, so every
  subscription of the address becomes ``complained`` and the address is suppressed (a complaint
  hurts the sending domain's reputation for all its newsletters);
- a mail whose Subject is ``unsubscribe <token>`` (the ``mailto:`` variant of List-Unsubscribe):
  the signed token's subscription (all of them for a token without a newsletter) is unsubscribed;
- a bounce (flufl.bounce reads RFC 3464 DSNs and the common non-standard formats):
  a hard bounce makes every subscription ``bounced`` and suppresses the address; a soft one
  adds one to ``soft_bounces`` and the ``soft_bounce_limit``-th in a row counts as a hard one;
- anything else is ignored, with the reason.

Reading and classifying the message (hard and soft, our Message-ID) is ``bounce_parsing``'s; this
module finds the subscribers and applies the result, each status change a guarded move
(``models.moving``). ``apply_bounce`` and ``apply_complaint`` are the same rules for events
that arrive already classified (the providers' webhooks, ``provider_events``). A complaint is
recorded against the issue it was about (``receipts``; when the Message-ID does not say, the
last issue the reader was sent) and may pause that send (``sending.complaint_rate``).

The subscriber is found by the original message's Message-ID when it is one of ours
(``<issue.subscriber.hmac@domain>``, verified with the secret key), so forwarding addresses and
rewritten recipients still point at the right person; otherwise by the failed recipients' addresses
and then by the original's To / X-Original-To / Delivered-To headers.
"""

from __future__ import annotations

import email
from dataclasses import asdict, dataclass, field
from email.message import Message
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, insert, select, update
from sqlmodel import Session

from newsletter.audience import receipts
from newsletter.audience.bounce_parsing import (
    MAX_MESSAGE_BYTES,
    Kind,
    addresses,
    classify,
    could_be_ours,
    feedback_fields,
    iter_messages,
    original,
    our_message,
    report_type,
    unsubscribe_token,
)
from newsletter.audience.lifecycle import unsubscribe
from newsletter.audience.links import Purpose, read_token
from newsletter.audience.subscribers import ERASED_DOMAIN
from newsletter.audience.suppression import Reason, suppress
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import (
    DeliveryStatus,
    Subscriber,
    SubscriptionStatus,
    moving,
    utcnow,
)
from newsletter.sending import complaint_rate
from newsletter.tables import EV, SUB, D, I, S

__all__ = [
    "MAX_MESSAGE_BYTES",
    "BounceResult",
    "Kind",
    "apply_bounce",
    "apply_complaint",
    "iter_messages",
    "process_message",
]

MAILABLE = (SubscriptionStatus.active, SubscriptionStatus.pending)


@dataclass
class BounceResult:
    kind: Kind
    subscriber_ids: list[int] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # the failed recipients, as reported
    status: str | None = None  # the DSN status code, e.g. 5.1.1
    outcome: str = ""  # what was done, or why nothing was

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- entry points


def process_message(session: Session, settings: Settings, raw: bytes) -> BounceResult:
    """Classify one raw message and apply it (the caller commits)."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return BounceResult(Kind.ignored, outcome=f"larger than {MAX_MESSAGE_BYTES} bytes")
    msg = email.message_from_bytes(raw)
    if report_type(msg) == "feedback-report":
        return _complaint(session, settings, msg)
    token = unsubscribe_token(msg)
    if token is not None:
        return _unsubscribe(session, settings, token)
    return _bounce(session, settings, msg)


def _subscriber_ids(session: Session, candidates: list[str]) -> list[int]:
    wanted = [a for a in candidates if could_be_ours(a)]
    if not wanted:
        return []
    rows = session.execute(select(SUB.c.id).where(SUB.c.email.in_(wanted))).all()
    return sorted(r.id for r in rows)


def _known(session: Session, subscriber_id: int) -> list[int]:
    return [subscriber_id] if session.get(Subscriber, subscriber_id) is not None else []


def _find(
    session: Session, settings: Settings, msg: Message, reported: list[str]
) -> tuple[list[int], int | None]:
    """(subscriber ids, issue id when known) that a bounce or complaint is about."""
    returned = original(msg)
    ours = our_message(settings, returned)
    if ours is not None:
        issue_id, subscriber_id = ours
        return _known(session, subscriber_id), issue_id
    found = _subscriber_ids(session, reported)
    if not found:
        found = _subscriber_ids(session, addresses(returned, "X-Original-To", "Delivered-To", "To"))
    return found, None


# ---------------------------------------------------------------- complaints


def _complaint(session: Session, settings: Settings, msg: Message) -> BounceResult:
    fields = feedback_fields(msg)
    reported = addresses(fields, "Original-Rcpt-To")
    ids, issue_id = _find(session, settings, msg, reported)
    result = BounceResult(Kind.complaint, ids, reported)
    if not ids:
        result.outcome = "complaint about no known subscriber"
        return result
    feedback = str(fields.get("Feedback-Type", "abuse")) if fields is not None else "abuse"
    issues: set[int] = set()
    for sid in ids:
        about = issue_id if issue_id is not None else receipts.sent_issue(session, sid)
        key = receipts.event_key("arf", about, sid)  # one complaint per reader and issue
        receipts.record(
            session, key=key, source="arf", kind="complaint", issue_id=about, subscriber_id=sid
        )
        if about is not None:
            issues.add(about)
    result.outcome = apply_complaint(
        session, settings, ids, issues, source="arf", detail={"feedback_type": feedback}
    )
    return result


def apply_complaint(
    session: Session,
    settings: Settings,
    ids: list[int],
    issues: set[int],
    *,
    source: str,
    detail: dict[str, Any],
) -> str:
    """A spam complaint: every subscription complained, the address suppressed; then each
    issue it is counted against is checked by the complaint-rate guardrail."""
    changed = _retire(session, ids, SubscriptionStatus.complained, Reason.complained)
    _events(session, ids, "complaint", source, detail)
    outcome = f"complained on {changed} subscriptions"
    for issue_id in sorted(issues):
        paused = complaint_rate.check(session, settings, issue_id)
        if paused is not None:
            outcome += f"; issue {issue_id} paused: {paused}"
    return outcome


# ---------------------------------------------------------------- mailto unsubscribe


def _unsubscribe(session: Session, settings: Settings, token: str) -> BounceResult:
    try:
        data = read_token(settings.secret_key, Purpose.unsubscribe, token)
    except InvalidInput as exc:
        return BounceResult(Kind.ignored, outcome=f"unsubscribe request: {exc}")
    ids = _known(session, data.subscriber_id)
    if not ids:
        return BounceResult(Kind.ignored, outcome="unsubscribe request for no known subscriber")
    changed = unsubscribe(
        session,
        subscriber_id=data.subscriber_id,
        newsletter_id=data.newsletter_id,
        source="mailto",
        issue_id=data.issue_id,
    )
    return BounceResult(
        Kind.unsubscribe, ids, outcome=f"unsubscribed from {len(changed)} newsletters"
    )


# ---------------------------------------------------------------- bounces


def _bounce(session: Session, settings: Settings, msg: Message) -> BounceResult:
    kind, failed, status = classify(msg)
    if kind == Kind.ignored:
        return BounceResult(Kind.ignored, outcome="not a bounce, a complaint or an unsubscribe")
    ids, issue_id = _find(session, settings, msg, failed)
    result = BounceResult(kind, ids, failed, status)
    if not ids:
        result.outcome = "bounce for no known subscriber"
        return result
    result.outcome = apply_bounce(
        session, settings, ids, issue_id, hard=kind == Kind.hard, source="dsn", status=status
    )
    return result


def apply_bounce(
    session: Session,
    settings: Settings,
    ids: list[int],
    issue_id: int | None,
    *,
    hard: bool,
    source: str,
    status: str | None,
    detail: dict[str, Any] | None = None,
) -> str:
    """A hard bounce retires the subscribers (bounced, suppressed); a soft one is counted."""
    if hard:
        changed = _retire(session, ids, SubscriptionStatus.bounced, Reason.bounced)
        _events(
            session, ids, "bounce", source, {"type": "hard", "status": status, **(detail or {})}
        )
        return f"bounced on {changed} subscriptions"
    return _soft(session, settings, ids, issue_id, status, source=source, extra=detail or {})


def _soft(
    session: Session,
    settings: Settings,
    ids: list[int],
    issue_id: int | None,
    status: str | None,
    *,
    source: str,
    extra: dict[str, Any],
) -> str:
    """Count one soft bounce; the ``soft_bounce_limit``-th in a row is a hard one."""
    now = utcnow()
    where: list[ColumnElement[bool]] = [S.c.subscriber_id.in_(ids), S.c.status.in_(MAILABLE)]
    if issue_id is not None:  # only the newsletter the bounced message came from
        where.append(
            S.c.newsletter_id
            == select(I.c.newsletter_id).where(I.c.id == issue_id).scalar_subquery()
        )
    count: ColumnElement[int] = S.c.soft_bounces + 1
    if issue_id is not None:
        # "in a row": a message of another issue sent after the last bounce and before the
        # one bouncing now got through, so the count starts again
        own = D.alias("own")
        bounced_sent_at = (
            select(own.c.sent_at)
            .where(own.c.issue_id == issue_id, own.c.subscriber_id == S.c.subscriber_id)
            .correlate(S)
            .scalar_subquery()
        )
        got_through = exists().where(
            D.c.subscriber_id == S.c.subscriber_id,
            D.c.status == DeliveryStatus.sent,
            D.c.issue_id != issue_id,
            D.c.sent_at > S.c.last_bounce_at,
            D.c.sent_at < bounced_sent_at,
        )
        count = case((got_through, 1), else_=S.c.soft_bounces + 1)
    counted = session.execute(
        update(S)
        .where(and_(*where))
        .values(soft_bounces=count, last_bounce_at=now, updated_at=now)
        .returning(S.c.subscriber_id, S.c.soft_bounces)
    ).all()
    worst = max((r.soft_bounces for r in counted), default=0)
    over = sorted(
        {r.subscriber_id for r in counted if r.soft_bounces >= settings.soft_bounce_limit}
    )
    detail = {"type": "soft", "status": status, "in_a_row": worst, **extra}
    if over:
        _retire(session, over, SubscriptionStatus.bounced, Reason.bounced)
        detail["limit_reached"] = settings.soft_bounce_limit
    _events(session, ids, "bounce", source, detail)
    if over:
        return f"soft bounce {worst} in a row: limit {settings.soft_bounce_limit} reached, bounced"
    return f"soft bounce {worst} of {settings.soft_bounce_limit} in a row"


# ---------------------------------------------------------------- writing


def _retire(session: Session, ids: list[int], status: SubscriptionStatus, reason: Reason) -> int:
    """Every mailable subscription of these subscribers to ``status``; addresses suppressed."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == SubscriptionStatus.bounced:
        values["last_bounce_at"] = now
    changed = session.execute(
        update(S)
        .where(S.c.subscriber_id.in_(ids), moving(S.c.status, status, among=MAILABLE))
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    for row in session.execute(select(SUB.c.email).where(SUB.c.id.in_(ids))).all():
        if not row.email.endswith("@" + ERASED_DOMAIN):  # nothing left to protect
            suppress(session, row.email, reason)
    return int(changed)


def _events(
    session: Session,
    ids: list[int],
    kind: str,
    source: str,
    detail: dict[str, Any],
    *,
    newsletter_id: int | None = None,
) -> None:
    now = utcnow()
    session.execute(
        insert(EV),
        [
            {
                "subscriber_id": sid,
                "newsletter_id": newsletter_id,
                "kind": kind,
                "at": now,
                "source": source,
                "detail": detail,
            }
            for sid in ids
        ],
    )
