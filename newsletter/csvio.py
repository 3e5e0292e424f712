"""Subscriber CSV import and export, both streamed.

Import reads a binary stream line by line (UTF-8, a BOM allowed): a line that is not UTF-8 is
reported by its number and skipped while the rest imports. The header row names the columns
(``IMPORT_COLUMNS``; ``email`` is required, unknown ones are ignored and listed in the report).
Rows are validated in Python and written in chunks with set-based statements, so 100,000 rows
take seconds on SQLite and PostgreSQL alike.

The rules an import follows:

- A row can create subscribers and subscriptions, fill in a name, confirm a pending subscription
  or move one to unsubscribed (or bounced/complained, for lists migrated from elsewhere); it never
  moves a subscription out of unsubscribed, bounced or complained (``STICKY``).
- An active subscription is not sent back to pending by a row saying ``pending``.
- Rows repeating an address are merged into its first row, applying the same rules in file order
  (so a later row can unsubscribe, never re-activate); the report counts them as duplicates.
- Addresses on the suppression list (erased, hard-bounced, complained) are skipped and reported.

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
from typing import IO, Any

import psycopg
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from sqlalchemy import JSON, DateTime, Table, and_, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from newsletter.editor import get_newsletter
from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus, address_key, utcnow
from newsletter.subscribers import STICKY, clean_name
from newsletter.suppression import email_hash, reasons
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
CHUNK_ROWS = 2000
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
    """Every data row lands in exactly one count (``errors`` counts as its length)."""

    rows: int = 0  # data rows read (blank lines aside; an unreadable line is one row)
    imported: int = 0  # rows that created a subscriber or a subscription
    updated: int = 0  # rows that changed a name or a subscription's status
    unchanged: int = 0  # rows that changed nothing
    duplicates: int = 0  # rows whose address came earlier in the file (merged into it)
    suppressed: int = 0  # rows whose address is on the suppression list
    kept: int = 0  # rows asking to (re-)activate a sticky subscription that stayed as it was
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
                self.report.errors.append(
                    RowIssue(
                        self.number,
                        f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                    )
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
            self.report.errors.append(
                RowIssue(self.number, f"line longer than {MAX_LINE_BYTES} bytes")
            )


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
            report.errors.append(RowIssue(lines.record_start or lines.number, f"bad CSV: {exc}"))
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
    report.ignored_columns = [n for n in names if n not in IMPORT_COLUMNS]
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


class _RowError(Exception):
    pass


class _Parser:
    """Turns the cells of one record into a ``_Row``; raises ``_RowError`` with the reason."""

    def __init__(
        self,
        header: list[str],
        newsletters: dict[str, int],
        default: list[int],
        report: ImportReport,
    ) -> None:
        self.header = header
        self.newsletters = newsletters
        self.default = default
        self.report = report
        self.now = utcnow()
        self._emails = EmailNormaliser()

    def parse(self, line: int, cells: list[str]) -> _Row:
        if len(cells) > len(self.header):
            raise _RowError(f"{len(cells)} fields, but the header names {len(self.header)}")
        values = {k: _unneutralise(v) for k, v in zip(self.header, cells, strict=False)}
        email = self._email(values.get("email", ""))
        name = self._name(line, values.get("name", ""))
        status = self._status(values.get("status", ""))
        wanted = _Wanted(
            status=status,
            consent_at=_when(values.get("consent_at", "")) or self._default_consent(status),
            consent_ip=_ip(values.get("consent_ip", "")),
            consent_source=_short("consent_source", values.get("consent_source", "")) or "import",
            consent_text_version=_short(
                "consent_text_version", values.get("consent_text_version", "")
            ),
        )
        ids = self._newsletters(values.get("newsletters", ""))
        return _Row(line, email, name, {nid: wanted for nid in ids})

    def _email(self, raw: str) -> str:
        address = raw.strip()
        if not address:
            raise _RowError("no email address")
        try:
            return self._emails.normalise(address)
        except EmailNotValidError as exc:
            raise _RowError(f"invalid email address {address!r}: {exc}") from exc

    def _name(self, line: int, raw: str) -> str:
        if raw.isprintable():  # the common case, without clean_name's walk over each character
            return " ".join(raw.split())[:NAME_MAX]
        name = clean_name(raw)
        if not all(ch.isprintable() for ch in raw.strip()):
            self.report.warnings.append(
                RowIssue(line, "name: line breaks and control characters replaced by spaces")
            )
        elif len(name) < len(" ".join(raw.split())):
            self.report.warnings.append(RowIssue(line, f"name: cut to {len(name)} characters"))
        return name

    def _status(self, raw: str) -> str:
        value = raw.strip().lower() or SubscriptionStatus.active
        if value not in SubscriptionStatus.__members__:
            choices = ", ".join(SubscriptionStatus)
            raise _RowError(f"status {raw!r} is not one of {choices}")
        return value

    def _default_consent(self, status: str) -> datetime | None:
        return self.now if status == SubscriptionStatus.active else None

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


# ---------------------------------------------------------------- merging rows


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


@dataclass
class _Entry:
    """One address of a chunk: its first row, merged with its later rows."""

    row: _Row
    counted: bool  # False when the address was already counted in an earlier chunk
    digest: str = ""


def _merge(into: _Row, row: _Row) -> None:
    if row.name:
        into.name = row.name
    for nid, wanted in row.wants.items():
        before = into.wants.get(nid)
        if before is None or next_status(before.status, wanted.status) != before.status:
            into.wants[nid] = wanted


# ---------------------------------------------------------------- writing a chunk


@dataclass
class _Existing:
    id: int
    name: str


class _Writer:
    """Writes one chunk of merged rows with a handful of set-based statements."""

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.dialect = session.get_bind().dialect.name

    def write(self, chunk: dict[str, _Entry]) -> None:
        chunk = self._drop_suppressed(chunk)
        if not chunk:
            return
        people, created = self._subscribers(chunk)
        renamed = self._rename(chunk, people)
        changes = self._subscriptions(chunk, people)
        for email, entry in chunk.items():
            if not entry.counted:
                continue
            made, changed, kept = changes.get(people[email].id, (False, False, False))
            if email in created or made:
                self.report.imported += 1
            elif changed or email in renamed:
                self.report.updated += 1
            else:
                self.report.unchanged += 1
            self.report.kept += kept

    def _drop_suppressed(self, chunk: dict[str, _Entry]) -> dict[str, _Entry]:
        for email, entry in chunk.items():
            entry.digest = email_hash(email)
        found = reasons(self.session, [e.digest for e in chunk.values()])
        kept: dict[str, _Entry] = {}
        for email, entry in chunk.items():
            reason = found.get(entry.digest)
            if reason is None:
                kept[email] = entry
            elif entry.counted:
                self.report.suppressed += 1
                self.report.warnings.append(
                    RowIssue(entry.row.line, f"{email} is on the suppression list ({reason})")
                )
        return kept

    def _subscribers(self, chunk: dict[str, _Entry]) -> tuple[dict[str, _Existing], set[str]]:
        people = self._select_people(list(chunk))
        missing = [e for e in chunk if e not in people]
        if missing:
            now = utcnow()
            rows = [
                {
                    "email": e,
                    "email_hash": address_key(e),
                    "name": chunk[e].row.name,
                    "attributes": {},
                    "created_at": now,
                }
                for e in missing
            ]
            self._insert_rows(SUB, rows)
            people.update(self._select_people(missing))
        created = {e for e in missing if e in people}
        return people, created

    def _select_people(self, emails: list[str]) -> dict[str, _Existing]:
        keys = {address_key(e): e for e in emails}
        rows = self.session.execute(
            select(SUB.c.id, SUB.c.email_hash, SUB.c.name).where(
                self._in(SUB.c.email_hash, list(keys))
            )
        ).all()
        return {keys[r.email_hash]: _Existing(r.id, r.name) for r in rows}

    def _rename(self, chunk: dict[str, _Entry], people: dict[str, _Existing]) -> set[str]:
        renames = [
            {"b_id": people[e].id, "b_name": entry.row.name}
            for e, entry in chunk.items()
            if entry.row.name and entry.row.name != people[e].name
        ]
        if renames:
            self.session.execute(
                update(SUB).where(SUB.c.id == bindparam("b_id")).values(name=bindparam("b_name")),
                renames,
            )
        ids = {r["b_id"] for r in renames}
        return {e for e in chunk if people[e].id in ids}

    def _subscriptions(
        self, chunk: dict[str, _Entry], people: dict[str, _Existing]
    ) -> dict[int, tuple[bool, bool, bool]]:
        """Insert new subscriptions, move existing ones; {subscriber id: (made, changed, kept)}."""
        ids = [people[e].id for e in chunk]
        current = {
            (r.subscriber_id, r.newsletter_id): r.status
            for r in self.session.execute(
                select(S.c.subscriber_id, S.c.newsletter_id, S.c.status).where(
                    self._in(S.c.subscriber_id, ids)
                )
            ).all()
        }
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        outcome: dict[int, tuple[bool, bool, bool]] = {}
        for email, entry in chunk.items():
            sid = people[email].id
            made = changed = kept = False
            for nid, wanted in entry.row.wants.items():
                before = current.get((sid, nid))
                after = next_status(before, wanted.status)
                if before is None:
                    inserts.append(_subscription(sid, nid, wanted, now))
                    made = True
                elif after != before:
                    moves.append(_move(sid, nid, before, wanted, now))
                    changed = True
                else:
                    kept = kept or (before in STICKY and wanted.status != before)
                    continue
                events.append(_event(sid, nid, before, after, wanted, entry.row.line, now))
            outcome[sid] = (made, changed, kept)
        if inserts:
            self._insert_rows(S, inserts)
        if moves:
            self._move_all(moves)
        if events:
            self._insert_rows(EV, events)
        return outcome

    def _move_all(self, moves: list[dict[str, Any]]) -> None:
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
            .values(
                status=bindparam("b_status"),
                updated_at=bindparam("b_now"),
                consent_at=bindparam("b_consent_at"),
                consent_ip=bindparam("b_consent_ip"),
                consent_source=bindparam("b_consent_source"),
                consent_text_version=bindparam("b_consent_text_version"),
                unsubscribed_at=bindparam("b_unsubscribed_at"),
            ),
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
    parser = _Parser(
        _header(header_cells, report),
        _newsletter_refs(session),
        [nid for nid in default if nid is not None],
        report,
    )
    writer = _Writer(session, report)
    seen: set[int] = set()
    for chunk in _chunks(records, parser, report, seen, chunk_rows):
        writer.write(chunk)
        if on_progress is not None:
            on_progress(lines.bytes_read)
    report.errors.sort(key=lambda issue: issue.line)
    report.warnings.sort(key=lambda issue: issue.line)
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
    seen: set[int],
    chunk_rows: int,
) -> Iterator[dict[str, _Entry]]:
    chunk: dict[str, _Entry] = {}
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank line
        report.rows += 1
        try:
            row = parser.parse(line, cells)
        except _RowError as exc:
            report.errors.append(RowIssue(line, str(exc)))
            continue
        key = hash(row.email)
        if row.email in chunk:
            _merge(chunk[row.email].row, row)
            report.duplicates += 1
            continue
        counted = key not in seen
        if not counted:
            report.duplicates += 1
        seen.add(key)
        chunk[row.email] = _Entry(row, counted)
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


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
