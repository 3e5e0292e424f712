"""The ``newsletter`` command (Typer): commands parse arguments and call the domain."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlmodel import Session

from newsletter import db, seeding
from newsletter.audience import csv_export, csv_import, subscribers
from newsletter.config import Settings, get_settings
from newsletter.content import articles, issues, qa, rendering
from newsletter.exceptions import InvalidInput, NewsletterError, QABlocked, TransportError
from newsletter.models import DeliveryStatus, IssueStatus
from newsletter.outbound import OutboundPolicy
from newsletter.sending import controls, prepare, previews, progress
from newsletter.sending.start import start_send

if TYPE_CHECKING:
    import uvicorn

app = typer.Typer(help="Compose newsletter issues and deliver them.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
articles_app = typer.Typer(help="The article library.", no_args_is_help=True)
issues_app = typer.Typer(help="Draft, check and send issues.", no_args_is_help=True)
subs_app = typer.Typer(help="Subscribers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(articles_app, name="articles")
app.add_typer(issues_app, name="issues")
app.add_typer(subs_app, name="subscribers")
admin_app = typer.Typer(help="Admin API tokens.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
bounces_app = typer.Typer(help="Bounces, complaints, mailto unsubscribes.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")

console = Console()
err = Console(stderr=True)


def settings() -> Settings:
    return get_settings()


@contextmanager
def session() -> Iterator[Session]:
    with db.session_scope(settings().database_url) as s:
        yield s


# ---------------------------------------------------------------- webhooks

webhooks_app = typer.Typer(help="Outgoing webhooks: signed POSTs on events.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    event: Annotated[
        list[str], typer.Option("--event", help="delivery.sent|failed|bounced, subscriber.*")
    ],
) -> None:
    """Register URL for events; prints the signing secret (shown only this once)."""
    from newsletter import webhooks

    with session() as s:
        endpoint = webhooks.register(s, url, event, policy=OutboundPolicy.from_settings(settings()))
    console.print(f"webhook {endpoint.id}: {endpoint.url} ({', '.join(endpoint.events)})")
    console.print(f"secret (shown once): {endpoint.secret}")


@webhooks_app.command("list")
def webhooks_list() -> None:
    """The registered webhooks."""
    from newsletter import webhooks

    table = Table("id", "url", "events", "active")
    with session() as s:
        for e in webhooks.list_endpoints(s):
            table.add_row(str(e.id), e.url, ", ".join(e.events), "yes" if e.active else "no")
    console.print(table)


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: int) -> None:
    """Remove a webhook and its delivery history."""
    from newsletter import webhooks

    with session() as s:
        webhooks.delete(s, webhook_id)
    console.print(f"webhook {webhook_id} removed")


# ---------------------------------------------------------------- db, seed, demo, worker


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    db.upgrade(settings().database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' for an empty database)."""
    db.downgrade(settings().database_url, revision)
    console.print(f"database at {revision}")


@app.command()
def seed() -> None:
    """Load the sample newsletter, articles and subscribers (safe to run again)."""
    db.upgrade(settings().database_url)
    with session() as s:
        result = seeding.seed(s)
    console.print(
        f"seeded {result.newsletter.name!r}: {result.articles} articles, "
        f"{result.subscribers} subscribers"
    )


@app.command()
def demo() -> None:
    """Seed, draft a Belarus Weekly issue and send it through an in-process worker to ./outbox/."""
    from newsletter.cli.demo import run_demo

    with _progress_bar("sending") as (bar, task):

        def show(state: progress.Progress) -> None:
            bar.update(task, total=state.total or None, completed=state.done)

        result = run_demo(settings(), on_progress=show)
    console.print(f"[bold]Belarus Weekly issue #{result.issue_number}[/] (id {result.issue_id})")
    console.print(f"delivered: {result.delivered}")
    console.print(f"skipped (unsubscribed): {result.skipped}")
    if result.failed:
        console.print(f"[red]failed: {result.failed}[/]")
    console.print(f"outbox: {result.outbox} ({result.received} messages)")
    console.print(f"preview: {result.preview}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 2,
    beat: Annotated[
        bool, typer.Option(help="also run the periodic tick (one worker only)")
    ] = False,
    loglevel: Annotated[str | None, typer.Option(help="default: NEWSLETTER_LOG_LEVEL")] = None,
) -> None:
    """Run a Celery worker on the configured broker (not on a database behind the code)."""
    from worker.celery_app import app as celery_app

    if not db.schema_at_head(settings().database_url):
        _say_schema_behind()
        raise typer.Exit(1)
    prepare.signer_for(settings())  # a bad DKIM configuration stops here, in one line
    level = loglevel or settings().log_level
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={level}"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


