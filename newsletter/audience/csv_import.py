"""Subscriber CSV import and export, both streamed.

Import reads a binary stream line by line (UTF-8, a BOM allowed): a line that is not UTF-8 is
reported by its number and skipped while the rest imports. The header row names the columns
(``IMPORT_COLUMNS`` and ``consent``; ``email`` is required, unknown ones are ignored and listed
in the report). Rows are validated in Python and written in chunks with set-based statements, so
100,000 rows take seconds on SQLite and PostgreSQL alike.

The rules an import follows:

- An address is one subscriber whatever its case (``models.address_key``): ``Reader@Example.com``
  in the file finds ``reader@example.com`` in the database, and the other way round.
- A row can create subscribers and subscriptions, fill in a name, confirm a pending subscription
  or move one to unsubscribed (or bounced/complained, for lists migrated from elsewhere); it never
  moves a subscription out of unsubscribed, bounced or complained (``STICKY``), and never sends an
  active subscription back to pending.
- The first row of an address wins. A later row naming a newsletter that an earlier row of the
  same address (any case) named is rejected as ``duplicate of line M``; a later row naming only
  other newsletters adds those subscriptions (that is how an export lists a subscriber on several
  newsletters) and never changes the name.
- Consent. Without a ``consent`` column the import itself is the record, as it always was: an
  active row gets ``consent_at`` from its cell or the import time, ``consent_source`` from its
  cell or ``import``. With a ``consent`` column, each row's cell decides (case and spaces aside):

  - ``yes``, ``true``, ``1``: consent is recorded (``consent_at`` from its cell or the import
    time, ``consent_source`` from its cell or ``import``) and the row's status stands;
  - ``no``, ``false``, ``0``: no consent is recorded and the subscription is never made active:
    a row asking for active (or naming no status) makes it pending; pending, unsubscribed,
    bounced and complained rows stay what they say;
  - empty: no evidence of consent, so the same as ``no``, with a warning when the row would
    otherwise have been active;
  - anything else: the row is rejected.

  A row without consent never turns an existing active subscription off (``unsubscribed`` does),
  and never erases the consent recorded on one.
- Addresses the admission gate refuses (``subscribers.admission_refusals``: erased, bounced,
  complained) are skipped and reported as warnings, whatever the row asks.
- The report keeps the first ``MAX_ISSUES`` errors and warnings by line number and counts them
  all (``errors_total``, ``warnings_total``); every data row lands in exactly one count.

Export writes one row per subscription in the import's columns, so an export imports back; cells
that a spreadsheet would run as a formula (leading ``= + - @``, tab, CR) get a leading apostrophe,
which an import removes again.
"""

from __future__ import annotations

import codecs
import csv
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

import psycopg
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from sqlalchemy import JSON, DateTime, Table, and_, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from newsletter.audience.subscribers import STICKY, Way, admission_refusals, clean_name
from newsletter.content.issues import get_newsletter
from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus, address_key, utcnow
from newsletter.tables import EV, NL, SUB, S

