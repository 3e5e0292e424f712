"""Subscriber CSV import, streamed: read (``csv_reader``), parse (``csv_rows``), write in chunks
(``csv_writer``); the export that imports back is ``csv_export``.

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
"""

from __future__ import annotations

import contextlib
import gc
import io
import queue
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any, TypeVar

from sqlalchemy import select, text
from sqlmodel import Session

from newsletter.audience import csv_fresh
from newsletter.audience.csv_export import IMPORT_COLUMNS
from newsletter.audience.csv_mapping import Mapping, detect, from_choices
from newsletter.audience.csv_profile import Existing
from newsletter.audience.csv_reader import Lines, records, unneutralise
from newsletter.audience.csv_report import MAX_ISSUES, ImportReport, RowIssue, Verdict
from newsletter.audience.csv_rows import CONSENT_RULE, Entry, Parser, Row, RowError
from newsletter.audience.csv_writer import Writer
from newsletter.audience.trigram_pause import TrigramPause
from newsletter.exceptions import InvalidInput
from newsletter.models import address_key
from newsletter.newsletters import get_newsletter
from newsletter.tables import EV, NL, SUB, TAG, S

__all__ = [
    "BULK_ROWS",
    "CHUNK_ROWS",
    "CONSENT_RULE",
    "IMPORT_COLUMNS",
    "MAX_ISSUES",
    "FirstRows",
    "ImportReport",
    "ProgressCallback",
    "RowIssue",
    "Verdict",
    "import_csv",
    "read_mapping",
]

CHUNK_ROWS = 5000
BULK_ROWS = 1000  # an import writing at least this many rows refreshes the planner's statistics
ProgressCallback = Callable[[int], None]
T = TypeVar("T")


# ---------------------------------------------------------------- one address, several rows


LINE_BITS = 32
LINE_MASK = (1 << LINE_BITS) - 1


class FirstRows:
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

    def place(self, key: str, row: Row) -> tuple[bool, int | None]:
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


# ---------------------------------------------------------------- import