# ---------------------------------------------------------------- articles


@articles_app.command("import")
def articles_import(source: str) -> None:
    """Import articles from a JSON/YAML file, an RSS/Atom file, or a feed URL."""
    with session() as s:
        if source.startswith(("http://", "https://")):
            policy = OutboundPolicy.from_settings(settings())
            result = articles.import_feed(s, source, policy=policy)
        else:
            result = articles.import_file(s, Path(source))
    console.print(f"created {result.created}, updated {result.updated}")
    for error in result.errors:
        err.print(f"[yellow]skipped[/] {error}")


@articles_app.command("list")
def articles_list(search: str | None = None, limit: int = 50) -> None:
    """List articles, newest first."""
    table = Table("id", "published", "title", "url")
    with session() as s:
        for a in articles.list_articles(s, search=search, limit=limit):
            table.add_row(
                str(a.id), f"{a.published_at:%Y-%m-%d}" if a.published_at else "", a.title, a.url
            )
    console.print(table)


# ---------------------------------------------------------------- issues


@issues_app.command("create")
def issues_create(
    newsletter: Annotated[str, typer.Option(help="newsletter slug or id")],
    title: Annotated[str, typer.Option()],
    subject: Annotated[str | None, typer.Option()] = None,
    preheader: str = "",
    intro_file: Annotated[Path | None, typer.Option(help="Markdown file with the intro")] = None,
) -> None:
    """Create a draft issue."""
    intro = _read_text(intro_file) if intro_file else ""
    with session() as s:
        issue = issues.create_issue(
            s,
            newsletter=newsletter,
            title=title,
            subject=subject,
            preheader=preheader,
            intro_md=intro,
        )
    console.print(f"created issue {issue.id} (#{issue.number})")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


@issues_app.command("add")
def issues_add(
    issue_id: int,
    article_id: int,
    section: Annotated[str, typer.Option(help="section title (created if new)")] = "Top stories",
    position: Annotated[int | None, typer.Option(help="0-based place in the section")] = None,
    blurb: Annotated[str | None, typer.Option(help="replaces the article summary")] = None,
) -> None:
    """Add an article to a section of an issue."""
    with session() as s:
        sec = issues.section_by_title(s, issue_id=issue_id, title=section)
        assert sec.id is not None
        item = issues.add_item(
            s, section_id=sec.id, article_id=article_id, position=position, blurb=blurb
        )
    console.print(f"added item {item.id} to {section!r} at position {item.position}")


@issues_app.command("move")
def issues_move(
    item_id: int,
    position: int,
    section_id: Annotated[int | None, typer.Option("--section", help="section id")] = None,
) -> None:
    """Move an item to a 0-based position (optionally into another section)."""
    with session() as s:
        issues.move_item(s, item_id=item_id, position=position, section_id=section_id)
    console.print(f"moved item {item_id}")


@issues_app.command("remove")
def issues_remove(item_id: int) -> None:
    """Remove an item from its issue."""
    with session() as s:
        issues.remove_item(s, item_id=item_id)
    console.print(f"removed item {item_id}")


@issues_app.command("blurb")
def issues_blurb(item_id: int, text: str) -> None:
    """Override an item's summary (empty text restores the article's)."""
    with session() as s:
        issues.set_blurb(s, item_id=item_id, blurb=text)
    console.print(f"blurb of item {item_id} set")


@issues_app.command("list")
def issues_list(newsletter: str | None = None) -> None:
    """List issues."""
    from sqlmodel import col, select

    from newsletter.models import Issue

    table = Table("id", "newsletter", "#", "status", "title")
    with session() as s:
        stmt = select(Issue).order_by(col(Issue.id))
        if newsletter:
            stmt = stmt.where(Issue.newsletter_id == issues.get_newsletter(s, newsletter).id)
        for i in s.exec(stmt).all():
            table.add_row(str(i.id), str(i.newsletter_id), str(i.number), i.status, i.title)
    console.print(table)


