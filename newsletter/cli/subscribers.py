"""``newsletter subscribers``: add, list, import, export and erase."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from newsletter import newsletters
from newsletter.audience import csv_export, csv_import, csv_preview, subscribers
from newsletter.audience.csv_mapping import target_label
from newsletter.audience.csv_profile import Existing
from newsletter.cli.common import (
    audited,
    console,
    err,
    open_binary,
    session,
)

app = typer.Typer(help="Subscribers.", no_args_is_help=True)


@app.command("add")
def subs_add(
    email: str,
    newsletter: Annotated[list[str], typer.Option(help="slug or id; repeat for several")],
    name: str = "",
) -> None:
    """Add an active subscriber to newsletters (an unsubscribed address stays unsubscribed)."""
    with session() as s:
        sub = subscribers.subscribe(s, email=email, name=name, newsletters=newsletter, source="cli")
    console.print(f"subscriber {sub.id}: {sub.email}")


@app.command("list")
def subs_list(
    newsletter: str | None = None,
    status: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """List subscribers with their subscription status."""
    table = Table("id", "email", "name", "newsletter", "status")
    with session() as s:
        total, rows = subscribers.list_subscriptions(
            s, newsletter=newsletter, status=status, search=search, limit=limit, offset=offset
        )
    for sub, subscription in rows:
        table.add_row(
            str(sub.id), sub.email, sub.name, str(subscription.newsletter_id), subscription.status
        )
    console.print(table)
    console.print(f"{total} in all")


IMPORT_HELP = "\n\n".join(
    (
        "Import subscribers from CSV: the good rows import; rejected rows are listed by line "
        "number (the first 1,000) and make the exit status 1.",
        "Columns: email (required), name (or first and last name), language, time zone, tags, "
        "newsletters, status, consent, consent_at, consent_ip, consent_source, "
        "consent_text_version; Mailchimp and Substack exports are recognised by their header "
        "(their unsubscribed and cleaned contacts are never made active). Existing "
        "subscribers keep their fields unless --overwrite. Addresses match whatever their "
        "case; a row repeating an address and a newsletter of an earlier row is rejected as a "
        "duplicate, and the first row of an address names it.",
        csv_import.CONSENT_RULE,
        "Suppressed addresses (erased, bounced, complained) are skipped with a warning.",
    )
)


@app.command("import", help=IMPORT_HELP)
def subs_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header row naming an email column")],
    newsletter: Annotated[
        list[str] | None, typer.Option(help="default for rows that name no newsletter")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite/--keep",
            help="existing subscribers' name, language, time zone and attributes: replace them "
            "with the file's (default: keep them, fill in only empty ones)",
        ),
    ] = False,
    preview: Annotated[
        bool, typer.Option(help="show what the first 20 rows would do; import nothing")
    ] = False,
) -> None:
    """Import subscribers from CSV (``IMPORT_HELP``); exit 1 if any row was rejected."""
    existing = Existing.overwrite if overwrite else Existing.keep
    if preview:
        with open_binary(file) as stream, session() as s:
            shown = csv_preview.preview_csv(
                s, stream.read(), newsletters=newsletter or (), existing=existing
            )
        _print_preview(shown)
        return
    with open_binary(file) as stream, _byte_bar(file) as advance, session() as s:
        report = csv_import.import_csv(
            s, stream, newsletters=newsletter or (), on_progress=advance, existing=existing
        )
        audited(s, "subscribers.import", detail=f"{file.name}: {report.rows} rows")
    _print_import(report)
    if report.errors_total:  # after the commit: the good rows stay imported
        raise typer.Exit(1)


def _print_preview(preview: csv_preview.Preview) -> None:
    console.print(f"{preview.format_label}", markup=False)
    for name, target in zip(preview.header, preview.mapping.fields, strict=False):
        console.print(f"  {name} -> {target_label(target)}", markup=False, highlight=False)
    table = Table("line", "will be", "why / what", "email")
    for row in preview.rows:
        email = row.cells[preview.mapping.fields.index("email")] if row.cells else ""
        detail = "; ".join([row.verdict.detail, *row.warnings]).strip("; ")
        table.add_row(str(row.line), row.verdict.kind, detail, email)
    console.print(table)


def _print_import(report: csv_import.ImportReport) -> None:
    duplicates = f" ({report.duplicates} duplicates)" if report.duplicates else ""
    console.print(
        f"{report.rows} rows: {report.imported} imported, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.suppressed} suppressed, "
        f"{report.errors_total} rejected{duplicates}"
    )
    if report.kept:
        console.print(f"{report.kept} left unsubscribed/bounced/complained (never re-activated)")
    if report.ignored_columns:
        console.print(f"ignored columns: {', '.join(report.ignored_columns)}", markup=False)
    for issue in report.warnings:
        err.print(f"line {issue.line}: warning: {issue.reason}", markup=False, highlight=False)
    _print_cut(len(report.warnings), report.warnings_total, "warnings")
    for issue in report.errors:
        err.print(f"line {issue.line}: error: {issue.reason}", markup=False, highlight=False)
    _print_cut(len(report.errors), report.errors_total, "errors")


def _print_cut(shown: int, total: int, what: str) -> None:
    if total > shown:
        err.print(f"... and {total - shown} more {what} (only the first {shown} are listed)")


@contextmanager
def _byte_bar(path: Path) -> Iterator[Callable[[int], None]]:
    """A progress bar (on stderr) by bytes read of ``path``."""
    total = path.stat().st_size if str(path) != "-" and path.is_file() else None
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task("import", total=total)
        yield lambda done: bar.update(task, completed=done)


@app.command("export")
def subs_export(
    newsletter: Annotated[str | None, typer.Option(help="slug or id")] = None,
    status: Annotated[str | None, typer.Option(help="active, pending, unsubscribed, ...")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Export subscriptions as CSV (formula-like cells get a leading apostrophe)."""
    with session() as s:
        newsletter_id = newsletters.get_newsletter(s, newsletter).id if newsletter else None
        pieces = csv_export.export_csv(s, newsletter_id=newsletter_id, status=status)
        audited(s, "subscribers.export", newsletter_id=newsletter_id, detail=status or "")
        if out is None:
            for piece in pieces:
                sys.stdout.write(piece)
            return
        with out.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(pieces)
    console.print(f"exported to {out}")


@app.command("export-data")
def subs_export_data(subscriber: Annotated[str, typer.Argument(help="email or id")]) -> None:
    """Everything about one subscriber as JSON (GDPR access request)."""
    import json

    from newsletter.access.permissions import cli_actor
    from newsletter.audience import desk

    with session() as s:
        data = desk.export(s, subscriber, actor=cli_actor().label)
        audited(
            s, "subscriber.export", target_type="subscriber", target_id=data["subscriber"]["id"]
        )
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command("erase")
def subs_erase(
    subscriber: Annotated[str, typer.Argument(help="email or id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Erase one subscriber (GDPR): personal data deleted, a hash of the address suppressed."""
    from newsletter.access.permissions import cli_actor
    from newsletter.audience import desk

    if not yes:
        typer.confirm(f"Erase {subscriber} for good?", abort=True)
    with session() as s:
        done = desk.erase(s, subscriber, actor=cli_actor().label)
        audited(s, "subscriber.erase", target_type="subscriber", target_id=done.subscriber_id)
    console.print(
        f"subscriber {done.subscriber_id} erased: {done.subscriptions} subscriptions and "
        f"{done.events} events deleted, {done.deliveries} deliveries anonymised"
    )
