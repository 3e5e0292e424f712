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

Hard means the mailbox is gone: a permanent failure whose status is 5.1.x (bad address), 5.2.1
(mailbox disabled), 5.0.0 (unspecified) or none at all. Other permanent failures (5.2.2 mailbox
full, 5.7.x policy, 5.6.x content, 5.4.x routing) and every temporary one (4.x.x, ``delayed``) are
soft: they say this message failed, not that the address is dead, like ``sender.is_bad_mailbox``
for replies at send time.

The subscriber is found by the original message's Message-ID when it is one of ours
(``<issue.subscriber.hmac@domain>``, verified with the secret key), so forwarding addresses and
rewritten recipients still point at the right person; otherwise by the failed recipients' addresses
and then by the original's To / X-Original-To / Delivered-To headers.
"""

from __future__ import annotations

import email
import hmac
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import getaddresses
from enum import StrEnum
from typing import IO, Any

from flufl.bounce import all_failures
from sqlalchemy import ColumnElement, and_, case, exists, insert, select, update
from sqlmodel import Session

from newsletter.audience.links import Purpose, read_token
from newsletter.audience.subscribers import ERASED_DOMAIN, unsubscribe
from newsletter.audience.suppression import Reason, suppress
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.mail.message import message_id
from newsletter.models import (
    DeliveryStatus,
    Subscriber,
    SubscriptionStatus,
    utcnow,
)
from newsletter.tables import EV, SUB, D, I, S

MAILABLE = (SubscriptionStatus.active, SubscriptionStatus.pending)
# ids of ours have at most 10 ASCII digits: a longer run is not ours (and no int() of it)
_OUR_MESSAGE_ID = re.compile(r"<([0-9]{1,10})\.([0-9]{1,10})\.([0-9a-f]{16})@([^>\s]+)>")
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_HARD_STATUSES = ("5.0.0", "5.2.1")
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_ADDRESS = 320
log = logging.getLogger(__name__)


class Kind(StrEnum):
    hard = "hard"
    soft = "soft"
    complaint = "complaint"
    unsubscribe = "unsubscribe"
    ignored = "ignored"


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
    if _report_type(msg) == "feedback-report":
        return _complaint(session, settings, msg)
    token = _unsubscribe_token(msg)
    if token is not None:
        return _unsubscribe(session, settings, token)
    return _bounce(session, settings, msg)


def iter_messages(stream: IO[bytes]) -> Iterator[bytes]:
    """The messages of a stream: one message, or an mbox (it starts with a ``From `` line)."""
    first = stream.readline()
    if not first.startswith(b"From "):
        yield first + stream.read(MAX_MESSAGE_BYTES + 1 - len(first))
        return
    lines: list[bytes] = []
    blank_before = True
    for line in stream:
        if line.startswith(b"From ") and blank_before:
            yield _mbox_message(lines)
            lines = []
        else:
            lines.append(line)
        blank_before = line in (b"\n", b"\r\n")
    if lines:
        yield _mbox_message(lines)


def _mbox_message(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]  # the blank line before the next From_ belongs to the mbox
    # mboxrd quoting: one '>' is removed from lines that start with '>'* followed by 'From '
    return b"".join(line[1:] if re.match(rb">+From ", line) else line for line in lines)


# ---------------------------------------------------------------- reading the message


def _report_type(msg: Message) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    return str(msg.get_param("report-type", "") or "").strip().lower()


def _subject(msg: Message) -> str:
    raw = msg.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (UnicodeDecodeError, LookupError, ValueError):
        return str(raw)


def _unsubscribe_token(msg: Message) -> str | None:
    match = _UNSUBSCRIBE_SUBJECT.match(_subject(msg))
    return match.group(1) if match else None


def _original(msg: Message) -> Message | None:
    """The returned original (message/rfc822) or its headers (text/rfc822-headers)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype == "text/rfc822-headers":
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                return BytesHeaderParser().parsebytes(body)
    return None