@issues_app.command("show")
def issues_show(issue_id: int) -> None:
    """Show an issue's sections and items in order."""
    with session() as s:
        outline = issues.load_outline(s, issue_id)
    issue = outline.issue
    console.print(
        f"[bold]{outline.newsletter.name} #{issue.number}[/] (id {issue.id}, {issue.status})"
    )
    console.print(f"subject: {outline.subject or '[red](none)[/]'}")
    console.print(f"preheader: {issue.preheader}")
    for sec in outline.sections:
        console.print(f"\n[bold]{sec.section.title}[/] (section {sec.section.id})")
        for it in sec.items:
            mark = " [dim](blurb overridden)[/]" if it.item.blurb else ""
            console.print(f"  {it.item.position}. item {it.item.id}: {it.article.title}{mark}")


@issues_app.command("qa")
def issues_qa(issue_id: int) -> None:
    """Check an issue before sending; exit 1 when something blocks the send."""
    with session() as s:
        outline = issues.load_outline(s, issue_id)
        report = qa.qa_report(
            outline,
            compiled=rendering.compile_issue(outline),
            size_limit=settings().html_size_limit,
        )
    for f in report.findings:
        colour = "red" if f.blocking else "yellow"
        console.print(
            f"[{colour}]{'BLOCKING' if f.blocking else 'warning'}[/] {f.code}: {f.message}"
        )
    if not report.findings:
        console.print("[green]no findings[/]")
    if not report.ok:
        raise typer.Exit(1)


@issues_app.command("preview")
def issues_preview(
    issue_id: int,
    out: Annotated[Path | None, typer.Option(help="write the HTML here")] = None,
    text: Annotated[bool, typer.Option(help="print the plain-text part")] = False,
) -> None:
    """Write an HTML preview (or print the text part)."""
    if text:
        console.print(
            previews.preview(settings(), issue_id=issue_id)[1], markup=False, highlight=False
        )
        return
    path = previews.write_preview(settings(), issue_id=issue_id, path=out)
    console.print(f"preview: {path}")


