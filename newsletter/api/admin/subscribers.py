"""Subscribers: search and filter, add one, export a CSV (the import is ``imports.py``).

Routes do HTTP only: ``newsletter.audience.manage`` searches and creates,
``newsletter.audience.csv_export`` exports (the same code as the CLI and the JSON API). The export
streams, with a database session of its own (the request's is closed by then).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from newsletter import db
from newsletter.access.editors import SignedIn
from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import Page
from newsletter.audience import csv_export, manage, subscribers
from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus
from newsletter.newsletters import get_newsletter

router = protected_router()

PER_PAGE = 50
STATUSES = [s.value for s in SubscriptionStatus]
#: what an editor may give a new subscriber; the other statuses come from the reader or bounces
NEW_STATUSES = (SubscriptionStatus.active, SubscriptionStatus.pending)


def _status(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if value not in STATUSES:
        raise InvalidInput(f"status {value!r} is not one of {', '.join(STATUSES)}")
    return value


@router.get("/subscribers", include_in_schema=False)
def subscriber_list(
    request: Request,
    session: SessionDep,
    email: str = "",
    status: str = "",
    newsletter: str = "",
    page: Page = 1,
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    # pages go by keyset (after/before an id): page 20,000 costs what page 1 does; ``page`` only
    # numbers the rows shown
    found = manage.search(
        session,
        email=email.strip() or None,
        status=_status(status),
        newsletter=newsletter.strip() or None,
        limit=PER_PAGE,
        offset=0 if after is not None or before is not None else (page - 1) * PER_PAGE,
        after=after,
        before=before,
    )
    filters = {"email": email.strip(), "status": status.strip(), "newsletter": newsletter.strip()}
    kept = {k: v for k, v in filters.items() if v}

    def page_link(number: int, **cursor: int) -> str:
        return "/admin/subscribers?" + urlencode({**kept, **cursor, "page": number})

    export = {k: v for k, v in kept.items() if k in ("status", "newsletter")}
    newsletters = subscribers.list_newsletters(session)
    previous_page = None
    if found.previous_before is not None:
        previous_page = (
            page_link(page - 1, before=found.previous_before) if page > 2 else page_link(1)
        )
    return views.render(
        request,
        "subscribers.html.j2",
        title="Subscribers",
        page_items=found.items,
        total=found.total,
        capped=found.capped,
        exact_address=found.exact_address,
        page=page,
        pages=None if found.capped else max(1, -(-found.total // PER_PAGE)),
        paged=found.next_after is not None or found.previous_before is not None,
        first=(page - 1) * PER_PAGE + 1,
        previous_page=previous_page,
        next_page=(
            page_link(page + 1, after=found.next_after) if found.next_after is not None else None
        ),
        filters=filters,
        filtered=bool(kept),
        statuses=STATUSES,
        newsletters=newsletters,
        names={n.slug: n.name for n in newsletters},
        export_url="/admin/subscribers/export.csv" + (f"?{urlencode(export)}" if export else ""),
    )


@router.get("/subscribers/new", include_in_schema=False)
def new_subscriber(request: Request, session: SessionDep) -> Response:
    return views.render(
        request,
        "subscriber_form.html.j2",
        title="Add a subscriber",
        newsletters=subscribers.list_newsletters(session),
        statuses=[s.value for s in NEW_STATUSES],
    )


@router.post("/subscribers", include_in_schema=False)
def create_subscriber(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=1000)] = "",
    newsletters: Annotated[list[str] | None, Form(max_length=100)] = None,
    status: Annotated[str, Form(max_length=20)] = SubscriptionStatus.active.value,
) -> Response:
    if status not in NEW_STATUSES:
        raise InvalidInput(f"a new subscriber is active or pending, not {status!r}")
    if not newsletters:
        raise InvalidInput("tick at least one newsletter")
    subscriber = manage.create(
        session,
        email=email,
        name=name,
        newsletters=newsletters,
        status=SubscriptionStatus(status),
        actor=_actor(request),
    )
    return views.redirect(
        request,
        "/admin/subscribers?" + urlencode({"email": subscriber.email}),
        notice=f"{subscriber.email} added ({status}).",
    )


def _actor(request: Request) -> str:
    editor: SignedIn | None = getattr(request.state, "editor", None)
    return f"editor {editor.email}" if editor else "editor"


@router.get("/subscribers/export.csv", include_in_schema=False)
def export_subscribers(
    session: SessionDep, settings: SettingsDep, newsletter: str = "", status: str = ""
) -> Response:
    # resolved now, so that an unknown newsletter or status is an error page, not a broken stream
    wanted = _status(status)
    newsletter_id = get_newsletter(session, newsletter.strip()).id if newsletter.strip() else None

    def stream() -> Iterator[str]:
        with db.session_scope(settings.database_url) as own:
            yield from csv_export.export_csv(own, newsletter_id=newsletter_id, status=wanted)

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="subscribers.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
