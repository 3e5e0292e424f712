"""The dashboard: newsletters with their list health, recent issues with their status and send
progress, a new draft."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlmodel import Session, col, select
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.audience import list_health
from newsletter.audience.subscribers import list_newsletters
from newsletter.config import Settings
from newsletter.content import review
from newsletter.exceptions import InvalidInput
from newsletter.models import Issue, IssueStatus, utcnow
from newsletter.sending import progress
from newsletter.statuses import NOT_STARTED

router = protected_router()
RECENT = 25
PERIODS = {"week": 12, "day": 30}  # how far back the list health looks
HEALTH_SECONDS = 60.0  # how long the dashboard shows the same list health figures
_HEALTH_CACHE: dict[tuple[str, str, tuple[int, ...]], tuple[float, Any, datetime]] = {}
CHART = {"width": 420, "height": 170, "left": 40, "bottom": 26, "top": 10}


@router.get("/", include_in_schema=False)
def dashboard(
    request: Request, session: SessionDep, settings: SettingsDep, by: str = "week"
) -> Response:
    if by not in PERIODS:
        raise InvalidInput(f"by is week or day, not {by!r}")
    unit: list_health.Unit = "week" if by == "week" else "day"
    newsletters = list_newsletters(session)
    names = {n.id: n for n in newsletters}
    issues = session.exec(select(Issue).order_by(col(Issue.created_at).desc()).limit(RECENT)).all()
    rows = []
    for issue in issues:
        started = issue.status not in (*NOT_STARTED, IssueStatus.scheduled)
        state = progress.progress(session, issue_id=issue.id or 0) if started else None
        rows.append(
            {"issue": issue, "newsletter": names.get(issue.newsletter_id), "progress": state}
        )
    health, as_of = _health(session, settings, [n.id for n in newsletters if n.id], unit)
    audience = {nid: h.active for nid, h in health.items()}
    return views.render(
        request,
        "dashboard.html.j2",
        title="Dashboard",
        newsletters=newsletters,
        audience=audience,
        rows=rows,
        waiting=[(i, names.get(i.newsletter_id)) for i in review.waiting(session)],
        health=health,
        charts={nid: chart(h) for nid, h in health.items()},
        kinds=list_health.KINDS,
        by=unit,
        as_of=as_of,
        expiry_days=max(1, settings.confirmation_max_age_seconds // 86400),
    )


def _health(
    session: Session, settings: Settings, ids: list[int], unit: list_health.Unit
) -> tuple[dict[int, list_health.Health], datetime]:
    """The list health, counted at most once a minute per database and view: at a million
    readers the count reads a few hundred thousand index entries, too many for every load."""
    key = (settings.database_url, unit, tuple(ids))
    now = time.monotonic()
    cached = _HEALTH_CACHE.get(key)
    if cached is not None and now - cached[0] < HEALTH_SECONDS:
        return cached[1], cached[2]
    health = list_health.list_health(
        session,
        ids,
        unit=unit,
        periods=PERIODS[unit],
        confirmation_max_age=timedelta(seconds=settings.confirmation_max_age_seconds),
    )
    for stale in [k for k, v in _HEALTH_CACHE.items() if now - v[0] >= HEALTH_SECONDS]:
        del _HEALTH_CACHE[stale]  # other views and databases (tests make many) go with time
    _HEALTH_CACHE[key] = (now, health, utcnow())
    return health, _HEALTH_CACHE[key][2]


def chart(health: list_health.Health) -> dict[str, Any]:
    """The geometry of one newsletter's SVG line chart: a polyline per kind, y ticks, x labels."""
    width, height = CHART["width"], CHART["height"]
    left, bottom, top = CHART["left"], CHART["bottom"], CHART["top"]
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(health.peak, 1)
    count = len(health.starts)
    step = plot_w / max(count - 1, 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(value: int) -> float:
        return round(top + plot_h - value / peak * plot_h, 1)

    lines = {
        kind: " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        for kind, values in health.counts.items()
    }
    every = max(1, count // 4)
    shown = [i for i in range(count) if i % every == 0 or i == count - 1]
    if len(shown) > 2 and shown[-1] - shown[-2] < every:
        shown.pop(-2)  # the last label would overlap the one before it
    labels = [
        {
            "x": x(i),
            "text": health.starts[i].strftime("%d %b"),
            # the first and last labels stay inside the drawing
            "anchor": "start" if i == 0 else "end" if i == count - 1 else "middle",
        }
        for i in shown
    ]
    ticks = [{"y": y(v), "value": v} for v in sorted({0, peak // 2, peak})]
    return {**CHART, "lines": lines, "labels": labels, "ticks": ticks, "right": width - 8}
