"""Analytics over HTTP: an issue's report and a newsletter's trends, as JSON or one table as CSV.

- ``GET /issues/{id}/report``                     the report (``analytics.issue_report``)
- ``GET /issues/{id}/report/{table}.csv``         summary | articles | links | machines |
                                                  variants
- ``GET /newsletters/{id}/analytics?issues=12``   trends over the last sends (``analytics.trends``)
- ``GET /newsletters/{id}/analytics/{table}.csv`` issues | articles | sections | positions |
                                                  hours | segments

The action is ``analytics.read`` (editors, the audience desk, admins; not writers), checked by
the one permission check. Human and machine figures are separate fields, never added up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from newsletter.analytics import tables
from newsletter.analytics.issue_report import issue_report
from newsletter.analytics.trends import MAX_ISSUES, trends
from newsletter.api.auth import require_token
from newsletter.api.deps import SessionDep
from newsletter.api.errors import api_errors
from newsletter.api.inputs import Id, StrictRoute
from newsletter.api.permissions import authorize_token

router = APIRouter(
    tags=["analytics"],
    dependencies=[Depends(require_token), Depends(authorize_token, scope="function")],
    route_class=StrictRoute,
    responses={**api_errors(401, 403, 422), **api_errors(404)},
)
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
IssueTable = StrEnum("IssueTable", {t: t for t in tables.ISSUE_TABLES})  # type: ignore[misc]
TrendTable = StrEnum("TrendTable", {t: t for t in tables.TREND_TABLES})  # type: ignore[misc]
Issues = Annotated[int, Query(ge=1, le=MAX_ISSUES, description="how many of the last sends")]


class ArticleOut(BaseModel):
    article_id: int
    title: str
    url: str
    section: str | None
    position: int | None
    clicks: int
    clickers: int
    ctr: float
    machine_clicks: int


class LinkOut(BaseModel):
    n: int
    url: str
    kind: str
    article_id: int | None
    section: str | None
    position: int | None
    clicks: int
    clickers: int
    share: float
    machine_clicks: int


class MachineOut(BaseModel):
    kind: str
    rule: str
    events: int
    readers: int


class VariantOut(BaseModel):
    variant: int
    letter: str
    subject: str
    recipients: int
    delivered: int
    human_openers: int
    human_clickers: int
    human_clicks: int
    machine_opens: int
    machine_clicks: int
    open_rate: float
    click_rate: float


class IssueReportOut(BaseModel):
    issue_id: int
    newsletter_id: int
    number: int
    title: str
    status: str
    send_started_at: str | None
    delivered: int
    bounced: int
    complained: int
    unsubscribed: int
    human_openers: int
    human_opens: int
    machine_openers: int
    machine_opens: int
    human_clickers: int
    human_clicks: int
    machine_clickers: int
    machine_clicks: int
    open_rate: float
    click_rate: float
    machine_open_share: float
    mpp_opens: int = Field(description="opens by Apple Mail Privacy Protection's proxy")
    mpp_share: float = Field(description="Apple MPP's share of all opens recorded")
    articles: list[ArticleOut]
    links: list[LinkOut]
    machines: list[MachineOut]
    variants: list[VariantOut] = Field(description="a subject test's variants ([] without one)")


class TrendIssueOut(BaseModel):
    issue_id: int
    number: int
    title: str
    send_started_at: str
    hour: int
    segment_id: int | None
    delivered: int
    human_openers: int
    human_clickers: int
    open_rate: float
    click_rate: float


class TrendArticleOut(BaseModel):
    issue_id: int
    article_id: int
    title: str
    clicks: int
    clickers: int
    delivered: int
    ctr: float


class TrendSectionOut(BaseModel):
    issue_id: int
    section: str
    clicks: int
    clickers: int
    delivered: int
    ctr: float


class RatesOut(BaseModel):
    key: int
    label: str
    issues: int
    delivered: int
    human_openers: int
    human_clickers: int
    open_rate: float
    click_rate: float


class TrendsOut(BaseModel):
    newsletter_id: int
    time_zone: str
    issues: list[TrendIssueOut]
    articles: list[TrendArticleOut]
    sections: list[TrendSectionOut]
    positions: list[RatesOut]
    hours: list[RatesOut]
    segments: list[RatesOut]


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/issues/{issue_id}/report", summary="An issue's report")
def get_issue_report(issue_id: Id, session: SessionDep) -> IssueReportOut:
    report = issue_report(session, issue_id)
    return IssueReportOut.model_validate(
        {
            **report.summary(),
            **{n: tables.issue_table(report, n) for n in ("articles", "links", "variants")},
            "machines": tables.issue_table(report, "machines"),
        }
    )


@router.get(
    "/issues/{issue_id}/report/{table}.csv",
    summary="One table of an issue's report as CSV",
    response_class=Response,
    responses=CSV,
)
def issue_report_csv(issue_id: Id, table: IssueTable, session: SessionDep) -> Response:
    rows = tables.issue_table(issue_report(session, issue_id), table.value)
    header = tables.HEADERS[table.value]
    return _csv(tables.to_csv(rows, header), f"issue-{issue_id}-{table.value}")


@router.get(
    "/newsletters/{newsletter_id}/analytics",
    summary="A newsletter's figures across its last sends",
)
def get_trends(newsletter_id: Id, session: SessionDep, issues: Issues = 12) -> TrendsOut:
    found = trends(session, newsletter_id, limit=issues)
    return TrendsOut.model_validate(
        {
            "newsletter_id": found.newsletter_id,
            "time_zone": found.time_zone,
            **{name: tables.trend_table(found, name) for name in tables.TREND_TABLES},
        }
    )


@router.get(
    "/newsletters/{newsletter_id}/analytics/{table}.csv",
    summary="One table of a newsletter's trends as CSV",
    response_class=Response,
    responses=CSV,
)
def trends_csv(
    newsletter_id: Id, table: TrendTable, session: SessionDep, issues: Issues = 12
) -> Response:
    rows = tables.trend_table(trends(session, newsletter_id, limit=issues), table.value)
    header = tables.TREND_HEADERS[table.value]
    return _csv(tables.to_csv(rows, header), f"newsletter-{newsletter_id}-{table.value}")
