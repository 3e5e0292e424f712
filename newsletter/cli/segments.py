"""``newsletter segments``: list, show, count, create saved segments (rules as JSON)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from newsletter.audience import segments
from newsletter.cli.common import audited, console, session
from newsletter.exceptions import InvalidInput
from newsletter.newsletters import get_newsletter

app = typer.Typer(help="Segments: saved filters over subscribers.", no_args_is_help=True)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"rules are not JSON: {exc.msg} (column {exc.colno})") from None


@app.command("list")
def segments_list(
    newsletter: Annotated[str | None, typer.Option(help="slug or id: its own and shared")] = None,
) -> None:
    """Every segment (id, name, newsletter)."""
    table = Table("id", "name", "newsletter", "updated")
    with session() as s:
        nid = get_newsletter(s, newsletter).id if newsletter else None
        for seg in segments.list_segments(s, newsletter_id=nid):
            table.add_row(
                str(seg.id),
                escape(seg.name),
                str(seg.newsletter_id or "any"),
                f"{seg.updated_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)


@app.command("show")
def segments_show(segment_id: int) -> None:
    """One segment: its rules (JSON) and how many it holds now."""
    with session() as s:
        seg = segments.get(s, segment_id)
        size = segments.count(s, seg)
    console.print(f"segment {seg.id}: {escape(seg.name)} ({size:,} now)")
    console.print_json(json.dumps(seg.rules))


@app.command("count")
def segments_count(
    segment_id: Annotated[int | None, typer.Argument(help="a saved segment")] = None,
    rules: Annotated[str | None, typer.Option(help="unsaved rules, JSON")] = None,
    newsletter: Annotated[str | None, typer.Option(help="count its recipients")] = None,
) -> None:
    """How many a segment (or unsaved --rules) holds now; prints the number."""
    with session() as s:
        if segment_id is not None:
            size = segments.count(s, segments.get(s, segment_id))
        elif rules is not None:
            nid = get_newsletter(s, newsletter).id if newsletter else None
            size = segments.count_rules(s, segments.check_rules(_json(rules), s), newsletter_id=nid)
        else:
            raise InvalidInput("name a segment id or give --rules")
    console.print(str(size))


@app.command("create")
def segments_create(
    name: str,
    rules: Annotated[str, typer.Option(help='JSON, e.g. {"conditions": [{"kind": "tag", ...}]}')],
    newsletter: Annotated[str | None, typer.Option(help="slug or id; none: shared")] = None,
) -> None:
    """Save a segment; prints its id and size."""
    import getpass

    with session() as s:
        seg = segments.create(
            s,
            name=name,
            rules=_json(rules),
            newsletter=newsletter,
            created_by=f"cli {getpass.getuser()}",
        )
        audited(s, "segment.create", target_type="segment", target_id=seg.id)
        size = segments.count(s, seg)
    console.print(f"segment {seg.id}: {escape(seg.name)} ({size:,} now)")
