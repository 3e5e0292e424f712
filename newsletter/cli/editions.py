"""``newsletter issues edition``: an issue's editions by language (list, add, set, remove) and
their stories' and sections' text (story, section)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import console, read_text, session
from newsletter.cli.issues import app as issues_app
from newsletter.content import editions

app = typer.Typer(
    help="An issue's editions by language: its own subject, intro and story text per language.",
    no_args_is_help=True,
)
issues_app.add_typer(app, name="edition")

Text = Annotated[str | None, typer.Option()]


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


@app.command("list")
def edition_list(issue_id: int) -> None:
    """The issue's editions, with what each has translated."""
    with session() as s:
        found = editions.list_editions(s, issue_id)
    if not found:
        _say(f"issue {issue_id} has no other editions (the issue itself is the default)")
    for text in found:
        e = text.edition
        done = [f for f in editions.FIELDS if getattr(e, f)]
        stories = sum(1 for o in text.items.values() if o.headline)
        _say(f"{e.language}: {', '.join(done) or 'nothing'} translated; {stories} headline(s)")


@app.command("add")
def edition_add(issue_id: int, language: str) -> None:
    """Add an edition in a language (BCP 47: be, ru, uk...)."""
    with session() as s:
        edition = editions.add_edition(s, issue_id=issue_id, language=language)
    _say(f"added the {edition.language} edition of issue {issue_id}")


@app.command("set")
def edition_set(
    issue_id: int,
    language: str,
    subject: Text = None,
    preheader: Text = None,
    title: Text = None,
    intro: Annotated[str | None, typer.Option(help="Markdown")] = None,
    intro_file: Annotated[Path | None, typer.Option(help="Markdown file")] = None,
) -> None:
    """Set an edition's subject, preheader, title or intro ("" : untranslated)."""
    values = {"subject": subject, "preheader": preheader, "title": title, "intro_md": intro}
    if intro_file is not None:
        values["intro_md"] = read_text(intro_file)
    given = {k: v for k, v in values.items() if v is not None}
    with session() as s:
        edition = editions.set_fields(s, issue_id=issue_id, language=language, values=given)
    _say(f"{edition.language} edition of issue {issue_id}: set {', '.join(given) or 'nothing'}")


@app.command("story")
def edition_story(
    issue_id: int,
    language: str,
    item_id: int,
    headline: Text = None,
    blurb: Text = None,
    alt: Text = None,
) -> None:
    """Set one story's headline, blurb and image alt text in an edition (its links stay the
    article's)."""
    with session() as s:
        editions.set_item(
            s,
            issue_id=issue_id,
            language=language,
            item_id=item_id,
            headline=headline,
            blurb=blurb,
            image_alt=alt,
        )
    _say(f"item {item_id} in the {language} edition of issue {issue_id} saved")


@app.command("section")
def edition_section(issue_id: int, language: str, section_id: int, title: str) -> None:
    """Set a section's title in an edition ("" : untranslated)."""
    with session() as s:
        editions.set_section(
            s, issue_id=issue_id, language=language, section_id=section_id, title=title
        )
    _say(f"section {section_id} in the {language} edition of issue {issue_id} saved")


@app.command("remove")
def edition_remove(issue_id: int, language: str) -> None:
    """Remove an edition."""
    with session() as s:
        editions.remove_edition(s, issue_id=issue_id, language=language)
    _say(f"removed the {language} edition of issue {issue_id}")