IMPORT_COLUMNS = (
    "email",
    "name",
    "newsletters",
    "status",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_text_version",
)
CONSENT = "consent"  # read, never exported: an export's rows carry their consent_at instead
CONSENT_YES = frozenset({"yes", "true", "1"})
CONSENT_NO = frozenset({"no", "false", "0"})
CONSENT_FIELDS = ("consent_at", "consent_ip", "consent_source", "consent_text_version")
CONSENT_RULE = (
    "Consent: without a consent column the import itself is the record, as before: an active "
    "row gets consent_at from its cell or the import time and consent_source from its cell or "
    "'import'. With a consent column, each row's cell decides (case and spaces aside): "
    "yes/true/1 records consent (consent_at from its cell or the import time, consent_source "
    "from its cell or 'import') and the row's status stands; no/false/0 records none and never "
    "makes a subscription active (a row asking for active, or naming no status, becomes "
    "pending; pending, unsubscribed, bounced and complained rows stay so); an empty cell is no "
    "evidence of consent, so the same as no, with a warning if the row asked for active; any "
    "other value rejects the row."
)
CHUNK_ROWS = 2000
MAX_ISSUES = 1000  # errors (and warnings) kept in the report; all are counted
MAX_LINE_BYTES = 64 * 1024  # a longer line is reported and skipped, never read into memory
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NAME_MAX = 200  # as subscribers.clean_name cuts
MAX_LOCAL, MAX_ADDRESS = 64, 254  # RFC 5321 limits, as email-validator checks them
_ATEXT = r"a-zA-Z0-9_!#\$%&\'\*\+\-/=\?\^`\{\|\}~"  # email-validator's rfc_constants.ATEXT
_DOT_ATOM = re.compile(f"[{_ATEXT}]+(?:\\.[{_ATEXT}]+)*\\Z")
SHORT_TEXT = 32  # consent_source and consent_text_version columns of SubscriberEvent
ProgressCallback = Callable[[int], None]


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class RowIssue:
    line: int
    reason: str


@dataclass
class ImportReport:
    """Every data row lands in exactly one count: rows = imported + updated + unchanged +
    suppressed + errors_total (``kept`` is part of ``unchanged``, ``duplicates`` of the errors).

    ``errors`` and ``warnings`` hold the first ``MAX_ISSUES`` by line number; the totals count all.
    """

    rows: int = 0  # data rows read (blank lines aside; an unreadable line is one row)
    imported: int = 0  # rows that created a subscriber or a subscription
    updated: int = 0  # rows that changed a name or a subscription's status
    unchanged: int = 0  # rows that changed nothing
    suppressed: int = 0  # rows whose address the admission gate refused (suppression list)
    errors_total: int = 0  # rows rejected, each with an error
    duplicates: int = 0  # of those, rows repeating an address and newsletter of an earlier row
    kept: int = 0  # rows asking to (re-)activate a sticky subscription that stayed as it was
    warnings_total: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def error(self, line: int, reason: str) -> None:
        """Reject a row: counted, and kept if it is among the first ``MAX_ISSUES``."""
        self.errors_total += 1
        _keep(self.errors, RowIssue(line, reason))

    def warn(self, line: int, reason: str) -> None:
        self.warnings_total += 1
        _keep(self.warnings, RowIssue(line, reason))

    def finish(self) -> None:
        """Sort the kept issues by line and cut them to ``MAX_ISSUES``."""
        _trim(self.errors)
        _trim(self.warnings)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _keep(issues: list[RowIssue], issue: RowIssue) -> None:
    issues.append(issue)
    if len(issues) >= 2 * MAX_ISSUES:  # trimming now and then keeps memory bounded, sorts rarely
        _trim(issues)


def _trim(issues: list[RowIssue]) -> None:
    # issues arrive nearly in line order (a chunk's suppressed rows after its parse warnings)
    issues.sort(key=lambda issue: issue.line)
    del issues[MAX_ISSUES:]


# ---------------------------------------------------------------- reading lines and rows


class _Lines:
    """The decoded lines of a binary stream; lines that are not UTF-8 are reported and skipped."""

    def __init__(self, stream: IO[bytes], report: ImportReport) -> None:
        self.stream = stream
        self.report = report
        self.number = 0  # of the last physical line read
        self.bytes_read = 0
        self.record_start: int | None = None  # first line of the record being read

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while True:
            raw = self._readline()
            if raw is None:
                raise StopIteration
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.report.rows += 1
                self.report.error(
                    self.number,
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                )
                continue
            if self.record_start is None:
                self.record_start = self.number
            return text

    def _readline(self) -> bytes | None:
        while True:
            raw = self.stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return None
            self.number += 1
            self.bytes_read += len(raw)
            if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
                return raw
            while raw and not raw.endswith(b"\n"):  # skip the rest of an over-long line
                raw = self.stream.readline(MAX_LINE_BYTES + 1)
                self.bytes_read += len(raw)
            self.report.rows += 1
            self.report.error(self.number, f"line longer than {MAX_LINE_BYTES} bytes")


