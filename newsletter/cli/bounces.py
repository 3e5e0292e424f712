"""``newsletter bounces``: apply DSNs, complaints and mailto unsubscribes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import (
    console,
    open_binary,
    session,
    settings,
)

app = typer.Typer(help="Bounces, complaints, mailto unsubscribes.", no_args_is_help=True)


@app.command("process")
def bounces_process(
    file: Annotated[Path, typer.Argument(help="one message or an mbox; - for stdin")],
) -> None:
    """Apply bounces (DSN), complaints (ARF) and mailto unsubscribes from a message or mbox."""
    from collections import Counter

    from newsletter.audience import bounces

    counts: Counter[str] = Counter()
    with open_binary(file) as stream, session() as s:
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
