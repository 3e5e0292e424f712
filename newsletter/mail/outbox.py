"""The local SMTP sink's outbox folder read back: one ``.eml`` file per message received.

``newsletter dev`` and ``newsletter sink`` write there (``transports.sink``); ``/dev/outbox``
lists and shows what arrived. A message is named by its file name, checked against a strict
pattern and looked up in the folder itself, so no name can reach a file outside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

from newsletter.exceptions import NotFound

#: how many messages a listing shows (the newest)
LIMIT = 200
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml")


@dataclass(frozen=True)
class Entry:
    name: str
    received_at: datetime
    to: str
    subject: str


@dataclass(frozen=True)
class Listing:
    total: int
    entries: list[Entry]  # newest first, at most LIMIT


@dataclass(frozen=True)
class Shown:
    entry: Entry
    sender: str
    html: str | None
    text: str | None


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file() and _NAME.fullmatch(p.name)]
    except FileNotFoundError:
        return []


def _received_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def listing(folder: Path, *, limit: int = LIMIT) -> Listing:
    """The newest ``limit`` messages (time received, to, subject) and how many there are."""
    files = _files(folder)
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    parser = BytesHeaderParser(policy=policy.default)
    entries = []
    for path in files[:limit]:
        with path.open("rb") as handle:
            headers = parser.parse(handle)
        entries.append(_entry(path, headers))
    return Listing(total=len(files), entries=entries)


def _entry(path: Path, headers: Message) -> Entry:
    return Entry(
        name=path.name,
        received_at=_received_at(path),
        to=str(headers.get("To", "")),
        subject=str(headers.get("Subject", "")),
    )


def message(folder: Path, name: str) -> Shown:
    """One message, its HTML and plain-text parts decoded; NotFound for any other name."""
    if not _NAME.fullmatch(name):
        raise NotFound(f"no message {name!r} in the outbox")
    path = folder / name
    if not path.is_file():
        raise NotFound(f"no message {name!r} in the outbox")
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)  # policy.default builds EmailMessage
    return Shown(
        entry=_entry(path, parsed),
        sender=str(parsed.get("From", "")),
        html=_part(parsed, "html"),
        text=_part(parsed, "plain"),
    )


def _part(parsed: EmailMessage, kind: str) -> str | None:
    body = parsed.get_body(preferencelist=(kind,))
    if body is None:
        return None
    try:
        content = body.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return str(content)