def _records(lines: _Lines, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) per CSV record; a record csv rejects is reported and skipped."""
    first = next(lines, None)
    if first is None:
        raise InvalidInput("the file is empty: it needs a header row naming an email column")
    reader = csv.reader(_chain(first, lines), delimiter=_delimiter(first), strict=True)
    while True:
        lines.record_start = None
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.rows += 1
            report.error(lines.record_start or lines.number, f"bad CSV: {exc}")
            continue
        yield lines.record_start or lines.number, cells


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _delimiter(header: str) -> str:
    """Comma unless the header line clearly uses semicolons or tabs (spreadsheet exports)."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _header(cells: list[str], report: ImportReport) -> list[str]:
    names = [_unneutralise(c).strip().lower() for c in cells]
    if "email" not in names:
        shown = ", ".join(repr(n) for n in names[:10]) or "nothing"
        raise InvalidInput(f"the header row has no 'email' column (found {shown})")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"the header row names a column twice: {', '.join(repeated)}")
    report.ignored_columns = [n for n in names if n not in IMPORT_COLUMNS and n != CONSENT]
    return names


# ---------------------------------------------------------------- one row


@dataclass
class _Wanted:
    """What a row asks for one subscription."""

    status: str
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str
    consent_text_version: str | None


@dataclass
class _Row:
    line: int
    email: str
    name: str
    wants: dict[int, _Wanted]
    notes: list[str]  # warnings, reported only if the row is not rejected after all


class _RowError(Exception):
    pass


class _Parser:
    """Turns the cells of one record into a ``_Row``; raises ``_RowError`` with the reason."""

    def __init__(self, header: list[str], newsletters: dict[str, int], default: list[int]) -> None:
        self.header = header
        self.newsletters = newsletters
        self.default = default
        self.consent_column = CONSENT in header
        self.now = utcnow()
        self._emails = EmailNormaliser()

    def parse(self, line: int, cells: list[str]) -> _Row:
        if len(cells) > len(self.header):
            raise _RowError(f"{len(cells)} fields, but the header names {len(self.header)}")
        values = {k: _unneutralise(v) for k, v in zip(self.header, cells, strict=False)}
        email = self._email(values.get("email", ""))
        notes: list[str] = []
        name = self._name(values.get("name", ""), notes)
        wanted = self._wanted(values, notes)
        ids = self._newsletters(values.get("newsletters", ""))
        return _Row(line, email, name, {nid: wanted for nid in ids}, notes)

    def _email(self, raw: str) -> str:
        address = raw.strip()
        if not address:
            raise _RowError("no email address")
        try:
            return self._emails.normalise(address)
        except EmailNotValidError as exc:
            raise _RowError(f"invalid email address {address!r}: {exc}") from exc

    def _name(self, raw: str, notes: list[str]) -> str:
        if raw.isprintable():  # the common case, without clean_name's walk over each character
            return " ".join(raw.split())[:NAME_MAX]
        name = clean_name(raw)
        if not all(ch.isprintable() for ch in raw.strip()):
            notes.append("name: line breaks and control characters replaced by spaces")
        elif len(name) < len(" ".join(raw.split())):
            notes.append(f"name: cut to {len(name)} characters")
        return name

    def _wanted(self, values: dict[str, str], notes: list[str]) -> _Wanted:
        status = self._status(values.get("status", ""))
        consent = self._consent(values.get(CONSENT, ""), values.get("status", ""), notes)
        consent_at = _when(values.get("consent_at", ""))
        consent_ip = _ip(values.get("consent_ip", ""))
        source = _short("consent_source", values.get("consent_source", "")) or "import"
        version = _short("consent_text_version", values.get("consent_text_version", ""))
        if consent is False:  # no evidence of consent: never active, nothing recorded
            if status == SubscriptionStatus.active:
                status = SubscriptionStatus.pending
            return _Wanted(status, None, None, source, None)
        if consent is None and status != SubscriptionStatus.active:
            return _Wanted(status, consent_at, consent_ip, source, version)
        return _Wanted(status, consent_at or self.now, consent_ip, source, version)

    def _status(self, raw: str) -> str:
        value = raw.strip().lower() or SubscriptionStatus.active
        if value not in SubscriptionStatus.__members__:
            choices = ", ".join(SubscriptionStatus)
            raise _RowError(f"status {raw!r} is not one of {choices}")
        return value

    def _consent(self, raw: str, status: str, notes: list[str]) -> bool | None:
        """The consent cell: True or False; None without a consent column (the import is the
        record). A row that would have been active but is not gets a warning, unless its cell
        plainly says no and its status cell does not say active."""
        if not self.consent_column:
            return None
        value = raw.strip().lower()
        if value in CONSENT_YES:
            return True
        if value and value not in CONSENT_NO:
            raise _RowError(f"consent {raw!r} is not yes or no (nor true/false, 1/0)")
        asked = status.strip().lower()
        if not value and asked in ("", SubscriptionStatus.active):
            notes.append("consent is empty (no evidence of consent): pending, not active")
        elif value and asked == SubscriptionStatus.active:
            notes.append(f"consent {raw.strip()!r}: pending, not active")
        return False

    def _newsletters(self, raw: str) -> list[int]:
        refs = [r.strip() for r in raw.replace("|", ";").split(";") if r.strip()]
        if not refs:
            if not self.default:
                raise _RowError("no newsletter: fill the newsletters column or give a default")
            return self.default
        unknown = [r for r in refs if r not in self.newsletters]
        if unknown:
            raise _RowError(f"unknown newsletter {unknown[0]!r}")
        return list(dict.fromkeys(self.newsletters[r] for r in refs))


