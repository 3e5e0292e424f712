"""``newsletter issues`` (drafting): create, arrange, check and preview an issue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter import newsletters
from newsletter.cli.common import (
    console,
    read_text,
    session,
    settings,
)
from newsletter.content import issues, qa, rendering
from newsletter.sending import previews

app = typer.Typer(help="Draft, check and send issues.", no_args_is_help=True)


@app.command("create")
def issues_create(
    newsletter: Annotated[str, typer.Option(help="newsletter slug or id")],
    title: Annotated[str, typer.Option()],
    subject: Annotated[str | None, typer.Option()] = None,
    preheader: str = "",
    intro_file: Annotated[Path | None, typer.Option(help="Markdown file with the intro")] = None,
) -> None:
    """Create a draft issue."""
    intro = read_text(intro_file) if intro_file else ""
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


@app.command("add")
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


@app.command("move")
def issues_move(
    item_id: int,
    position: int,
    section_id: Annotated[int | None, typer.Option("--section", help="section id")] = None,
) -> None:
    """Move an item to a 0-based position (optionally into another section)."""
    with session() as s:
        issues.move_item(s, item_id=item_id, position=position, section_id=section_id)
    console.print(f"moved item {item_id}")


@app.command("remove")
def issues_remove(item_id: int) -> None:
    """Remove an item from its issue."""
    with session() as s:
        issues.remove_item(s, item_id=item_id)
    console.print(f"removed item {item_id}")


@app.command("blurb")
def issues_blurb(item_id: int, text: str) -> None:
    """Override an item's summary (empty text restores the article's)."""
    with session() as s:
        issues.set_blurb(s, item_id=item_id, blurb=text)
    console.print(f"blurb of item {item_id} set")


@app.command("list")
def issues_list(newsletter: str | None = None) -> None:
    """List issues."""
    from sqlmodel import col, select

    from newsletter.models import Issue

    table = Table("id", "newsletter", "#", "status", "title")
    with session() as s:
        stmt = select(Issue).order_by(col(Issue.id))
        if newsletter:
            stmt = stmt.where(Issue.newsletter_id == newsletters.get_newsletter(s, newsletter).id)
        for i in s.exec(stmt).all():
            table.add_row(str(i.id), str(i.newsletter_id), str(i.number), i.status, i.title)
    console.print(table)


@app.command("show")
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


@app.command("qa")
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


@app.command("preview")
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