def import_csv(
    session: Session,
    stream: IO[bytes],
    *,
    newsletters: Sequence[str | int] = (),
    on_progress: ProgressCallback | None = None,
    chunk_rows: int = CHUNK_ROWS,
    columns: Sequence[str] | None = None,
    existing: Existing = Existing.keep,
    limit_rows: int | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import subscribers from a CSV byte stream; ``newsletters`` is the default for empty cells.

    ``columns`` is the target of each column (``csv_mapping``), by default what ``detect`` reads
    off the header row; ``existing`` says whether an existing subscriber's fields are kept or
    overwritten; ``limit_rows`` stops after that many data rows (the preview). Pass a ``report``
    to watch it fill (or one with ``verdicts={}`` to learn what each row did).

    Raises ``InvalidInput`` only when the file itself is unusable (no header, no email column);
    a bad row is reported with its line number and the others import. The caller commits.
    """
    default = [get_newsletter(session, ref).id for ref in newsletters]
    report = report if report is not None else ImportReport()
    size = _size(stream) if limit_rows is None else 0  # asked before the parsing thread reads
    lines = Lines(stream, report)
    rows = records(lines, report)
    header_line, header_cells = next(rows, (0, []))
    if report.errors and report.errors[0].line <= header_line:
        raise InvalidInput(f"line {report.errors[0].line}: {report.errors[0].reason}")
    mapping = read_mapping(header_cells, columns)
    report.ignored_columns = mapping.ignored()
    refs = _newsletter_refs(session)
    parser = Parser(mapping, refs, [nid for nid in default if nid is not None])
    names = {nid: ref for ref, nid in refs.items() if ref != str(nid)}
    writer = Writer(session, report, existing=existing, newsletter_names=names)
    first_rows = FirstRows(refs.values())
    # the rows' COPY text is written ahead in the parsing thread when the writer will use it
    ahead = writer.bulk.dialect == "postgresql" and report.verdicts is None
    prepare = csv_fresh.prepare if ahead else None
    chunks = _chunks(rows, parser, report, first_rows, chunk_rows, limit_rows, prepare)
    source = chunks if limit_rows is not None else prefetched(chunks)
    pause = TrigramPause(session)
    try:
        with tuned_for_import():
            for chunk in source:
                if size:  # before the first write: the rows to come, by the first ones' bytes
                    pause.start(size * report.rows // max(lines.bytes_read, 1))
                    size = 0
                writer.write(chunk)
                if on_progress is not None:
                    on_progress(lines.bytes_read)
        pause.finish()
    finally:
        source.close()  # a failed write stops the parsing thread now, not when collected
        pause.release()
    report.finish()
    if report.imported + report.updated >= BULK_ROWS:
        refresh_statistics(session)
    return report


def read_mapping(header_cells: Sequence[str], columns: Sequence[str] | None = None) -> Mapping:
    """The mapping of a file whose header row is ``header_cells``: detected, then ``columns``
    (one target per column) over it; InvalidInput when it cannot be imported."""
    detected = detect([unneutralise(c) for c in header_cells])
    if columns is None:
        detected.check()
        return detected
    if len(columns) != len(header_cells):
        raise InvalidInput(
            f"the mapping names {len(columns)} columns, but the header row has {len(header_cells)}"
        )
    return from_choices(detected, dict(enumerate(columns)))


def refresh_statistics(session: Session) -> None:
    """ANALYZE the tables a bulk import wrote, so the planner sees the new row counts at once
    (autovacuum would get there later); PostgreSQL only (SQLite's planner needs none here).
    Inside the import's transaction, ANALYZE counts the rows it inserted."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in (SUB, S, EV, TAG):
        session.execute(text(f'ANALYZE "{table.name}"'))


_TUNING = threading.Lock()
_RUNNING: list[tuple[tuple[int, ...], float]] = []  # per import running: the settings before it
#: the interpreter's switch interval while an import runs (CPython's default is 5 ms)
SWITCH_INTERVAL = 0.0002


@contextlib.contextmanager
def tuned_for_import() -> Iterator[None]:
    """The interpreter tuned for an import meanwhile; put back when the last import running in
    the process ends.

    - The cyclic garbage collector runs less often (first generation every 50,000 allocations
      instead of 700): an import allocates a few objects per row, almost none in cycles, and the
      collector's passes cost about a sixth of the importer's CPU.
    - The thread switch interval is ``SWITCH_INTERVAL``: the thread writing to the database waits
      for the GIL after each reply while the parsing thread (``prefetched``) holds it, up to the
      whole interval each time, and a chunk takes a dozen replies. At the default 5 ms that
      wait was a third of the writer's time (measured: 400,000 rows 19.1-19.4 s at 5 ms,
      16.9-17.3 s at 0.2 ms; the same at 0.05 ms).
    """
    with _TUNING:
        _RUNNING.append(_RUNNING[0] if _RUNNING else (gc.get_threshold(), sys.getswitchinterval()))
        gc.set_threshold(50_000, 20, 100)
        sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        with _TUNING:
            thresholds, interval = _RUNNING.pop()
            if not _RUNNING:
                gc.set_threshold(*thresholds)
                sys.setswitchinterval(interval)


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, made in a thread of their own up to ``depth`` ahead: the next chunk is read
    and parsed while the database works on this one (psycopg lets go of the GIL meanwhile).
    An error in the thread is raised here; when the caller stops early the thread stops too."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:
            put(("error", exc))

    worker = threading.Thread(target=produce, name="csv-import-parse", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def _size(stream: IO[bytes]) -> int:
    """The bytes left in the stream, 0 if it cannot say."""
    try:
        if not stream.seekable():
            return 0
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):
        return 0
    return end - here


def _newsletter_refs(session: Session) -> dict[str, int]:
    refs: dict[str, int] = {}
    for row in session.execute(select(NL.c.id, NL.c.slug)).all():
        refs[row.slug] = refs[str(row.id)] = row.id
    return refs


def _chunks(
    records: Iterable[tuple[int, list[str]]],
    parser: Parser,
    report: ImportReport,
    first_rows: FirstRows,
    chunk_rows: int,
    limit_rows: int | None = None,
    prepare: Callable[[dict[str, Entry], datetime], None] | None = None,
) -> Generator[dict[str, Entry], None, None]:
    """The accepted rows, by address key, in chunks of at most ``chunk_rows`` addresses, each
    given to ``prepare`` first (with the parser's import time)."""
    chunk: dict[str, Entry] = {}
    parse, place, error = parser.parse, first_rows.place, report.error
    for line, cells in records:
        if not "".join(cells).strip():
            continue  # blank line
        if limit_rows is not None and report.rows >= limit_rows:
            break
        report.rows += 1
        try:
            row = parse(line, cells)
        except RowError as exc:
            error(line, str(exc))
            continue
        key = address_key(row.email)
        first, duplicate_of = place(key, row)
        if duplicate_of is not None:
            report.duplicates += 1
            error(line, f"duplicate of line {duplicate_of}")
            continue
        for note in row.notes:
            report.warn(line, note)
        if not first:
            row.forget_profile()  # the address's first row named it
        entry = chunk.get(key)
        if entry is None:
            chunk[key] = Entry(row.email, [row])
        else:
            entry.rows.append(row)
        if len(chunk) >= chunk_rows:
            if prepare is not None:
                prepare(chunk, parser.now)
            yield chunk
            chunk = {}
    if chunk:
        if prepare is not None:
            prepare(chunk, parser.now)
        yield chunk