class EmailNormaliser:
    """``subscribers.normalise_email`` with the domain's validation cached.

    email-validator spends most of its time on the domain (IDNA checks per character), and an
    import repeats a few thousand domains at most. A plain ASCII dot-atom local part is checked
    here with email-validator's own grammar and joined to the cached normalised domain; anything
    else (quoting, non-ASCII, a bad domain, a length limit) goes through ``validate_email`` whole,
    so the result and the error messages are the same as ``normalise_email``'s.
    """

    CACHE_MAX = 10_000

    def __init__(self) -> None:
        self._domains: dict[str, str | None] = {}

    def normalise(self, address: str) -> str:
        local, at, domain = address.rpartition("@")
        if at and len(local) <= MAX_LOCAL and _DOT_ATOM.match(local) and domain.isascii():
            normal = self._domain(domain)
            if normal is not None and len(local) + 1 + len(normal) <= MAX_ADDRESS:
                if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
                    local = local.lower()
                return local + "@" + normal
        return str(validate_email(address, check_deliverability=False).normalized)

    def _domain(self, domain: str) -> str | None:
        if domain not in self._domains:
            if len(self._domains) >= self.CACHE_MAX:
                self._domains.clear()
            try:
                checked = validate_email("a@" + domain, check_deliverability=False)
                self._domains[domain] = checked.domain
            except EmailNotValidError:
                self._domains[domain] = None  # the full validation gives the message
        return self._domains[domain]


