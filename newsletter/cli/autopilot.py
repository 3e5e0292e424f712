"""``newsletter autopilot``: a newsletter's sources, its recurring schedule and drafting rules;
fetch the feeds or run the beat now."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import audited, console, session, settings

app = typer.Typer(help="The digest autopilot: sources, schedule, drafts.", no_args_is_help=True)

NewsletterArg = Annotated[str, typer.Argument(help="the newsletter's slug or id")]


@app.command("show")
def autopilot_show(newsletter: NewsletterArg) -> None:
    """The schedule, the rules, the next runs, the sources and the latest runs."""
    from newsletter.autopilot import drafting, rules, schedule, sources
    from newsletter.models import utcnow
    from newsletter.newsletters import get_newsletter

    with session() as s:
        nl = get_newsletter(s, newsletter)
        pilot = rules.get_autopilot(s, nl.id)  # type: ignore[arg-type]
        plan = schedule.parse(pilot.rule, nl.time_zone)
        state = "on" if pilot.enabled else "off"
        console.print(
            f"{nl.slug}: autopilot {state}, {plan.label}, drafts {pilot.lead_hours} h ahead, "
            f"catches up a missed run for {pilot.catch_up_hours} h"
        )
        for run in islice(plan.runs_after(utcnow()), 3):
            there = run.astimezone(plan.zone)
            console.print(f"  next run {run:%Y-%m-%d %H:%M} UTC ({there:%a %d %b %H:%M %Z})")
        console.print(f"  sections: {rules.mapping_text(pilot).replace(chr(10), '; ') or '-'}")
        table = Table("id", "source", "every", "last checked", "result")
        for src in sources.list_sources(s, nl.id):  # type: ignore[arg-type]
            checked = f"{src.checked_at:%Y-%m-%d %H:%M}" if src.checked_at else "-"
            every = f"{src.fetch_minutes} min" if src.kind == "feed" else "-"
            table.add_row(
                str(src.id), sources.describe(src), every, checked, src.last_result or "-"
            )
        console.print(table)
        for done in drafting.recent_runs(s, nl.id, limit=5):  # type: ignore[arg-type]
            console.print(f"  run {done.run_at:%Y-%m-%d %H:%M} UTC: {drafting.run_text(done)}")


@app.command("set")
def autopilot_set(
    newsletter: NewsletterArg,
    rule: Annotated[str | None, typer.Option(help="'mon 08:00', 'mon,thu 07:30' or cron")] = None,
    lead_hours: Annotated[int | None, typer.Option(help="draft this many hours ahead")] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="tag=Section title (repeat, in order)")
    ] = None,
    other_section: Annotated[str | None, typer.Option(help="the section for the rest")] = None,
    order: Annotated[str | None, typer.Option(help="newest | priority")] = None,
    lead: Annotated[str | None, typer.Option(help="the lead story: newest | priority")] = None,
    priority_tag: Annotated[str | None, typer.Option()] = None,
    per_section: Annotated[int | None, typer.Option(help="at most N stories per section")] = None,
    nothing_new: Annotated[str | None, typer.Option(help="skip | note")] = None,
    auto_schedule: Annotated[
        bool | None, typer.Option("--auto-schedule/--no-auto-schedule")
    ] = None,
    enabled: Annotated[bool | None, typer.Option("--on/--off")] = None,
    catch_up_hours: Annotated[
        int | None, typer.Option(help="draft a run missed while the beat was down this late")
    ] = None,
) -> None:
    """Change the schedule and rules (only what is given)."""
    from newsletter.autopilot import rules
    from newsletter.newsletters import get_newsletter

    given = {
        "rule": rule,
        "lead_hours": lead_hours,
        "sections": [m.split("=", 1) for m in map_] if map_ is not None else None,
        "other_section": other_section,
        "ordering": order,
        "lead": lead,
        "priority_tag": priority_tag,
        "per_section": per_section,
        "nothing_new": nothing_new,
        "auto_schedule": auto_schedule,
        "enabled": enabled,
        "catch_up_hours": catch_up_hours,
    }
    with session() as s:
        nl = get_newsletter(s, newsletter)
        rules.update_autopilot(s, nl, {k: v for k, v in given.items() if v is not None})
        audited(s, "autopilot.edit", target_type="newsletter", target_id=nl.id, newsletter_id=nl.id)
    autopilot_show(newsletter)


FetchMinutes = Annotated[
    str | None, typer.Option(help="fetch it every N minutes (5 to 1440; 30 if not given)")
]


@app.command("add-feed")
def autopilot_add_feed(
    newsletter: NewsletterArg, url: str, fetch_minutes: FetchMinutes = None
) -> None:
    """Add an RSS, Atom or JSON Feed URL as a source."""
    from newsletter.autopilot import sources

    with session() as s:
        source = sources.add_feed(s, newsletter=newsletter, url=url, fetch_minutes=fetch_minutes)
        audited(s, "autopilot.source", target_type="source", target_id=source.id)
    console.print(f"source {source.id}: {source.url}, every {source.fetch_minutes} min")


@app.command("set-feed")
def autopilot_set_feed(
    source_id: int, fetch_minutes: Annotated[str, typer.Option(help="5 to 1440 minutes")]
) -> None:
    """Change how often a feed source is fetched."""
    from newsletter.autopilot import sources

    with session() as s:
        source = sources.set_fetch_minutes(s, source_id, fetch_minutes)
        audited(s, "autopilot.source.update", target_type="source", target_id=source_id)
    console.print(f"source {source_id}: every {source.fetch_minutes} min")


@app.command("add-query")
def autopilot_add_query(
    newsletter: NewsletterArg,
    tag: Annotated[str, typer.Option()] = "",
    section: Annotated[str, typer.Option()] = "",
    author: Annotated[str, typer.Option()] = "",
) -> None:
    """Add a library query (tag, section, author) as a source."""
    from newsletter.autopilot import sources

    with session() as s:
        source = sources.add_query(
            s, newsletter=newsletter, tag=tag, section=section, author=author
        )
        audited(s, "autopilot.source", target_type="source", target_id=source.id)
        console.print(f"source {source.id}: {sources.describe(source)}")


@app.command("remove-source")
def autopilot_remove_source(source_id: int) -> None:
    """Forget a source (the articles it brought stay)."""
    from newsletter.autopilot import sources

    with session() as s:
        sources.remove_source(s, source_id)
        audited(s, "autopilot.source.remove", target_type="source", target_id=source_id)
    console.print(f"source {source_id} removed")


@app.command("run")
def autopilot_run() -> None:
    """Run one beat now: fetch the due feeds, draft the due issues, tell the editors."""
    from newsletter.autopilot import beat
    from newsletter.sending.checks import qa_config
    from newsletter.transports.factory import make_transport

    current = settings()
    result = beat.run(
        current,
        checks=qa_config(current),
        transport=lambda: make_transport(current.transport_config()),
    )
    for fetched in result.fetched:
        console.print(f"source {fetched.source_id}: {fetched.summary()}")
    for failure in result.failed:
        console.print(f"[red]{failure}[/red]")
    for missed in result.missed:
        console.print(f"[yellow]{missed}[/yellow]")
    for run in result.drafted:
        issue = f"issue {run.issue_id} ({run.status})" if run.issue_id else "no issue"
        console.print(f"run {run.run_at:%Y-%m-%d %H:%M} UTC: {run.outcome}, {issue}")
    if not result.drafted:
        console.print("no run is due")
