"""``newsletter articles``: import and list the article library."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from newsletter.cli.common import (
    console,
    err,
    session,
    settings,
)
from newsletter.content import articles
from newsletter.outbound import OutboundPolicy

app = typer.Typer(help="The article library.", no_args_is_help=True)


@app.command("import")
def articles_import(source: str) -> None:
    """Import articles from a JSON/YAML file, an RSS/Atom file, or a feed URL; exit 1 if any
    item was rejected (the good ones are imported)."""
    with session() as s:
        if source.startswith(("http://", "https://")):
            policy = OutboundPolicy.from_settings(settings())
            result = articles.import_feed(s, source, policy=policy)
        else:
            result = articles.import_file(s, Path(source))
    console.print(f"created {result.created}, updated {result.updated}")
    for error in result.errors:
        err.print(f"[yellow]skipped[/] {escape(error)}")
    if result.errors:  # after the commit: the good ones stay imported
        raise typer.Exit(1)


@app.command("list")
def articles_list(search: str | None = None, limit: int = 50) -> None:
    """List articles, newest first."""
    table = Table("id", "published", "title", "url")
    with session() as s:
        for a in articles.list_articles(s, search=search, limit=limit):
            table.add_row(
                str(a.id), f"{a.published_at:%Y-%m-%d}" if a.published_at else "", a.title, a.url
            )
    console.print(table)
