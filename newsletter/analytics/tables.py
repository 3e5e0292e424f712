"""The report's tables as rows, for the JSON API and the CSV downloads alike.

An issue has ``summary``, ``articles``, ``links``, ``machines`` and ``variants`` (a subject
test's); a newsletter's trends have ``issues``, ``articles``, ``sections``, ``positions``,
``hours`` and ``segments``. The CSV is one table, its header the keys of the rows; text that a
spreadsheet would run as a formula is neutralised as in the subscriber export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, fields

from newsletter.analytics.issue_report import ArticleRow, IssueReport, LinkRow
from newsletter.analytics.trends import Trends
from newsletter.analytics.variants import VariantRow
from newsletter.audience.csv_export import neutralise
from newsletter.exceptions import NotFound

__all__ = [
    "HEADERS",
    "ISSUE_TABLES",
    "TREND_HEADERS",
    "TREND_TABLES",
    "issue_table",
    "to_csv",
    "trend_table",
]

Row = dict[str, object]
ISSUE_TABLES = ("summary", "articles", "links", "machines", "variants")
TREND_TABLES = ("issues", "articles", "sections", "positions", "hours", "segments")
MACHINE_COLUMNS = ("kind", "rule", "events", "readers")
RATES = "key label issues delivered human_openers human_clickers open_rate click_rate"
#: each table's columns, for the header of a table without rows
HEADERS: dict[str, tuple[str, ...]] = {
    "summary": (),
    "articles": tuple(f.name for f in fields(ArticleRow)),
    "links": tuple(f.name for f in fields(LinkRow)),
    "machines": MACHINE_COLUMNS,
    "variants": tuple(f.name for f in fields(VariantRow)),
}
TREND_HEADERS: dict[str, tuple[str, ...]] = {
    "issues": tuple(
        [
            "issue_id",
            "number",
            "title",
            "send_started_at",
            "hour",
            "segment_id",
            "delivered",
            "human_openers",
            "human_clickers",
            "open_rate",
            "click_rate",
        ]
    ),
    "articles": ("issue_id", "article_id", "clicks", "clickers", "delivered", "ctr", "title"),
    "sections": ("issue_id", "section", "clicks", "clickers", "delivered", "ctr"),
    **{name: tuple(RATES.split()) for name in ("positions", "hours", "segments")},
}


def issue_table(report: IssueReport, name: str) -> list[Row]:
    if name == "summary":
        return [report.summary()]
    if name == "articles":
        return [asdict(a) for a in report.articles]
    if name == "links":
        return [asdict(link) for link in report.links]
    if name == "machines":
        return [dict(zip(MACHINE_COLUMNS, r, strict=True)) for r in report.machine_rules]
    if name == "variants":
        return [asdict(v) for v in report.variants]
    raise NotFound(f"no table {name[:40]!r}: choose {', '.join(ISSUE_TABLES)}")


def trend_table(found: Trends, name: str) -> list[Row]:
    if name in ("issues", "articles", "sections"):
        return list(getattr(found, name))
    if name in ("positions", "hours", "segments"):
        return [group.row() for group in getattr(found, name)]
    raise NotFound(f"no table {name[:40]!r}: choose {', '.join(TREND_TABLES)}")


def to_csv(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    """One table as CSV (``header`` when there are no rows to take it from)."""
    columns = list(rows[0]) if rows else list(header)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    return neutralise(value) if isinstance(value, str) else value
