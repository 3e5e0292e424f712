"""Reading what comes back to the bounce and unsubscribe mailboxes: one message, or an mbox.

``classify`` tells a bounce from a message that is none (flufl.bounce reads RFC 3464 DSNs and the
common non-standard formats). Hard means the mailbox is gone: a permanent failure whose status is
5.1.x (bad address), 5.2.1 (mailbox disabled), 5.0.0 (unspecified) or none at all. Other permanent
failures (5.2.2 mailbox full, 5.7.x policy, 5.6.x content, 5.4.x routing) and every temporary one
(4.x.x, ``delayed``) are soft: they say this message failed, not that the address is dead, like
``sender.is_bad_mailbox`` for replies at send time.

An ARF complaint is a ``multipart/report; report-type=feedback-report`` (``report_type``); a
``mailto:`` unsubscribe has the Subject ``unsubscribe <token>`` (``unsubscribe_token``). The
original message is found in the report (``original``), and its Message-ID is ours when it
verifies with the secret key (``our_message``). Nothing here reads or writes the database.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import getaddresses
from enum import StrEnum
from typing import IO

from flufl.bounce import all_failures

from newsletter.config import Settings
from newsletter.mail.message import message_id

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


# ---------------------------------------------------------------- reading one message


def report_type(msg: Message) -> str:
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


def unsubscribe_token(msg: Message) -> str | None:
    match = _UNSUBSCRIBE_SUBJECT.match(_subject(msg))
    return match.group(1) if match else None


def original(msg: Message) -> Message | None:
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


def feedback_fields(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser().parsestr(payload)
    return None


def our_message(settings: Settings, original: Message | None) -> tuple[int, int] | None:
    """(issue id, subscriber id) from a Message-ID we made, verified with the secret key."""
    if original is None:
        return None
    return our_message_id(settings, str(original.get("Message-ID", "")))


def our_message_id(settings: Settings, value: str) -> tuple[int, int] | None:
    """(issue id, subscriber id) from a Message-ID value (brackets optional) we made."""
    if value and not value.lstrip().startswith("<"):
        value = f"<{value.strip()}>"  # some providers report the id without its brackets
    match = _OUR_MESSAGE_ID.search(value)
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


def addresses(headers: Message | None, *names: str) -> list[str]:
    if headers is None:
        return []
    values = [str(v) for n in names for v in headers.get_all(n, [])]
    found = (addr.lower() for _name, addr in getaddresses(values))
    return [addr for addr in found if "@" in addr and could_be_ours(addr)]


def could_be_ours(address: str) -> bool:
    """No subscriber's address has a control character (NUL, which PostgreSQL refuses in a
    query, included) or is longer than 320 characters: such a one is not looked up."""
    return len(address) <= MAX_ADDRESS and address.isprintable()


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


def classify(msg: Message) -> tuple[Kind, list[str], str | None]:
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
