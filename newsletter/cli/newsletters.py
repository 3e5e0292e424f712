"""``newsletter newsletters``: create, edit, list and show newsletters and their settings.

Every option is checked by ``newsletter.newsletters`` (the same code as the API and the editor
UI); a refused value is one line naming the field, and nothing is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from newsletter import newsletters
from newsletter.cli.common import audited, console, session, settings
from newsletter.exceptions import InvalidInput
from newsletter.models import Newsletter
from newsletter.sending.checks import qa_config

app = typer.Typer(help="Newsletters and their settings.", no_args_is_help=True)

Text = Annotated[str | None, typer.Option()]
Flag = Annotated[bool | None, typer.Option(show_default=False)]


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (``None`` is "not given")."""
    return {k: v for k, v in options.items() if v is not None}


@app.command("create")
def create(
    slug: Annotated[str, typer.Option(help="lower-case letters, digits, hyphens")],
    name: Annotated[str, typer.Option()],
    from_email: Annotated[str, typer.Option(help="the sender address")],
    postal_address: Annotated[str, typer.Option(help="shown in every email's footer")],
    from_name: Annotated[str | None, typer.Option(help="default: the name")] = None,
    reply_to: Text = None,
    language: Annotated[str | None, typer.Option(help="BCP 47: en, be, ru...")] = None,
    time_zone: Annotated[str | None, typer.Option(help="IANA: Europe/Minsk, UTC...")] = None,
    brand_color: Annotated[str | None, typer.Option(help="#rrggbb")] = None,
    logo_url: Annotated[str | None, typer.Option(help="https")] = None,
    masthead: Text = None,
    about: Annotated[str | None, typer.Option(help="about this newsletter (public pages)")] = None,
    footer_text: Annotated[str | None, typer.Option(help="why you get this (email footer)")] = None,
    website_url: Text = None,
    membership_url: Text = None,
    membership_text: Text = None,
    membership_button: Text = None,
    membership_cta: Annotated[bool, typer.Option(help="show the membership CTA")] = False,
    section: Annotated[list[str] | None, typer.Option(help="a default section; repeat")] = None,
    requires_review: Annotated[bool, typer.Option(help="issues need review")] = False,
    track_clicks: Annotated[bool, typer.Option(help="count clicks (links via /r/)")] = False,
    track_opens: Annotated[bool, typer.Option(help="count opens (a pixel)")] = False,
    signup_pitch: Annotated[str | None, typer.Option(help="the sign-up box's line")] = None,
    layout: Annotated[str | None, typer.Option(help="digest | alert | letter")] = None,
    font: Annotated[str | None, typer.Option(help="serif | sans")] = None,
    story_images: Annotated[str | None, typer.Option(help="thumbnail | none")] = None,
    spam_threshold: Annotated[
        float | None, typer.Option(help="a SpamAssassin score that blocks a send (5.0)")
    ] = None,
) -> None:
    """Create a newsletter."""
    fields = _given(
        slug=slug,
        name=name,
        from_email=from_email,
        postal_address=postal_address,
        from_name=from_name,
        reply_to=reply_to,
        language=language,
        time_zone=time_zone,
        brand_color=brand_color,
        logo_url=logo_url,
        masthead=masthead,
        description=about,
        footer_text=footer_text,
        website_url=website_url,
        membership_url=membership_url,
        membership_text=membership_text,
        membership_button=membership_button,
        membership_cta=membership_cta,
        default_sections=section,
        requires_review=requires_review,
        track_clicks=track_clicks,
        track_opens=track_opens,
        signup_pitch=signup_pitch,
        layout=layout,
        font=font,
        story_images=story_images,
        spam_threshold=spam_threshold,
    )
    with session() as s:
        created = newsletters.create_newsletter(s, fields, relays=settings().relay_names())
        audited(s, "newsletter.create", target_type="newsletter", target_id=created.id)
        console.print(f"newsletter {created.id}: {created.slug} ({created.name})", highlight=False)


