"""``newsletter webhooks``: register, list and remove outgoing webhooks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import (
    audited,
    console,
    session,
    settings,
)
from newsletter.outbound import OutboundPolicy

app = typer.Typer(help="Outgoing webhooks: signed POSTs on events.", no_args_is_help=True)


@app.command("add")
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
        audited(s, "webhook.create", target_type="webhook", target_id=endpoint.id)
    console.print(f"webhook {endpoint.id}: {endpoint.url} ({', '.join(endpoint.events)})")
    console.print(f"secret (shown once): {endpoint.secret}")


@app.command("list")
def webhooks_list() -> None:
    """The registered webhooks."""
    from newsletter import webhooks

    table = Table("id", "url", "events", "active")
    with session() as s:
        for e in webhooks.list_endpoints(s):
            table.add_row(str(e.id), e.url, ", ".join(e.events), "yes" if e.active else "no")
    console.print(table)


@app.command("remove")
def webhooks_remove(webhook_id: int) -> None:
    """Remove a webhook and its delivery history."""
    from newsletter import webhooks

    with session() as s:
        webhooks.delete(s, webhook_id)
        audited(s, "webhook.remove", target_type="webhook", target_id=webhook_id)
    console.print(f"webhook {webhook_id} removed")