def _unneutralise(cell: str) -> str:
    """Undo the export's formula guard: ``'=...`` reads back as ``=...``."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_STARTS:
        return cell[1:]
    return cell


def _when(raw: str) -> datetime | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _RowError(f"consent_at {raw!r} is not an ISO 8601 date and time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # naive: taken as UTC


def _ip(raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise _RowError(f"consent_ip {raw!r} is not an IP address") from exc


def _short(column: str, raw: str) -> str | None:
    text = clean_name(raw)
    if len(text) > SHORT_TEXT:
        raise _RowError(f"{column} is longer than {SHORT_TEXT} characters")
    return text or None


# ---------------------------------------------------------------- one address, several rows


def next_status(current: str | None, incoming: str) -> str:
    """The import's transition rule: into a sticky status yes, out of one never."""
    if current is None:
        return incoming
    if current in STICKY:
        return current
    if incoming in STICKY:
        return incoming
    if current == SubscriptionStatus.active:
        return current  # a row saying pending does not undo a confirmation
    return incoming


LINE_BITS = 32
LINE_MASK = (1 << LINE_BITS) - 1


class _FirstRows:
    """Where each address first came in the file and which newsletters its rows named so far.

    One dict entry per address, never the address itself: the first 8 bytes of its
    ``address_key`` -> (bit per newsletter named << 32) | line of its first row. A million
    addresses take about a hundred megabytes; two addresses sharing 64 bits of SHA-256 (odds
    below one in ten million for a million addresses) would have the second reported as a
    duplicate of the first.
    """

    def __init__(self, newsletter_ids: Iterable[int]) -> None:
        self._bit = {nid: 1 << i for i, nid in enumerate(sorted(set(newsletter_ids)))}
        self._first: dict[int, int] = {}

    def place(self, key: str, row: _Row) -> tuple[bool, int | None]:
        """(whether this is the address's first row, the line it duplicates or None)."""
        digest = int(key[:16], 16)
        bits = 0
        for nid in row.wants:
            bits |= self._bit.setdefault(nid, 1 << len(self._bit))  # one made meanwhile
        seen = self._first.get(digest)
        if seen is None:
            self._first[digest] = bits << LINE_BITS | (row.line & LINE_MASK)
            return True, None
        if (seen >> LINE_BITS) & bits:
            return False, seen & LINE_MASK
        self._first[digest] = seen | bits << LINE_BITS
        return False, None


@dataclass
class _Entry:
    """The rows of one address in a chunk; their newsletters are distinct (``_FirstRows``)."""

    email: str  # as its first row in the chunk spells it
    rows: list[_Row]


# ---------------------------------------------------------------- writing a chunk


@dataclass
class _Existing:
    id: int
    name: str


class _Outcome(StrEnum):
    made = "made"
    changed = "changed"
    same = "same"
    kept = "kept"  # a sticky subscription a row asked to (re-)activate