@issues_app.command("send")
def issues_send(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Start sending an issue: freeze it, fill the ledger, queue the batches."""
    from worker.tasks import dispatch

    with session() as s:
        start = start_send(settings(), s, issue_id=issue_id, dispatch=dispatch.delay)
    if start.started:
        console.print(
            f"issue {issue_id}: {start.recipients} recipients ({start.skipped} not sent to: "
            "not active or suppressed)"
        )
    else:
        console.print(f"issue {issue_id} was already started; nothing new queued")
    _queued(issue_id, follow)


def _dispatch(issue_id: int, follow: bool) -> None:
    from worker.tasks import dispatch

    dispatch.delay(issue_id)
    _queued(issue_id, follow)


def _queued(issue_id: int, follow: bool) -> None:
    if follow:
        _follow(issue_id)
    else:
        console.print("queued; a running `newsletter worker` delivers it")


def _follow(issue_id: int) -> None:
    with _progress_bar(f"issue {issue_id}") as (bar, task):
        while True:
            with session() as s:
                state = controls.status(s, issue_id=issue_id)
            p = state.progress
            bar.update(
                task,
                total=p.total or None,
                completed=p.done,
                rate=f"{state.rate:,.0f}/s",
                eta=_eta(state.eta_seconds),
            )
            if p.finished or p.status == IssueStatus.paused:
                break
            time.sleep(0.5)
    _print_status(state)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes}:{secs:02d}"


@issues_app.command("status")
def issues_status(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show live progress until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Counts by delivery state, current rate, ETA and the last errors."""
    if follow:
        _follow(issue_id)
        return
    with session() as s:
        state = controls.status(s, issue_id=issue_id)
    if as_json:
        console.print_json(data=state.as_dict())
    else:
        _print_status(state)


def _print_status(state: controls.Status) -> None:
    p = state.progress
    console.print(f"issue {p.issue_id}: {p.status}" + (f" ({p.reason})" if p.reason else ""))
    if state.scheduled_at and p.status == IssueStatus.scheduled:
        console.print(f"  scheduled for {state.scheduled_at.isoformat(timespec='minutes')}")
    for name in DeliveryStatus:
        if name != DeliveryStatus.cancelled or p.counts.get(name):
            console.print(f"  {name}: {p.counts.get(name, 0)}")
    if p.status == IssueStatus.sending:
        console.print(f"  rate: {state.rate:,.1f} msg/s, {_eta(state.eta_seconds)}")
    if state.last_errors:
        console.print("  last errors:")
        for e in state.last_errors:
            console.print(f"    {e.email}: {e.response}", markup=False, highlight=False)


@issues_app.command("pause")
def issues_pause(
    issue_id: int, reason: Annotated[str, typer.Option(help="shown in status")] = "paused by hand"
) -> None:
    """Stop sending after the messages in flight; resume picks up where it stopped."""
    with session() as s:
        controls.pause(s, issue_id=issue_id, reason=reason)
    console.print(f"issue {issue_id}: paused")


@issues_app.command("resume")
def issues_resume(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Go on sending a paused issue (also one the circuit breaker paused)."""
    with session() as s:
        controls.resume(s, issue_id=issue_id)
    console.print(f"issue {issue_id}: sending again")
    _dispatch(issue_id, follow)


@issues_app.command("cancel")
def issues_cancel(issue_id: int) -> None:
    """Stop for good; the rows not yet sent are marked cancelled."""
    with session() as s:
        count = controls.cancel(s, issue_id=issue_id)
    console.print(f"issue {issue_id}: cancelled ({count} not sent)")


@issues_app.command("resend-failed")
def issues_resend_failed(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Send again to the recipients whose delivery failed (and who are still subscribed)."""
    with session() as s:
        count = controls.resend_failed(s, issue_id=issue_id)
    if not count:
        console.print(f"issue {issue_id}: no failed deliveries to resend")
        return
    console.print(f"issue {issue_id}: {count} failed deliveries queued again")
    _dispatch(issue_id, follow)


@issues_app.command("schedule")
def issues_schedule(
    issue_id: int,
    at: Annotated[str, typer.Argument(help="ISO time with zone, e.g. 2026-12-01T08:00+01:00")],
) -> None:
    """Send at a given time (a running worker with --beat starts it)."""
    try:
        when = datetime.fromisoformat(at)
    except ValueError as exc:
        raise InvalidInput(f"not an ISO date and time: {at!r}") from exc
    with session() as s:
        issue = controls.schedule(
            s, issue_id=issue_id, at=when, size_limit=settings().html_size_limit
        )
    assert issue.scheduled_at is not None
    console.print(f"issue {issue_id}: scheduled for {issue.scheduled_at.isoformat()}")


@issues_app.command("unschedule")
def issues_unschedule(issue_id: int) -> None:
    """Back to draft."""
    with session() as s:
        controls.unschedule(s, issue_id=issue_id)
    console.print(f"issue {issue_id}: draft again")


@contextmanager
def _progress_bar(label: str) -> Iterator[tuple[Progress, TaskID]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=False,
    )
    with bar:
        yield bar, bar.add_task(label, total=None, rate="", eta="")


# ---------------------------------------------------------------- subscribers


@subs_app.command("add")
def subs_add(
    email: str,
    newsletter: Annotated[list[str], typer.Option(help="slug or id; repeat for several")],
    name: str = "",
) -> None:
    """Add an active subscriber to newsletters (an unsubscribed address stays unsubscribed)."""
    with session() as s:
        sub = subscribers.subscribe(s, email=email, name=name, newsletters=newsletter, source="cli")
    console.print(f"subscriber {sub.id}: {sub.email}")


@subs_app.command("list")
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
        "Columns: email (required), name, newsletters, status, consent, consent_at, "
        "consent_ip, consent_source, consent_text_version. Addresses match whatever their "
        "case; a row repeating an address and a newsletter of an earlier row is rejected as a "
        "duplicate, and the first row of an address names it.",
        csv_import.CONSENT_RULE,
        "Suppressed addresses (erased, bounced, complained) are skipped with a warning.",
    )
)


@subs_app.command("import", help=IMPORT_HELP)
def subs_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header row naming an email column")],
    newsletter: Annotated[
        list[str] | None, typer.Option(help="default for rows that name no newsletter")
    ] = None,
) -> None:
    """Import subscribers from CSV (``IMPORT_HELP``); exit 1 if any row was rejected."""
    with _open_binary(file) as stream, _byte_bar(file) as advance, session() as s:
        report = csv_import.import_csv(s, stream, newsletters=newsletter or (), on_progress=advance)
    _print_import(report)
    if report.errors_total:  # after the commit: the good rows stay imported
        raise typer.Exit(1)


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
def _open_binary(path: Path) -> Iterator[BinaryIO]:
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        yield handle


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


