"""The analytics pages: an issue's report with its heat view, a newsletter's trends, and each
of their tables as CSV.

``/admin/issues/{id}/report`` (linked from the sending view and the composer of a sent issue),
``.../report/heat.html`` (the frozen email with each link's share: served sandboxed like the
composer's preview, shown in an ``<iframe sandbox>``), ``.../report/{table}.csv``;
``/admin/newsletters/{id}/analytics`` (linked from the dashboard and the newsletter's page) and
``.../analytics/{table}.csv``. The action is ``analytics.read``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from newsletter.analytics import heat, tables
from newsletter.analytics.issue_report import issue_report
from newsletter.analytics.trends import MAX_ISSUES, trends
from newsletter.api.admin import analytics_charts as charts
from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.admin.composer import PREVIEW_HEADERS
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Id
from newsletter.exceptions import NotFound
from newsletter.models import RenderedIssue
from newsletter.newsletters import get_newsletter

router = protected_router()
Issues = Annotated[int, Query(ge=1, le=MAX_ISSUES)]


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={**views.ADMIN_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def _story(position: int | None, title: str) -> str:
    return f"#{position} {title}" if position else title


@router.get("/issues/{issue_id}/report", include_in_schema=False)
def issue_report_page(request: Request, issue_id: Id, session: SessionDep) -> Response:
    report = issue_report(session, issue_id)
    newsletter = get_newsletter(session, report.newsletter_id)
    top = sorted(report.articles, key=lambda a: (-a.ctr, a.position or 0))
    return views.render(
        request,
        "issue_report.html.j2",
        title=f"{newsletter.name} #{report.number}: {report.title}",
        report=report,
        newsletter=newsletter,
        frozen=session.get(RenderedIssue, issue_id) is not None,
        chart=charts.bars([(_story(a.position, a.title), a.ctr) for a in top]),
        tables=tables.ISSUE_TABLES,
    )


@router.get("/issues/{issue_id}/report/heat.html", include_in_schema=False)
def heat_frame(issue_id: Id, session: SessionDep) -> Response:
    report = issue_report(session, issue_id)
    body = heat.heat_html(session, issue_id, report.links)
    return Response(body, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


@router.get("/issues/{issue_id}/report/{table}.csv", include_in_schema=False)
def issue_report_csv(issue_id: Id, table: str, session: SessionDep) -> Response:
    if table not in tables.ISSUE_TABLES:
        raise NotFound(f"no table {table[:40]!r}: choose {', '.join(tables.ISSUE_TABLES)}")
    rows = tables.issue_table(issue_report(session, issue_id), table)
    body = tables.to_csv(rows, tables.HEADERS[table])
    return _csv(body, f"issue-{issue_id}-{table}.csv")


@router.get("/newsletters/{newsletter_id}/analytics", include_in_schema=False)
def newsletter_analytics(
    request: Request, newsletter_id: Id, session: SessionDep, issues: Issues = 12
) -> Response:
    found = trends(session, newsletter_id, limit=issues)
    newsletter = get_newsletter(session, newsletter_id)
    oldest_first = list(reversed(found.issues))
    over_time = charts.lines(
        [f"#{i['number']}" for i in oldest_first],
        {
            "open": [float(str(i["open_rate"])) for i in oldest_first],
            "click": [float(str(i["click_rate"])) for i in oldest_first],
        },
    )
    return views.render(
        request,
        "newsletter_analytics.html.j2",
        title=f"{newsletter.name}: analytics",
        newsletter=newsletter,
        trends=found,
        count=issues,
        over_time=over_time,
        positions=charts.bars([(g.label, g.click_rate) for g in found.positions]),
        hours=charts.bars([(g.label, g.click_rate) for g in found.hours]),
        tables=tables.TREND_TABLES,
    )


@router.get("/newsletters/{newsletter_id}/analytics/{table}.csv", include_in_schema=False)
def trends_csv(newsletter_id: Id, table: str, session: SessionDep, issues: Issues = 12) -> Response:
    if table not in tables.TREND_TABLES:
        raise NotFound(f"no table {table[:40]!r}: choose {', '.join(tables.TREND_TABLES)}")
    rows = tables.trend_table(trends(session, newsletter_id, limit=issues), table)
    body = tables.to_csv(rows, tables.TREND_HEADERS[table])
    return _csv(body, f"newsletter-{newsletter_id}-{table}.csv")