class _Writer:
    """Writes one chunk of rows with a handful of set-based statements; counts each row."""

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.dialect = session.get_bind().dialect.name

    def write(self, chunk: dict[str, _Entry]) -> None:
        """Write ``chunk`` ({address_key: entry}) and count each of its rows once."""
        chunk = self._admit(chunk)
        if not chunk:
            return
        people, created = self._subscribers(chunk)
        renamed = self._rename(chunk, people)
        outcomes = self._subscriptions(chunk, people)
        for key, entry in chunk.items():
            sid = people[key].id
            for index, row in enumerate(entry.rows):
                done = {outcomes[(sid, nid)] for nid in row.wants}
                first = index == 0
                if _Outcome.made in done or (first and key in created):
                    self.report.imported += 1
                elif _Outcome.changed in done or (first and key in renamed):
                    self.report.updated += 1
                else:
                    self.report.unchanged += 1
                self.report.kept += _Outcome.kept in done

    def _admit(self, chunk: dict[str, _Entry]) -> dict[str, _Entry]:
        """The chunk without the addresses the admission gate refuses (one query)."""
        refused = admission_refusals(
            self.session, [e.email for e in chunk.values()], way=Way.import_
        )
        if not refused:
            return chunk
        admitted: dict[str, _Entry] = {}
        for key, entry in chunk.items():
            reason = refused.get(entry.email)
            if reason is None:
                admitted[key] = entry
                continue
            for row in entry.rows:
                self.report.suppressed += 1
                self.report.warn(row.line, reason)
        return admitted

    def _subscribers(self, chunk: dict[str, _Entry]) -> tuple[dict[str, _Existing], set[str]]:
        people = self._select_people(list(chunk))
        missing = [k for k in chunk if k not in people]
        if missing:
            now = utcnow()
            rows = [subscriber_row(chunk[k].email, chunk[k].rows[0].name, now, k) for k in missing]
            self._insert_rows(SUB, rows)
            people.update(self._select_people(missing))
        created = {k for k in missing if k in people}
        return people, created

    def _select_people(self, keys: list[str]) -> dict[str, _Existing]:
        rows = self.session.execute(
            select(SUB.c.id, SUB.c.email_hash, SUB.c.name).where(self._in(SUB.c.email_hash, keys))
        ).all()
        return {r.email_hash: _Existing(r.id, r.name) for r in rows}

    def _rename(self, chunk: dict[str, _Entry], people: dict[str, _Existing]) -> set[str]:
        # only the address's first row names it: later rows come with an empty name
        renames = [
            {"b_id": people[k].id, "b_name": entry.rows[0].name}
            for k, entry in chunk.items()
            if entry.rows[0].name and entry.rows[0].name != people[k].name
        ]
        if renames:
            self.session.execute(
                update(SUB).where(SUB.c.id == bindparam("b_id")).values(name=bindparam("b_name")),
                renames,
            )
        ids = {r["b_id"] for r in renames}
        return {k for k in chunk if people[k].id in ids}

    def _subscriptions(
        self, chunk: dict[str, _Entry], people: dict[str, _Existing]
    ) -> dict[tuple[int, int], _Outcome]:
        """Insert new subscriptions, move existing ones; {(subscriber, newsletter): outcome}."""
        current = self._statuses([people[k].id for k in chunk])
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        outcomes: dict[tuple[int, int], _Outcome] = {}
        for key, entry in chunk.items():
            sid = people[key].id
            for row in entry.rows:
                for nid, wanted in row.wants.items():
                    before = current.get((sid, nid))
                    after = next_status(before, wanted.status)
                    if before is None:
                        inserts.append(_subscription(sid, nid, wanted, now))
                        outcomes[(sid, nid)] = _Outcome.made
                    elif after != before:
                        moves.append(_move(sid, nid, before, wanted, now))
                        outcomes[(sid, nid)] = _Outcome.changed
                    else:
                        sticky = before in STICKY and wanted.status != before
                        outcomes[(sid, nid)] = _Outcome.kept if sticky else _Outcome.same
                        continue
                    events.append(_event(sid, nid, before, after, wanted, row.line, now))
        if inserts:
            self._insert_rows(S, inserts)
        self._move_all([m for m in moves if m["b_consent_at"] is not None], consent=True)
        self._move_all([m for m in moves if m["b_consent_at"] is None], consent=False)
        if events:
            self._insert_rows(EV, events)
        return outcomes

    def _statuses(self, subscriber_ids: list[int]) -> dict[tuple[int, int], str]:
        rows = self.session.execute(
            select(S.c.subscriber_id, S.c.newsletter_id, S.c.status).where(
                self._in(S.c.subscriber_id, subscriber_ids)
            )
        ).all()
        return {(r.subscriber_id, r.newsletter_id): r.status for r in rows}

    def _move_all(self, moves: list[dict[str, Any]], *, consent: bool) -> None:
        """Guarded status changes; ``consent``: the rows record consent, else it stays as it was."""
        if not moves:
            return
        values: dict[str, Any] = {
            "status": bindparam("b_status"),
            "updated_at": bindparam("b_now"),
            "unsubscribed_at": bindparam("b_unsubscribed_at"),
        }
        if consent:
            values.update({c: bindparam(f"b_{c}") for c in CONSENT_FIELDS})
        else:  # a row without consent never erases the consent recorded on a subscription
            moves = [{k: v for k, v in m.items() if k[2:] not in CONSENT_FIELDS} for m in moves]
        # only if the status is still what we read: a concurrent unsubscribe is never undone
        self.session.execute(
            update(S)
            .where(
                and_(
                    S.c.subscriber_id == bindparam("b_sid"),
                    S.c.newsletter_id == bindparam("b_nid"),
                    S.c.status == bindparam("b_before"),
                )
            )
            .values(values),
            moves,
        )

    def _insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING of many rows (all with the same keys).

        On PostgreSQL the rows go in with COPY (ten times faster than psycopg's executemany)
        inside a savepoint; the rows were checked to be new, so a unique violation means a
        concurrent writer got there first, and then the chunk goes again as
        ``INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING``. SQLite's executemany is
        already a tight loop inside one prepared statement.
        """
        if self.dialect != "postgresql":
            self.session.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
            return
        try:
            with self.session.begin_nested():
                self._copy(table, rows)
        except psycopg.errors.UniqueViolation:
            self._insert_arrays(table, rows)

    def _copy(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        as_json = [isinstance(table.c[c].type, JSON) for c in columns]
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        names = ", ".join(f'"{c}"' for c in columns)
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[c]) if js else row[c]
                        for c, js in zip(columns, as_json, strict=True)
                    ]
                )

    def _insert_arrays(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        arrays = [
            func.unnest(
                bindparam(f"u_{c}", [r[c] for r in rows], type_=ARRAY(_array_item(table.c[c])))
            )
            for c in columns
        ]
        self.session.execute(
            postgresql.insert(table).from_select(columns, select(*arrays)).on_conflict_do_nothing()
        )

    def _in(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter for them all."""
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
        return column.in_(values)


def _array_item(column: Any) -> Any:
    # the database columns are timestamptz; the models' DateTime() would drop the zone
    return DateTime(timezone=True) if isinstance(column.type, DateTime) else column.type


def subscriber_row(email: str, name: str, now: datetime, key: str = "") -> dict[str, Any]:
    """A new subscriber's columns; ``email_hash`` (``key``) too, which COPY would not fill in."""
    return {
        "email": email,
        "email_hash": key or address_key(email),
        "name": name,
        "attributes": {},
        "created_at": now,
    }


def _subscription(sid: int, nid: int, wanted: _Wanted, now: datetime) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "status": wanted.status,
        "consent_at": wanted.consent_at,
        "consent_ip": wanted.consent_ip,
        "consent_source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "created_at": now,
        "updated_at": now,
        "unsubscribed_at": now if wanted.status == SubscriptionStatus.unsubscribed else None,
        "soft_bounces": 0,
    }


