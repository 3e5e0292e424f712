"""Across a newsletter's issues: issues, articles and sections over time, position effects,
sending hours and segments against everyone.

The last ``limit`` issues the newsletter started sending are read; each figure is the SQL of
``figures`` and ``outcomes`` grouped per issue (a few dozen rows), combined here. Rates are
distinct human readers over messages delivered, summed over the issues of a group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from newsletter.analytics import figures, outcomes
from newsletter.analytics.figures import Count
from newsletter.analytics.issue_report import CLICK, HUMAN, OPEN, A, rate
from newsletter.exceptions import InvalidInput
from newsletter.models import Issue, Segment
from newsletter.newsletters import get_newsletter
from newsletter.statuses import IssueKind
from newsletter.tables import I, table_of

__all__ = ["MAX_ISSUES", "Rates", "Trends", "trends"]

MAX_ISSUES = 100
SEG = table_of(Segment)


@dataclass
class Rates:
    """A group of issues (an hour, a segment, a position): totals and rates."""

    key: int
    label: str
    issues: int = 0
    delivered: int = 0
    openers: int = 0  # distinct human openers, summed over the issues
    clickers: int = 0

    @property
    def open_rate(self) -> float:
        return rate(self.openers, self.delivered)

    @property
    def click_rate(self) -> float:
        return rate(self.clickers, self.delivered)

    def row(self) -> dict[str, object]:
        return {
            "key": self.key,
            "label": self.label,
            "issues": self.issues,
            "delivered": self.delivered,
            "human_openers": self.openers,
            "human_clickers": self.clickers,
            "open_rate": self.open_rate,
            "click_rate": self.click_rate,
        }


@dataclass
class Trends:
    newsletter_id: int
    time_zone: str
    issues: list[dict[str, object]] = field(default_factory=list)  # newest first
    articles: list[dict[str, object]] = field(default_factory=list)
    sections: list[dict[str, object]] = field(default_factory=list)
    positions: list[Rates] = field(default_factory=list)
    hours: list[Rates] = field(default_factory=list)
    segments: list[Rates] = field(default_factory=list)


def trends(session: Session, newsletter: str | int, *, limit: int = 12) -> Trends:
    """The newsletter's figures over its last ``limit`` sends."""
    if not 1 <= limit <= MAX_ISSUES:
        raise InvalidInput(f"issues is 1 to {MAX_ISSUES}, not {limit}")
    nl = get_newsletter(session, str(newsletter))
    assert nl.id is not None
    sent = _sent_issues(session, nl.id, limit)
    figures.sort_in_memory(session)
    found = Trends(nl.id, nl.time_zone)
    ids = [i.id for i in sent if i.id is not None]
    done = outcomes.outcomes(session, ids)
    engaged = figures.by_issue(session, ids)
    zone = ZoneInfo(nl.time_zone)

    def readers(issue_id: int, kind: str) -> int:
        return engaged.get((issue_id, kind, HUMAN), Count()).uniques

    hours: dict[int, Rates] = {}
    segments: dict[int, Rates] = {}
    names = _segment_names(session, {i.segment_id for i in sent if i.segment_id})
    for issue in sent:
        assert issue.id is not None and issue.send_started_at is not None
        delivered, opened = done[issue.id].delivered, readers(issue.id, OPEN)
        clicked = readers(issue.id, CLICK)
        hour = _aware(issue.send_started_at).astimezone(zone).hour
        found.issues.append(
            {
                "issue_id": issue.id,
                "number": issue.number,
                "title": issue.title,
                "send_started_at": _aware(issue.send_started_at).isoformat(),
                "hour": hour,
                "segment_id": issue.segment_id,
                "delivered": delivered,
                "human_openers": opened,
                "human_clickers": clicked,
                "open_rate": rate(opened, delivered),
                "click_rate": rate(clicked, delivered),
            }
        )
        _add(hours, hour, f"{hour:02d}:00", delivered, opened, clicked)
        segment = issue.segment_id
        label = names.get(segment, f"segment {segment}") if segment else "Everyone"
        _add(segments, segment or 0, label, delivered, opened, clicked)
    found.hours = sorted(hours.values(), key=_key)
    found.segments = sorted(segments.values(), key=_key)
    delivered_of = {i: done[i].delivered for i in ids}
    found.articles = _articles(session, ids, delivered_of)
    found.sections = _sections(session, ids, delivered_of)
    found.positions = _positions(session, ids, delivered_of)
    return found