@subs_app.command("export")
def subs_export(
    newsletter: Annotated[str | None, typer.Option(help="slug or id")] = None,
    status: Annotated[str | None, typer.Option(help="active, pending, unsubscribed, ...")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Export subscriptions as CSV (formula-like cells get a leading apostrophe)."""
    with session() as s:
        newsletter_id = issues.get_newsletter(s, newsletter).id if newsletter else None
        pieces = csv_export.export_csv(s, newsletter_id=newsletter_id, status=status)
        if out is None:
            for piece in pieces:
                sys.stdout.write(piece)
            return
        with out.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(pieces)
    console.print(f"exported to {out}")


@subs_app.command("export-data")
def subs_export_data(subscriber: Annotated[str, typer.Argument(help="email or id")]) -> None:
    """Everything about one subscriber as JSON (GDPR access request)."""
    import json

    from newsletter.audience import gdpr

    with session() as s:
        data = gdpr.export_subscriber(s, subscriber)
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@subs_app.command("erase")
def subs_erase(
    subscriber: Annotated[str, typer.Argument(help="email or id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Erase one subscriber (GDPR): personal data deleted, a hash of the address suppressed."""
    from newsletter.audience import gdpr

    if not yes:
        typer.confirm(f"Erase {subscriber} for good?", abort=True)
    with session() as s:
        done = gdpr.erase_subscriber(s, subscriber)
    console.print(
        f"subscriber {done.subscriber_id} erased: {done.subscriptions} subscriptions and "
        f"{done.events} events deleted, {done.deliveries} deliveries anonymised"
    )


@bounces_app.command("process")
def bounces_process(
    file: Annotated[Path, typer.Argument(help="one message or an mbox; - for stdin")],
) -> None:
    """Apply bounces (DSN), complaints (ARF) and mailto unsubscribes from a message or mbox."""
    from collections import Counter

    from newsletter.audience import bounces

    counts: Counter[str] = Counter()
    with _open_binary(file) as stream, session() as s:
        for number, raw in enumerate(bounces.iter_messages(stream), start=1):
            result = bounces.process_message(s, settings(), raw)
            counts[result.kind] += 1
            who = ", ".join(result.addresses) or ", ".join(map(str, result.subscriber_ids))
            console.print(
                f"{number}: {result.kind}" + (f" {who}" if who else "") + f": {result.outcome}",
                markup=False,
                highlight=False,
            )
    summary = ", ".join(f"{counts[k]} {k}" for k in bounces.Kind)
    console.print(f"{sum(counts.values())} messages: {summary}")


# ---------------------------------------------------------------- admin API: tokens, serve


@admin_app.command("create-token")
def admin_create_token(name: str) -> None:
    """Create an admin API token; it is printed once and only its hash is kept."""
    from newsletter.access import api_tokens

    with session() as s:
        token = api_tokens.create(s, name)
    console.print(f"token {name!r} (shown only once, store it now; only its hash is kept):")
    console.print(token, markup=False, highlight=False, soft_wrap=True)


@admin_app.command("revoke-token")
def admin_revoke_token(name: str) -> None:
    """Revoke an admin API token; requests with it get 403 from then on."""
    from newsletter.access import api_tokens

    with session() as s:
        token = api_tokens.revoke(s, name)
    console.print(f"token {token.name!r} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@admin_app.command("list-tokens")
def admin_list_tokens() -> None:
    """List admin API tokens (names and dates; the tokens themselves are not stored)."""
    from newsletter.access import api_tokens

    def when(value: datetime | None) -> str:
        return f"{value:%Y-%m-%d %H:%M}" if value else "-"

    table = Table("name", "created", "last used", "revoked")
    with session() as s:
        for t in api_tokens.list_tokens(s):
            table.add_row(t.name, when(t.created_at), when(t.last_used_at), when(t.revoked_at))
    console.print(table)


Password = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="NEWSLETTER_NEW_PASSWORD",
        help="asked for when not given (or read from NEWSLETTER_NEW_PASSWORD)",
    ),
]


@admin_app.command("create-user")
def admin_create_user(
    email: str,
    password: Password,
    name: Annotated[str, typer.Option(help="shown in the editor UI")] = "",
) -> None:
    """Create an editor account for the web UI at /admin (password hashed with Argon2id)."""
    from newsletter.access import editors

    with session() as s:
        user = editors.create_user(s, email=email, password=password, name=name)
    console.print(f"editor {user.email} created; sign in at {settings().base_url}/admin/")


@admin_app.command("set-password")
def admin_set_password(email: str, password: Password) -> None:
    """Give an editor a new password; their open sessions end."""
    from newsletter.access import editors

    with session() as s:
        user = editors.set_password(s, email=email, password=password)
    console.print(f"password of {user.email} changed; their sessions were ended")


@admin_app.command("disable-user")
def admin_disable_user(
    email: str, enable: Annotated[bool, typer.Option(help="enable again instead")] = False
) -> None:
    """Stop (or, with --enable, allow again) an editor signing in; open sessions end."""
    from newsletter.access import editors

    with session() as s:
        user = editors.set_disabled(s, email=email, disabled=not enable)
    console.print(f"editor {user.email} {'enabled' if enable else 'disabled'}")


@admin_app.command("list-users")
def admin_list_users() -> None:
    """List editor accounts."""
    from newsletter.access import editors

    table = Table("email", "name", "created", "last sign-in", "disabled")
    with session() as s:
        for u in editors.list_users(s):
            table.add_row(
                u.email,
                u.name,
                f"{u.created_at:%Y-%m-%d %H:%M}",
                f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "-",
                f"{u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "-",
            )
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="proxies whose X-Forwarded-For gives the client IP (comma-separated, or *); "
            "sign-up limits and consent records use that IP. Default: none, no forwarded "
            "header is trusted"
        ),
    ] = None,
) -> None:
    """Run the HTTP app: admin API under /api (token from `newsletter admin create-token`),
    public sign-up, confirm, unsubscribe and preference pages; OpenAPI at /docs."""
    import uvicorn

    from newsletter.api.app import create_app

    _warn_if_schema_behind()
    from worker.dispatch import celery_dispatch, celery_send_confirmation

    app = create_app(
        settings(), dispatch=celery_dispatch, send_confirmation=celery_send_confirmation
    )
    uvicorn.Server(server_config(app, host=host, port=port, proxies=forwarded_allow_ips)).run()


