"""The audit trail page: who did what, when, to which object, from where (admins only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from starlette.responses import Response

from newsletter.access import audit
from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Page

router = protected_router()
PER_PAGE = 100


@router.get("/audit", include_in_schema=False)
def audit_page(
    request: Request,
    session: SessionDep,
    actor: str = "",
    action: str = "",
    since: str = "",
    page: Page = 1,
) -> Response:
    try:
        start = datetime.fromisoformat(since.strip()) if since.strip() else None
        error = None
    except ValueError:
        start, error = None, f"not a date: {since[:40]!r} (use 2026-11-01 or 2026-11-01T08:00)"
    filters = audit.Filters(actor=actor[:100] or None, action=action[:60] or None, since=start)
    total, rows = audit.entries(session, filters, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return views.render(
        request,
        "audit.html.j2",
        title="Audit trail",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        filters={"actor": actor, "action": action, "since": since},
        flash={"kind": "error", "text": error} if error else None,
    )
