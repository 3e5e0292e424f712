"""The preview of an import: its first rows, their mapping, and what each row will do.

The verdicts come from the import itself: ``preview_csv`` runs ``csv_import.import_csv`` on the
file's first ``PREVIEW_ROWS`` data rows inside a savepoint that is then rolled back, with the same
mapping, default newsletters and keep/overwrite choice the import will get. Rows are read in
order and a verdict depends only on the rows before it, so what the preview says of a row is what
the whole import does with it (a test holds them to that).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from newsletter.audience.csv_import import import_csv, read_mapping
from newsletter.audience.csv_mapping import FORMAT_LABELS, Mapping
from newsletter.audience.csv_profile import Existing
from newsletter.audience.csv_reader import Lines, records
from newsletter.audience.csv_report import ImportReport, Verdict
from newsletter.exceptions import InvalidInput
from newsletter.newsletters import list_newsletters

PREVIEW_ROWS = 20


@dataclass
class PreviewRow:
    line: int
    cells: list[str]
    verdict: Verdict
    warnings: list[str] = field(default_factory=list)


@dataclass
class Preview:
    header: list[str]
    mapping: Mapping
    format_label: str
    rows: list[PreviewRow]
    newsletters: list[str]  # the default newsletters the verdicts assumed
    existing: Existing
    ignored: list[str]


def preview_csv(
    session: Session,
    data: bytes,
    *,
    columns: Sequence[str] | None = None,
    newsletters: Sequence[str] = (),
    existing: Existing = Existing.keep,
    rows: int = PREVIEW_ROWS,
) -> Preview:
    """What importing ``data`` would do to its first ``rows`` rows; nothing is kept.

    Raises ``InvalidInput`` as the import would (no header, no email column, a bad mapping).
    """
    header, head = read_head(data, rows)
    mapping = read_mapping(header, columns)
    report = ImportReport(verdicts={})
    nested = session.begin_nested()
    try:
        import_csv(
            session,
            io.BytesIO(data),
            newsletters=newsletters,
            columns=mapping.fields,
            existing=existing,
            limit_rows=rows,
            report=report,
        )
    finally:
        nested.rollback()
    assert report.verdicts is not None
    warnings: dict[int, list[str]] = {}
    for issue in report.warnings:
        warnings.setdefault(issue.line, []).append(issue.reason)
    cells = dict(head)  # a line that could not be read has a verdict and no cells
    shown = [
        PreviewRow(line, cells.get(line, []), verdict, warnings.get(line, []))
        for line, verdict in sorted(report.verdicts.items())
    ]
    label = FORMAT_LABELS[mapping.format]
    return Preview(header, mapping, label, shown, list(newsletters), existing, mapping.ignored())


def read_head(data: bytes, rows: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header cells and the first ``rows`` records (line, cells) of ``data``."""
    scratch = ImportReport()
    found = records(Lines(io.BytesIO(data), scratch), scratch)
    header_line, header = next(found, (0, []))
    if scratch.errors and scratch.errors[0].line <= header_line:
        raise InvalidInput(f"line {scratch.errors[0].line}: {scratch.errors[0].reason}")
    head: list[tuple[int, list[str]]] = []
    for line, cells in found:
        if len(head) >= rows:
            break
        if any(c.strip() for c in cells):
            head.append((line, cells))
    return header, head


def default_newsletters(session: Session, came_from: str | None = None) -> list[str]:
    """The newsletters an import subscribes rows that name none to, ticked in advance: the one
    the editor came from, else the only one there is; else none (the editor chooses)."""
    everything = list_newsletters(session)
    if came_from:
        for newsletter in everything:
            if came_from in (newsletter.slug, str(newsletter.id)):
                return [newsletter.slug]
    return [everything[0].slug] if len(everything) == 1 else []