@app.command("edit")
def edit(
    newsletter: Annotated[str, typer.Argument(help="slug or id")],
    slug: Text = None,
    name: Text = None,
    from_email: Text = None,
    postal_address: Text = None,
    from_name: Text = None,
    reply_to: Annotated[str | None, typer.Option(help="empty clears it")] = None,
    language: Text = None,
    time_zone: Text = None,
    brand_color: Text = None,
    logo_url: Annotated[str | None, typer.Option(help="https; empty clears it")] = None,
    masthead: Text = None,
    about: Annotated[str | None, typer.Option(help="about this newsletter (public pages)")] = None,
    footer_text: Annotated[str | None, typer.Option(help="why you get this (email footer)")] = None,
    website_url: Text = None,
    membership_url: Text = None,
    membership_text: Text = None,
    membership_button: Text = None,
    membership_cta: Annotated[
        bool | None, typer.Option("--membership-cta/--no-membership-cta", show_default=False)
    ] = None,
    section: Annotated[
        list[str] | None, typer.Option(help="default sections (replaces them); repeat")
    ] = None,
    clear_sections: Annotated[bool, typer.Option(help="no default sections")] = False,
    requires_review: Annotated[
        bool | None, typer.Option("--requires-review/--no-requires-review", show_default=False)
    ] = None,
    track_clicks: Annotated[
        bool | None, typer.Option("--track-clicks/--no-track-clicks", show_default=False)
    ] = None,
    track_opens: Annotated[
        bool | None, typer.Option("--track-opens/--no-track-opens", show_default=False)
    ] = None,
    signup_pitch: Annotated[str | None, typer.Option(help="the sign-up box's line")] = None,
    layout: Annotated[str | None, typer.Option(help="digest | alert | letter")] = None,
    font: Annotated[str | None, typer.Option(help="serif | sans")] = None,
    story_images: Annotated[str | None, typer.Option(help="thumbnail | none")] = None,
    spam_threshold: Annotated[
        float | None, typer.Option(help="a SpamAssassin score that blocks a send (5.0)")
    ] = None,
    relay: Annotated[
        str | None, typer.Option(help="the SMTP relay its issues use (`newsletter relays`); '' all")
    ] = None,
) -> None:
    """Change the settings given; the others stay as they are."""
    fields = _given(
        slug=slug,
        name=name,
        from_email=from_email,
        postal_address=postal_address,
        from_name=from_name,
        reply_to=reply_to,
        language=language,
        time_zone=time_zone,
        brand_color=brand_color,
        logo_url=logo_url,
        masthead=masthead,
        description=about,
        footer_text=footer_text,
        website_url=website_url,
        membership_url=membership_url,
        membership_text=membership_text,
        membership_button=membership_button,
        membership_cta=membership_cta,
        default_sections=[] if clear_sections else section,
        requires_review=requires_review,
        track_clicks=track_clicks,
        track_opens=track_opens,
        signup_pitch=signup_pitch,
        layout=layout,
        font=font,
        story_images=story_images,
        spam_threshold=spam_threshold,
        relay=relay,
    )
    if not fields:
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    with session() as s:
        relays = settings().relay_names()
        changed = newsletters.update_newsletter(s, newsletter, fields, relays=relays)
        audited(s, "newsletter.update", target_type="newsletter", target_id=changed.id)
        console.print(
            f"newsletter {changed.id} saved: {', '.join(sorted(fields))}", highlight=False
        )


@app.command("list")
def list_all() -> None:
    """Every newsletter."""
    table = Table("id", "slug", "name", "from", "language", "time zone", "review")
    with session() as s:
        for n in newsletters.list_newsletters(s):
            table.add_row(
                str(n.id),
                n.slug,
                n.name,
                f"{n.from_name} <{n.from_email}>",
                n.language,
                n.time_zone,
                "yes" if n.requires_review else "no",
            )
    console.print(table)


@app.command("show")
def show(newsletter: Annotated[str, typer.Argument(help="slug or id")]) -> None:
    """Every setting of one newsletter."""
    with session() as s:
        found = newsletters.get_newsletter(s, newsletter)
        rows = _rows(found)
    table = Table("setting", "value", show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _rows(n: Newsletter) -> list[tuple[str, str]]:
    def shown(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return "; ".join(value) or "-"
        return str(value) if value not in (None, "") else "-"

    label = {"description": "about", "default_sections": "sections"}
    rows = [("id", str(n.id))]
    rows += [(label.get(k, k), shown(getattr(n, k))) for k in newsletters.FIELDS]
    return rows


@app.command("welcome")
def welcome_email(
    newsletter: Annotated[str, typer.Argument(help="slug or id")],
    create: Annotated[bool, typer.Option(help="create a new welcome issue and choose it")] = False,
    issue: Annotated[int | None, typer.Option(help="the welcome issue's id")] = None,
    on: Annotated[bool | None, typer.Option("--on/--off", show_default=False)] = None,
    with_latest: Annotated[
        bool | None,
        typer.Option(
            "--with-latest/--without-latest",
            help="the latest sent issue goes too",
            show_default=False,
        ),
    ] = None,
    publish: Annotated[bool, typer.Option(help="freeze the welcome's current text")] = False,
) -> None:
    """The welcome email: sent once to each subscriber who confirms (no option: show it)."""
    from newsletter.sending import welcome

    with session() as s:
        nl = newsletters.get_newsletter(s, newsletter)
        if create:
            made = welcome.create(s, newsletter=nl.id)  # type: ignore[arg-type]
            audited(s, "issue.create", target_type="issue", target_id=made.id, newsletter_id=nl.id)
            issue = made.id
            console.print(
                f"welcome issue {made.id} created: edit it in the composer", highlight=False
            )
        if publish:
            chosen = issue or welcome.welcome_of(s, nl.id).issue  # type: ignore[arg-type]
            if chosen is None:
                raise InvalidInput("no welcome issue to publish: give --issue or --create")
            issue_id = chosen if isinstance(chosen, int) else chosen.id
            welcome.publish(s, issue_id=issue_id, checks=qa_config(settings()))  # type: ignore[arg-type]
            audited(
                s, "welcome.publish", target_type="issue", target_id=issue_id, newsletter_id=nl.id
            )
        if issue is not None or on is not None or with_latest is not None:
            welcome.configure(
                s,
                newsletter=nl.id,  # type: ignore[arg-type]
                issue_id=issue,
                enabled=on,
                with_latest=with_latest,
                checks=qa_config(settings()),
            )
            audited(s, "newsletter.welcome", target_type="newsletter", target_id=nl.id)
        state = welcome.welcome_of(s, nl.id)  # type: ignore[arg-type]
    table = Table("welcome", "", show_header=False)
    table.add_row("on", "yes" if state.enabled else "no")
    table.add_row("issue", f"{state.issue.id}: {state.issue.title}" if state.issue else "-")
    table.add_row("latest issue too", "yes" if state.with_latest else "no")
    published = f"{state.published_at:%Y-%m-%d %H:%M} UTC" if state.published_at else "never"
    table.add_row("published", published)
    table.add_row("sent", f"{state.sent} ({state.waiting} waiting)")
    console.print(table)
