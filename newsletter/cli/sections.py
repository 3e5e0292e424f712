"""``newsletter issues section``: add, rename, move, remove and list the sections of a draft."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from newsletter.cli.common import console, session
from newsletter.cli.issues import app as issues_app
from newsletter.content import issues
from newsletter.exceptions import InvalidInput

app = typer.Typer(
    help="The sections of a draft issue (positions are 0-based).", no_args_is_help=True
)
issues_app.add_typer(app, name="section")


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


@app.command("add")
def section_add(
    issue_id: int,
    title: str,
    position: Annotated[int | None, typer.Option(help="0-based place (default: the end)")] = None,
) -> None:
    """Add a section to a draft."""
    with session() as s:
        section = issues.add_section(s, issue_id=issue_id, title=title, position=position)
    _say(f"added section {section.id} ({section.title!r}) at position {section.position}")


@app.command("rename")
def section_rename(section_id: int, title: str) -> None:
    """Give a section a new title."""
    with session() as s:
        section = issues.rename_section(s, section_id=section_id, title=title)
    _say(f"section {section_id} is now {section.title!r}")


@app.command("move")
def section_move(section_id: int, position: int) -> None:
    """Move a section to a 0-based position among its issue's sections."""
    with session() as s:
        section = issues.move_section(s, section_id=section_id, position=position)
    _say(f"moved section {section_id} to position {section.position}")


@app.command("remove")
def section_remove(
    section_id: int,
    with_items: Annotated[
        bool, typer.Option("--with-items", help="also remove the items it holds")
    ] = False,
) -> None:
    """Remove a section; one that holds items only with --with-items (articles stay in the
    library)."""
    with session() as s:
        try:
            removed = issues.remove_section(s, section_id=section_id, with_items=with_items)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{exc}; nothing removed (--with-items removes them with it; "
                "the articles stay in the library)"
            ) from None
    items = f" and its {removed} item" + ("s" if removed != 1 else "") if removed else ""
    _say(f"removed section {section_id}{items}")


@app.command("list")
def section_list(issue_id: int) -> None:
    """The sections of an issue in order, with their ids and item counts."""
    with session() as s:
        outline = issues.load_outline(s, issue_id)
    table = Table("position", "id", "title", "items")
    for sec in outline.sections:
        section = sec.section
        table.add_row(
            str(section.position), str(section.id), escape(section.title), str(len(sec.items))
        )
    console.print(table)
