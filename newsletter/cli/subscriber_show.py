"""``newsletter subscribers show``: one subscriber's whole story, as the subscriber page shows it.

Identity, language and zone, attributes, tags, each subscription with its consent record, the
history with who acted, and the last deliveries, in rich tables. An unknown subscriber is one
red line (``NotFound``), like every user mistake.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from newsletter.audience import profile
from newsletter.cli.common import console, session
from newsletter.cli.subscribers import app

__all__ = ["subs_show"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _row(table: Table, *cells: str) -> None:
    """Cells as plain text: a name or an SMTP reply may hold "[...]", which is not markup."""
    table.add_row(*(Text(cell) for cell in cells))


@app.command("show")
def subs_show(
    subscriber: Annotated[str, typer.Argument(help="email or id")],
    events: Annotated[int, typer.Option(help="how many of the newest events", min=1)] = 50,
) -> None:
    """One subscriber's whole story: consent, history with who acted, last deliveries."""
    with session() as s:
        story = profile.load(s, subscriber, events=events)
    person = story.subscriber
    title = f"subscriber {story.id}" + (" (erased)" if story.erased else f": {person.email}")
    console.print(f"[bold]{title}[/]", highlight=False)
    identity = Table.grid(padding=(0, 2))
    for label, value in (
        ("name", person.name or "-"),
        ("since", _when(person.created_at)),
        ("language", person.language or "the newsletter's"),
        ("time zone", person.time_zone or "the newsletter's"),
        ("tags", ", ".join(story.tags) or "-"),
        ("attributes", json.dumps(person.attributes, ensure_ascii=False) or "{}"),
    ):
        _row(identity, label, value)
    console.print(identity)
    console.print(_subscriptions(story))
    console.print(_history(story))
    console.print(_deliveries(story))


def _subscriptions(story: profile.Profile) -> Table:
    table = Table(
        "newsletter", "status", "consent at", "source", "IP", "text", title="Subscriptions"
    )
    for sub in story.subscriptions:
        _row(
            table,
            sub.newsletter,
            sub.status,
            _when(sub.consent_at),
            sub.consent_source or "",
            sub.consent_ip or "",
            sub.consent_text_version or "",
        )
    return table


def _history(story: profile.Profile) -> Table:
    table = Table("when (UTC)", "what", "newsletter", "who", "details", title="History")
    for event in story.events:
        _row(
            table,
            _when(event.at),
            profile.LABELS.get(event.kind, event.kind),
            event.newsletter or "",
            event.actor,
            profile.describe(event.detail),
        )
    return table


def _deliveries(story: profile.Profile) -> Table:
    table = Table("issue", "newsletter", "status", "SMTP reply", "sent", title="Last deliveries")
    for d in story.deliveries:
        _row(
            table,
            f"#{d.issue_number} {d.issue_title}",
            d.newsletter,
            d.status,
            d.smtp_response or "",
            _when(d.sent_at),
        )
    return table