def _move(sid: int, nid: int, before: str, wanted: _Wanted, now: datetime) -> dict[str, Any]:
    values = _subscription(sid, nid, wanted, now)
    return {
        "b_sid": sid,
        "b_nid": nid,
        "b_before": before,
        "b_now": now,
        **{f"b_{k}": values[k] for k in ("status", "unsubscribed_at")},
        **{f"b_{k}": values[k] for k in values if k.startswith("consent_")},
    }


def _event(
    sid: int, nid: int, before: str | None, after: str, wanted: _Wanted, line: int, now: datetime
) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "kind": "import",
        "at": now,
        "ip": wanted.consent_ip,
        "source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "detail": {"from": before, "status": after, "line": line},
    }


# ---------------------------------------------------------------- import


def import_csv(
    session: Session,
    stream: IO[bytes],
    *,
    newsletters: Sequence[str | int] = (),
    on_progress: ProgressCallback | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Import subscribers from a CSV byte stream; ``newsletters`` is the default for empty cells.

    Raises ``InvalidInput`` only when the file itself is unusable (no header, no email column);
    a bad row is reported with its line number and the others import. The caller commits.
    """
    default = [get_newsletter(session, ref).id for ref in newsletters]
    report = ImportReport()
    lines = _Lines(stream, report)
    records = _records(lines, report)
    header_line, header_cells = next(records, (0, []))
    if report.errors and report.errors[0].line <= header_line:
        raise InvalidInput(f"line {report.errors[0].line}: {report.errors[0].reason}")
    refs = _newsletter_refs(session)
    parser = _Parser(
        _header(header_cells, report), refs, [nid for nid in default if nid is not None]
    )
    writer = _Writer(session, report)
    first_rows = _FirstRows(refs.values())
    for chunk in _chunks(records, parser, report, first_rows, chunk_rows):
        writer.write(chunk)
        if on_progress is not None:
            on_progress(lines.bytes_read)
    report.finish()
    return report


def _newsletter_refs(session: Session) -> dict[str, int]:
    refs: dict[str, int] = {}
    for row in session.execute(select(NL.c.id, NL.c.slug)).all():
        refs[row.slug] = refs[str(row.id)] = row.id
    return refs


def _chunks(
    records: Iterable[tuple[int, list[str]]],
    parser: _Parser,
    report: ImportReport,
    first_rows: _FirstRows,
    chunk_rows: int,
) -> Iterator[dict[str, _Entry]]:
    """The accepted rows, by address key, in chunks of at most ``chunk_rows`` addresses."""
    chunk: dict[str, _Entry] = {}
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank line
        report.rows += 1
        row = _accepted(line, cells, parser, report)
        if row is None:
            continue
        key = address_key(row.email)
        first, duplicate_of = first_rows.place(key, row)
        if duplicate_of is not None:
            report.duplicates += 1
            report.error(line, f"duplicate of line {duplicate_of}")
            continue
        for note in row.notes:
            report.warn(line, note)
        if not first:
            row.name = ""  # the address's first row named it
        entry = chunk.get(key)
        if entry is None:
            chunk[key] = _Entry(row.email, [row])
        else:
            entry.rows.append(row)
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


def _accepted(line: int, cells: list[str], parser: _Parser, report: ImportReport) -> _Row | None:
    try:
        return parser.parse(line, cells)
    except _RowError as exc:
        report.error(line, str(exc))
        return None


# ---------------------------------------------------------------- export


def neutralise(cell: str) -> str:
    """A leading apostrophe keeps spreadsheets from running the cell as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_csv(
    session: Session,
    *,
    newsletter_id: int | None = None,
    status: str | None = None,
    page_rows: int = 1000,
) -> Iterator[str]:
    """The CSV text in pieces (header first), one subscription per row, ordered by id."""
    if status is not None and status not in SubscriptionStatus.__members__:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(SubscriptionStatus)}")
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(IMPORT_COLUMNS)
    after = 0
    while True:
        rows = _export_page(session, newsletter_id, status, after, page_rows)
        for r in rows:
            out.writerow(neutralise(_cell(v)) for v in r[1:])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < page_rows:
            return
        after = rows[-1][0]


def _export_page(
    session: Session, newsletter_id: int | None, status: str | None, after: int, limit: int
) -> list[tuple[Any, ...]]:
    stmt = (
        select(
            S.c.id,
            SUB.c.email,
            SUB.c.name,
            NL.c.slug,
            S.c.status,
            S.c.consent_at,
            S.c.consent_ip,
            S.c.consent_source,
            S.c.consent_text_version,
        )
        .select_from(
            S.join(SUB, SUB.c.id == S.c.subscriber_id).join(NL, NL.c.id == S.c.newsletter_id)
        )
        .where(S.c.id > after)
        .order_by(S.c.id)
        .limit(limit)
    )
    if newsletter_id is not None:
        stmt = stmt.where(S.c.newsletter_id == newsletter_id)
    if status is not None:
        stmt = stmt.where(S.c.status == status)
    return [tuple(r) for r in session.execute(stmt).all()]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat()
    return str(value)
