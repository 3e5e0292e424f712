"""``newsletter audit``: the audit trail, newest first, with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from newsletter.access import audit
from newsletter.cli.common import console, session
from newsletter.exceptions import InvalidInput

app = typer.Typer(help="The audit trail: who did what, when, from where.", no_args_is_help=True)


@app.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="part of an address or token name")] = None,
    action: Annotated[
        str | None, typer.Option(help="an action or its start: issue.send, issue.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO date or time, e.g. 2026-11-01")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The newest entries that match."""
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        raise InvalidInput(f"not an ISO date or time: {since!r}") from exc
    filters = audit.Filters(actor=actor, action=action, since=start)
    table = Table("when (UTC)", "who", "action", "object", "newsletter", "from", "detail")
    with session() as s:
        total, rows = audit.entries(s, filters, limit=limit)
    for e in rows:
        target = f"{e.target_type} {e.target_id}" if e.target_type else ""
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor_label,
            e.action,
            target,
            str(e.newsletter_id or ""),
            e.ip or "",
            e.detail,
        )
    console.print(table)
    console.print(f"{len(rows)} of {total} shown")
