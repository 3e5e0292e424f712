"""``newsletter issues`` (drafting): create, arrange, check and preview an issue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from newsletter import newsletters
from newsletter.cli.common import (
    console,
    read_text,
    session,
    settings,
)
from newsletter.content import issues, qa, rendering
from newsletter.exceptions import InvalidInput
from newsletter.sending import previews
from newsletter.sending.checks import qa_config

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


@app.command("edit")
def issues_edit(
    issue_id: int,
    title: Annotated[str | None, typer.Option()] = None,
    subject: Annotated[str | None, typer.Option(help='"" restores the default subject')] = None,
    preheader: Annotated[str | None, typer.Option()] = None,
    intro_file: Annotated[Path | None, typer.Option(help="Markdown file with the intro")] = None,
) -> None:
    """Change a draft's title, subject, preheader or intro (only what is given)."""
    if title is None and subject is None and preheader is None and intro_file is None:
        raise InvalidInput(
            "nothing to change: give --title, --subject, --preheader or --intro-file"
        )
    intro = read_text(intro_file) if intro_file else None
    with session() as s:
        issues.update_issue(
            s,
            issue_id=issue_id,
            title=title,
            subject=subject,
            preheader=preheader,
            intro_md=intro,
        )
    changed = [
        name
        for name, value in (
            ("title", title),
            ("subject", subject),
            ("preheader", preheader),
            ("intro", intro),
        )
        if value is not None
    ]
    console.print(f"issue {issue_id}: {', '.join(changed)} saved")


@app.command("add")
def issues_add(
    issue_id: int,
    article_id: int,
    section: Annotated[str, typer.Option(help="section title (created if new)")] = "Top stories",
    position: Annotated[int | None, typer.Option(help="0-based place in the section")] = None,
    blurb: Annotated[str | None, typer.Option(help="replaces the article summary")] = None,
    section_position: Annotated[
        int | None, typer.Option(help="0-based place of the section, when it is created")
    ] = None,
) -> None:
    """Add an article to a section of an issue."""
    with session() as s:
        sec = issues.find_section(s, issue_id=issue_id, title=section)
        created = sec is None
        if sec is None:
            sec = issues.add_section(s, issue_id=issue_id, title=section, position=section_position)
        assert sec.id is not None
        item = issues.add_item(
            s, section_id=sec.id, article_id=article_id, position=position, blurb=blurb
        )
    where = f"new section {sec.id} at position {sec.position}" if created else f"section {sec.id}"
    console.print(
        f"added item {item.id} to {sec.title!r} ({where}) at position {item.position}",
        markup=False,
        highlight=False,
    )
    if not created and section_position is not None:
        console.print(
            f"section {sec.id} already existed and stays at position {sec.position} "
            f"(`newsletter issues section move {sec.id} {section_position}` moves it)",
            markup=False,
            highlight=False,
        )


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
    name = escape(outline.newsletter.name)
    console.print(f"[bold]{name} #{issue.number}[/] (id {issue.id}, {issue.status})")
    console.print(f"title: {escape(issue.title)}")
    console.print(f"subject: {escape(outline.subject) or '[red](none)[/]'}")
    console.print(f"preheader: {escape(issue.preheader)}")
    intro = f"{len(issue.intro_md)} characters" if issue.intro_md.strip() else "(none)"
    console.print(f"intro: {intro}")
    for sec in outline.sections:
        console.print(f"\n[bold]{escape(sec.section.title)}[/] (section {sec.section.id})")
        for it in sec.items:
            mark = " [dim](blurb overridden)[/]" if it.item.blurb else ""
            title = escape(it.article.title)
            console.print(f"  {it.item.position}. item {it.item.id}: {title}{mark}")


@app.command("qa")
def issues_qa(issue_id: int) -> None:
    """Check an issue before sending; exit 1 when something blocks the send."""
    with session() as s:
        outline = issues.load_outline(s, issue_id)
        report = qa.qa_report(
            outline,
            compiled=rendering.compile_issue(outline),
            checks=qa_config(settings()),
        )
    for f in report.findings:
        colour = "red" if f.blocking else "yellow"
        console.print(
            f"[{colour}]{'BLOCKING' if f.blocking else 'warning'}[/] {f.code}: {escape(f.message)}"
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
