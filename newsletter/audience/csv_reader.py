"""Reading an import file: its decoded lines, its CSV records and its header row.

The stream is read line by line (UTF-8, a BOM allowed): a line that is not UTF-8, or longer than
``MAX_LINE_BYTES``, is reported by its number and skipped while the rest is read. What the header
row's columns mean is ``csv_mapping``'s.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from newsletter.audience.csv_export import FORMULA_STARTS
from newsletter.exceptions import InvalidInput

if TYPE_CHECKING:  # the report is the orchestration's; here it is only written to
    from newsletter.audience.csv_report import ImportReport

MAX_LINE_BYTES = 64 * 1024  # a longer line is reported and skipped, never read into memory
CONSENT = "consent"  # read, never exported: an export's rows carry their consent_at instead


class Lines:
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


def records(lines: Lines, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
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


def _delimiter(line: str) -> str:
    """Comma unless the header line clearly uses semicolons or tabs (spreadsheet exports)."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def unneutralise(cell: str) -> str:
    """Undo the export's formula guard: ``'=...`` reads back as ``=...``."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_STARTS:
        return cell[1:]
    return cell