def _feedback_fields(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser().parsestr(payload)
    return None


def _our_message(settings: Settings, original: Message | None) -> tuple[int, int] | None:
    """(issue id, subscriber id) from a Message-ID we made, verified with the secret key."""
    if original is None:
        return None
    match = _OUR_MESSAGE_ID.search(str(original.get("Message-ID", "")))
    if match is None:
        return None
    issue_id, subscriber_id, _mac, domain = match.groups()
    expected = message_id(
        settings.secret_key,
        issue_id=int(issue_id),
        subscriber_id=int(subscriber_id),
        domain=domain,
    )
    if not hmac.compare_digest(expected, match.group(0)):
        return None
    return int(issue_id), int(subscriber_id)


def _addresses(headers: Message | None, *names: str) -> list[str]:
    if headers is None:
        return []
    values = [str(v) for n in names for v in headers.get_all(n, [])]
    found = (addr.lower() for _name, addr in getaddresses(values))
    return [addr for addr in found if "@" in addr and _could_be_ours(addr)]


def _could_be_ours(address: str) -> bool:
    """No subscriber's address has a control character (NUL, which PostgreSQL refuses in a
    query, included) or is longer than 320 characters: such a one is not looked up."""
    return len(address) <= MAX_ADDRESS and address.isprintable()


def _subscriber_ids(session: Session, addresses: list[str]) -> list[int]:
    wanted = [a for a in addresses if _could_be_ours(a)]
    if not wanted:
        return []
    rows = session.execute(select(SUB.c.id).where(SUB.c.email.in_(wanted))).all()
    return sorted(r.id for r in rows)


def _known(session: Session, subscriber_id: int) -> list[int]:
    return [subscriber_id] if session.get(Subscriber, subscriber_id) is not None else []


def _find(
    session: Session, settings: Settings, msg: Message, addresses: list[str]
) -> tuple[list[int], int | None]:
    """(subscriber ids, issue id when known) that a bounce or complaint is about."""
    original = _original(msg)
    ours = _our_message(settings, original)
    if ours is not None:
        issue_id, subscriber_id = ours
        return _known(session, subscriber_id), issue_id
    found = _subscriber_ids(session, addresses)
    if not found:
        found = _subscriber_ids(
            session, _addresses(original, "X-Original-To", "Delivered-To", "To")
        )
    return found, None


# ---------------------------------------------------------------- complaints


def _complaint(session: Session, settings: Settings, msg: Message) -> BounceResult:
    fields = _feedback_fields(msg)
    addresses = _addresses(fields, "Original-Rcpt-To")
    ids, _issue = _find(session, settings, msg, addresses)
    result = BounceResult(Kind.complaint, ids, addresses)
    if not ids:
        result.outcome = "complaint about no known subscriber"
        return result
    feedback = str(fields.get("Feedback-Type", "abuse")) if fields is not None else "abuse"
    changed = _retire(session, ids, SubscriptionStatus.complained, Reason.complained)
    _events(session, ids, "complaint", "arf", {"feedback_type": feedback})
    result.outcome = f"complained on {changed} subscriptions"
    return result


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
    )
    return BounceResult(
        Kind.unsubscribe, ids, outcome=f"unsubscribed from {len(changed)} newsletters"
    )


# ---------------------------------------------------------------- bounces


def _statuses(msg: Message) -> dict[str, str]:
    """{recipient address: DSN status code} from the message/delivery-status parts."""
    found: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            match = _STATUS.search(str(block.get("Status", "")))
            if match is None:
                continue
            for header in ("Original-Recipient", "Final-Recipient"):
                value = str(block.get(header, ""))
                address = value.rpartition(";")[2].strip().strip("<>").lower()
                if address:
                    found[address] = match.group(0)
    return found


def _is_hard(status: str | None) -> bool:
    if status is None:
        return True
    return status.startswith("5.1.") or status in _HARD_STATUSES


def _classify(msg: Message) -> tuple[Kind, list[str], str | None]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a heuristic detector choking on hostile input: not a bounce we can read
        log.warning("flufl.bounce could not read a message", exc_info=True)
        return Kind.ignored, [], None
    statuses = _statuses(msg)
    failed = sorted(a.decode("ascii").lower() for a in permanent)
    delayed = sorted(a.decode("ascii").lower() for a in temporary)
    hard = [a for a in failed if _is_hard(statuses.get(a))]
    if hard:
        return Kind.hard, failed + delayed, statuses.get(hard[0])
    everyone = failed + delayed
    if everyone:
        return Kind.soft, everyone, statuses.get(everyone[0])
    return Kind.ignored, [], None


def _bounce(session: Session, settings: Settings, msg: Message) -> BounceResult:
    kind, addresses, status = _classify(msg)
    if kind == Kind.ignored:
        return BounceResult(Kind.ignored, outcome="not a bounce, a complaint or an unsubscribe")
    ids, issue_id = _find(session, settings, msg, addresses)
    result = BounceResult(kind, ids, addresses, status)
    if not ids:
        result.outcome = "bounce for no known subscriber"
        return result
    if kind == Kind.hard:
        changed = _retire(session, ids, SubscriptionStatus.bounced, Reason.bounced)
        _events(session, ids, "bounce", "dsn", {"type": "hard", "status": status})
        result.outcome = f"bounced on {changed} subscriptions"
        return result
    result.outcome = _soft(session, settings, ids, issue_id, status)
    return result


def _soft(
    session: Session, settings: Settings, ids: list[int], issue_id: int | None, status: str | None
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
    detail = {"type": "soft", "status": status, "in_a_row": worst}
    if over:
        _retire(session, over, SubscriptionStatus.bounced, Reason.bounced)
        detail["limit_reached"] = settings.soft_bounce_limit
    _events(session, ids, "bounce", "dsn", detail)
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
        update(S).where(S.c.subscriber_id.in_(ids), S.c.status.in_(MAILABLE)).values(**values)
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
