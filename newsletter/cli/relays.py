"""``newsletter relays``: the SMTP relays, their weights and state; ``relays check`` says hello."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from newsletter.cli.common import console, settings
from newsletter.exceptions import InvalidInput
from newsletter.sending import relay_checks

app = typer.Typer(help="SMTP relays: list them with their state, check them.")


@app.callback(invoke_without_command=True)
def relays(ctx: typer.Context) -> None:
    """Each relay: its address, weight, caps and state (out until when, and why)."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("relay", "address", "weight", "caps", "state", "since / until", "why")
    for status in relay_checks.statuses(settings()):
        relay = status.relay
        when = status.out_until if status.state != "up" else status.changed_at
        table.add_row(
            relay.name,
            f"{relay.smtp.host}:{relay.smtp.port}",
            str(relay.weight),
            "yes" if relay.caps else "",
            {"up": "in service", "out": "out", "due": "out, due for a check"}[status.state],
            f"{when:%Y-%m-%d %H:%M:%S} UTC" if when else "",
            escape(status.reason[:120]),
        )
    console.print(table)


@app.command("check")
def check(
    name: Annotated[list[str] | None, typer.Argument(help="relays to check (default: all)")] = None,
) -> None:
    """EHLO + NOOP to each relay on a new connection: one that answers is back in service, one
    that does not is taken out. Exits 1 when a relay did not answer."""
    known = settings().relay_names()
    unknown = [n for n in name or [] if n not in known]
    if unknown:
        raise InvalidInput(f"no relay {unknown[0]!r} (the relays: {', '.join(known)})")
    results = relay_checks.check(settings(), name or None)
    for relay, why in results.items():
        if why is None:
            console.print(f"[green]{escape(relay)}: answered[/green]")
        else:
            console.print(f"[red]{escape(relay)}: {escape(why)}[/red]")
    if any(why is not None for why in results.values()):
        raise typer.Exit(1)