def server_config(app: Any, *, host: str, port: int, proxies: str | None) -> uvicorn.Config:
    """uvicorn's configuration: X-Forwarded-For/-Proto are read only from ``proxies`` (None:
    from nobody; uvicorn's own default would trust 127.0.0.1, so any local process, or a proxy
    on the same machine passing the header through, could choose the client IP)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
        log_config=None,  # uvicorn's records go to the root handler main() set up (JSON or text)
    )


def _say_schema_behind(colour: str = "red") -> None:
    err.print(f"[{colour}]{db.SCHEMA_BEHIND}[/]", highlight=False)


def _schema_behind() -> bool:
    """Whether the database answers and is behind the code (False when it does not answer)."""
    try:
        return not db.schema_at_head(settings().database_url)
    except SQLAlchemyError:
        return False


def _warn_if_schema_behind() -> None:
    """``serve`` starts anyway (``/readyz`` says 503 until the upgrade), with this one line."""
    if _schema_behind():
        _say_schema_behind("yellow")


# ---------------------------------------------------------------- entry point


def _configure_logging() -> None:
    """NEWSLETTER_LOG_FORMAT / _LEVEL; invalid settings are reported by the command itself.

    Short commands (and the demo's progress bar) show warnings only, unless NEWSLETTER_LOG_LEVEL
    asks for more; the long-running ``serve`` and ``worker`` log at NEWSLETTER_LOG_LEVEL.
    """
    import os

    from pydantic import ValidationError

    from newsletter.logs import configure_logging

    service = sys.argv[1:2] in (["serve"], ["worker"]) or "NEWSLETTER_LOG_LEVEL" in os.environ
    try:
        configure_logging(get_settings(), level=None if service else "WARNING")
    except ValidationError:
        configure_logging(None, level=None if service else "WARNING")


def main() -> None:
    """Run the CLI; user mistakes become one red line and exit 1, never a traceback."""
    _configure_logging()
    try:
        app()
    except QABlocked as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except (NewsletterError, TransportError) as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        if _schema_behind():
            _say_schema_behind()
        else:
            first_line = str(exc.orig).splitlines()[0]
            err.print(f"[red]database error:[/] {first_line}", highlight=False)
        sys.exit(1)
