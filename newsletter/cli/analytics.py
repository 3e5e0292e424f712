"""``newsletter analytics``: an issue's report, a newsletter's trends (each table as text or CSV),
and the retention fold run now. The same figures as ``/admin/.../report`` and the API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter.analytics import retention, tables
from newsletter.analytics.issue_report import issue_report
from newsletter.analytics.trends import MAX_ISSUES, trends
from newsletter.cli.common import console, session, settings
from newsletter.exceptions import InvalidInput

app = typer.Typer(
    help="What readers did: an issue's report, a newsletter's trends, CSV of each table.",
    no_args_is_help=True,
)
Row = dict[str, object]
TableOpt = Annotated[str | None, typer.Option("--table", help="one table (default: an overview)")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="the table as CSV (to --out or stdout)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the CSV to this file")]


def _pick(name: str | None, names: Sequence[str], default: str) -> str:
    chosen = name or default
    if chosen not in names:
        raise InvalidInput(f"no table {chosen[:40]!r}: choose {', '.join(names)}")
    return chosen


def _emit(rows: list[Row], header: Sequence[str], out: Path | None) -> None:
    body = tables.to_csv(rows, header)
    if out is None:
        typer.echo(body, nl=False)
    else:
        out.write_text(body, encoding="utf-8")
        console.print(f"{len(rows)} rows written to {out}", markup=False, highlight=False)


def _show(title: str, rows: list[Row], header: Sequence[str]) -> None:
    columns = list(rows[0]) if rows else list(header)
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def _pct(part: float) -> str:
    return f"{100 * part:.1f}%"


@app.command("report")
def analytics_report(
    issue_id: int, table: TableOpt = None, csv: CsvOpt = False, out: OutOpt = None
) -> None:
    """An issue's figures: delivery, people and machines apart, per article (or one table)."""
    with session() as s:
        report = issue_report(s, issue_id)
    if csv or out is not None:
        name = _pick(table, tables.ISSUE_TABLES, "articles")
        _emit(tables.issue_table(report, name), tables.HEADERS[name], out)
        return
    if table is not None:
        name = _pick(table, tables.ISSUE_TABLES, "articles")
        _show(name, tables.issue_table(report, name), tables.HEADERS[name])
        return
    console.print(f"issue {report.issue_id} #{report.number}: {report.title} ({report.status})")
    console.print(
        f"  delivered {report.delivered:,} · bounced {report.bounced:,} · complaints "
        f"{report.complained:,} · unsubscribed {report.unsubscribed:,}"
    )
    console.print(
        f"  people: opened {report.human_openers:,} ({_pct(report.open_rate)}) · clicked "
        f"{report.human_clickers:,} ({_pct(report.click_rate)}) · clicks {report.human_clicks:,}"
    )
    console.print(
        f"  machines (not counted above): opens {report.machine_opens:,}, of them Apple MPP "
        f"{report.mpp_opens:,} ({_pct(report.mpp_share)} of all opens) · clicks "
        f"{report.machine_clicks:,}"
    )
    _show("articles", tables.issue_table(report, "articles"), tables.HEADERS["articles"])
    if report.variants:
        _show("subject test", tables.issue_table(report, "variants"), tables.HEADERS["variants"])


@app.command("trends")
def analytics_trends(
    newsletter: Annotated[str, typer.Argument(help="slug or id")],
    issues: Annotated[int, typer.Option(min=1, max=MAX_ISSUES, help="the last N sends")] = 12,
    table: TableOpt = None,
    csv: CsvOpt = False,
    out: OutOpt = None,
) -> None:
    """A newsletter across its last sends: issues, articles, sections, positions, hours,
    segments (all, or one table)."""
    with session() as s:
        found = trends(s, newsletter, limit=issues)
    if csv or out is not None:
        name = _pick(table, tables.TREND_TABLES, "issues")
        _emit(tables.trend_table(found, name), tables.TREND_HEADERS[name], out)
        return
    names = [_pick(table, tables.TREND_TABLES, "issues")] if table else tables.TREND_TABLES
    for name in names:
        _show(name, tables.trend_table(found, name), tables.TREND_HEADERS[name])


@app.command("fold")
def analytics_fold() -> None:
    """Fold every issue past the retention period into counts without subscriber ids now (the
    beat does it daily)."""
    days = settings().track_retention_days
    with session() as s:
        folded = retention.fold_due(s, retention_days=days)
    console.print(f"{folded:,} events folded (issues sent more than {days} days ago)")
