"""A newsletter's autopilot page in the editor UI: its schedule and drafting rules, its sources,
its latest runs.

Routes do HTTP only: the form's text goes to ``autopilot.rules.update_autopilot`` (the same
checks as the CLI and the JSON API) and ``autopilot.sources``. A refused form comes back with
what was typed and why (422); nothing is stored.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import islice
from typing import Any

from fastapi import Request
from sqlmodel import Session
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Id
from newsletter.autopilot import drafting, rules, schedule, sources
from newsletter.exceptions import InvalidInput, UserError
from newsletter.models import Autopilot, Newsletter, utcnow
from newsletter.newsletters import get_newsletter

router = protected_router()

FIELD_MAX = 6000
TEXT_FIELDS = (
    "rule",
    "lead_hours",
    "sections",
    "other_section",
    "ordering",
    "priority_tag",
    "per_section",
    "lead",
    "nothing_new",
    "note_text",
    "catch_up_hours",
)
BOXES = ("enabled", "auto_schedule")
SOURCE_FIELDS = ("url", "fetch_minutes", "tag", "section", "author")


def page_url(newsletter_id: int | None) -> str:
    return f"/admin/newsletters/{newsletter_id}/autopilot"


def _values(pilot: Autopilot) -> dict[str, Any]:
    values: dict[str, Any] = {k: str(getattr(pilot, k)) for k in TEXT_FIELDS if k != "sections"}
    values["sections"] = rules.mapping_text(pilot)
    values.update({k: bool(getattr(pilot, k)) for k in BOXES})
    return values


async def _form(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    form = await request.form()
    typed: dict[str, str] = {}
    for name in names:
        value = form.get(name, "")
        if not isinstance(value, str):
            raise InvalidInput(f"'{name}' must be text, not a file")
        if len(value) > FIELD_MAX:
            raise InvalidInput(f"'{name}' is longer than {FIELD_MAX} characters")
        typed[name] = value
    return typed


@router.get("/newsletters/{newsletter_id}/autopilot", include_in_schema=False)
def autopilot_page(request: Request, newsletter_id: Id, session: SessionDep) -> Response:
    newsletter = get_newsletter(session, newsletter_id)
    return _page(request, session, newsletter)


@router.post("/newsletters/{newsletter_id}/autopilot", include_in_schema=False)
async def save_autopilot(request: Request, newsletter_id: Id, session: SessionDep) -> Response:
    newsletter = get_newsletter(session, newsletter_id)
    typed: dict[str, Any] = await _form(request, TEXT_FIELDS + BOXES)
    for box in BOXES:
        typed[box] = typed[box] == "on"
    try:
        rules.update_autopilot(session, newsletter, typed)
    except UserError as exc:
        return _refused(request, session, newsletter_id, str(exc), values=typed)
    return views.redirect(request, page_url(newsletter_id), notice="Autopilot saved.")


@router.post("/newsletters/{newsletter_id}/autopilot/sources", include_in_schema=False)
async def add_source(request: Request, newsletter_id: Id, session: SessionDep) -> Response:
    get_newsletter(session, newsletter_id)
    typed = await _form(request, SOURCE_FIELDS)
    try:
        if typed["url"].strip():
            every = typed["fetch_minutes"]
            source = sources.add_feed(
                session, newsletter=newsletter_id, url=typed["url"], fetch_minutes=every
            )
        else:
            fields = {k: typed[k] for k in ("tag", "section", "author")}
            source = sources.add_query(session, newsletter=newsletter_id, **fields)
    except UserError as exc:
        return _refused(request, session, newsletter_id, str(exc), source=typed)
    request.state.audit_target = ("source", source.id)
    notice = f"Source added: {sources.describe(source)}."
    return views.redirect(request, page_url(newsletter_id), notice=notice)


@router.post("/newsletters/{newsletter_id}/autopilot/sources/{source_id}", include_in_schema=False)
async def update_source(
    request: Request, newsletter_id: Id, source_id: Id, session: SessionDep
) -> Response:
    """A feed's fetch interval, changed from its row in the sources table."""
    get_newsletter(session, newsletter_id)
    typed = await _form(request, ("fetch_minutes",))
    try:
        source = sources.set_fetch_minutes(
            session, source_id, typed["fetch_minutes"], newsletter_id=newsletter_id
        )
    except UserError as exc:
        return _refused(request, session, newsletter_id, str(exc))
    notice = f"Source {source_id}: fetched every {source.fetch_minutes} minutes."
    return views.redirect(request, page_url(newsletter_id), notice=notice)


@router.post(
    "/newsletters/{newsletter_id}/autopilot/sources/{source_id}/remove", include_in_schema=False
)
def remove_source(
    request: Request, newsletter_id: Id, source_id: Id, session: SessionDep
) -> Response:
    sources.remove_source(session, source_id, newsletter_id=newsletter_id)
    return views.redirect(request, page_url(newsletter_id), notice="Source removed.")


def _page(
    request: Request,
    session: Session,
    newsletter: Newsletter,
    *,
    values: dict[str, Any] | None = None,
    source: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    assert newsletter.id is not None
    pilot = rules.get_autopilot(session, newsletter.id)
    return views.render(
        request,
        "autopilot.html.j2",
        title=f"Autopilot: {newsletter.name}",
        newsletter=newsletter,
        values=values or _values(pilot),
        source=source
        or {**dict.fromkeys(SOURCE_FIELDS, ""), "fetch_minutes": str(sources.FETCH_MINUTES)},
        plan=_plan(pilot, newsletter),
        sources=[(s, sources.describe(s)) for s in sources.list_sources(session, newsletter.id)],
        runs=drafting.recent_runs(session, newsletter.id),
        flash={"kind": "error", "text": error} if error else None,
    )


def _plan(pilot: Autopilot, newsletter: Newsletter) -> dict[str, Any]:
    """The schedule as read and its next runs (local and UTC), for the page."""
    try:
        read = schedule.parse(pilot.rule, newsletter.time_zone)
    except UserError as exc:  # the zone changed under a saved rule: say so, do not fail
        return {"label": str(exc), "runs": []}
    runs = list(islice(read.runs_after(utcnow()), 3))
    lead = pilot.lead_hours
    return {
        "label": read.label,
        "runs": [(r.astimezone(read.zone), r, r - timedelta(hours=lead)) for r in runs],
    }


def _refused(
    request: Request, session: Session, newsletter_id: int, error: str, **typed: Any
) -> Response:
    session.rollback()
    request.state.refused = True
    newsletter = get_newsletter(session, newsletter_id)
    response = _page(request, session, newsletter, error=error, **typed)
    response.status_code = 422
    return response