def _key(r: Rates) -> int:
    return r.key


def _num(value: object) -> int:
    """A figure of a row (rows are ``dict[str, object]`` for the JSON and the CSV)."""
    return int(value) if isinstance(value, int | float) else 0


def _add(groups: dict[int, Rates], key: int, label: str, delivered: int, o: int, c: int) -> Rates:
    group = groups.setdefault(key, Rates(key, label))
    group.issues += 1
    group.delivered += delivered
    group.openers += o
    group.clickers += c
    return group


def _sent_issues(session: Session, newsletter_id: int, limit: int) -> list[Issue]:
    return list(
        session.execute(
            select(Issue)
            .where(
                I.c.newsletter_id == newsletter_id,
                I.c.send_started_at.is_not(None),
                I.c.kind != IssueKind.welcome,
            )
            .order_by(I.c.send_started_at.desc(), I.c.id.desc())
            .limit(limit)
        ).scalars()
    )


def _segment_names(session: Session, ids: set[int | None]) -> dict[int | None, str]:
    if not ids:
        return {}
    rows = session.execute(select(SEG.c.id, SEG.c.name).where(SEG.c.id.in_(ids))).all()
    return {int(i): str(n) for i, n in rows}


def _grouped_rows(
    session: Session,
    ids: list[int],
    key: str,
    delivered_of: dict[int, int],
    describe: Callable[[int, object], dict[str, object]],
) -> list[dict[str, object]]:
    counts = figures.by_link_group(session, ids, [key])
    rows = []
    for (issue_id, value, verdict), count in counts.items():
        if verdict != HUMAN or value is None:
            continue
        delivered = delivered_of.get(issue_id, 0)
        row = {"issue_id": issue_id, **describe(issue_id, value)}
        row.update(clicks=count.events, clickers=count.uniques, delivered=delivered)
        row["ctr"] = rate(count.uniques, delivered)
        rows.append(row)
    return rows


def _articles(
    session: Session, ids: list[int], delivered_of: dict[int, int]
) -> list[dict[str, object]]:
    """Per issue and article: clicks, clickers and CTR, with its title; best CTR first."""
    rows = _grouped_rows(session, ids, "article_id", delivered_of, lambda _i, v: {"article_id": v})
    titles = dict(
        session.execute(
            select(A.c.id, A.c.title).where(A.c.id.in_({r["article_id"] for r in rows}))
        ).all()
    )
    for row in rows:
        row["title"] = titles.get(row["article_id"], "")
    return sorted(rows, key=lambda r: (-float(str(r["ctr"])), -_num(r["issue_id"])))


def _sections(
    session: Session, ids: list[int], delivered_of: dict[int, int]
) -> list[dict[str, object]]:
    """Per issue and section title: distinct human clickers of its stories and the CTR."""
    rows = _grouped_rows(session, ids, "section", delivered_of, lambda _i, v: {"section": v})
    return sorted(rows, key=lambda r: (str(r["section"]), -_num(r["issue_id"])))


def _positions(session: Session, ids: list[int], delivered_of: dict[int, int]) -> list[Rates]:
    """CTR by the story's place (1 = the lead), summed over the issues that had one there."""
    groups: dict[int, Rates] = {}
    for row in _grouped_rows(session, ids, "position", delivered_of, lambda _i, v: {"p": v}):
        p = _num(row["p"])
        _add(groups, p, f"#{p}", _num(row["delivered"]), 0, _num(row["clickers"]))
    return sorted(groups.values(), key=_key)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
