"""Engagement counted in SQL: live events plus the tallies folded after the retention period.

Every figure here is one ``GROUP BY`` over ``engagement_event`` (by the index on issue, kind and
verdict) added to the same grouping over ``engagement_tally``; no event is read into Python.
An issue's events are either live or folded (the fold deletes what it counts), so adding the two
counts each event once. Distinct readers over several links (an article's, a section's) cannot
be recovered from tallies kept per link: there the folded figure is the largest of the links'
distinct readers, a lower bound (never an inflated one).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlmodel import Session

from newsletter.models_analytics import (
    EngagementEvent,
    EngagementKind,
    EngagementTally,
    IssueLink,
)
from newsletter.tables import table_of

__all__ = ["Count", "by_issue", "by_link_group", "machine_rules", "sort_in_memory"]

EE = table_of(EngagementEvent)
ET = table_of(EngagementTally)
IL = table_of(IssueLink)


@dataclass
class Count:
    """Events and distinct readers of one group and verdict."""

    events: int = 0
    uniques: int = 0

    def add(self, events: object, uniques: object) -> None:
        self.events += int(events or 0)  # type: ignore[call-overload]
        self.uniques += int(uniques or 0)  # type: ignore[call-overload]


#: PostgreSQL's memory for one sort in the report's transaction: counting the distinct readers of
#: 200,000 events sorts them, and the default 4 MB spills that sort to disk (measured: 1.6x slower)
REPORT_WORK_MEM = "32MB"


def sort_in_memory(session: Session) -> None:
    """Let this transaction's distinct counts sort in memory (PostgreSQL; SQLite has no limit)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))


#: (issue id, kind, verdict) -> Count
IssueCounts = dict[tuple[int, str, str], Count]


def by_issue(session: Session, issue_ids: Collection[int]) -> IssueCounts:
    """Per issue, kind (click, open) and verdict: events and distinct readers."""
    found: IssueCounts = {}
    if not issue_ids:
        return found
    ids = list(issue_ids)
    live = (
        select(EE.c.issue_id, EE.c.kind, EE.c.verdict, func.count(), _distinct_readers())
        .where(EE.c.issue_id.in_(ids))
        .group_by(EE.c.issue_id, EE.c.kind, EE.c.verdict)
    )
    # the issue-wide rows: opens, and the clicks' row over all links
    folded = (
        select(
            ET.c.issue_id, ET.c.kind, ET.c.verdict, func.sum(ET.c.events), func.sum(ET.c.uniques)
        )
        .where(ET.c.issue_id.in_(ids), ET.c.link_id.is_(None))
        .group_by(ET.c.issue_id, ET.c.kind, ET.c.verdict)
    )
    for statement in (live, folded):
        for issue_id, kind, verdict, events, uniques in session.execute(statement):
            found.setdefault((int(issue_id), str(kind), str(verdict)), Count()).add(events, uniques)
    return found


#: (issue id, *group keys, verdict) -> Count
GroupCounts = dict[tuple[Any, ...], Count]


def by_link_group(session: Session, issue_ids: Collection[int], keys: Sequence[str]) -> GroupCounts:
    """Clicks per issue, per group of its links (``keys``: columns of ``issue_link`` such as
    ``("article_id",)``, ``("section",)``, ``("position",)`` or ``("id",)``) and verdict."""
    found: GroupCounts = {}
    if not issue_ids:
        return found
    ids = list(issue_ids)
    columns = [IL.c[k] for k in keys]
    live = (
        select(EE.c.issue_id, *columns, EE.c.verdict, func.count(), _distinct_readers())
        .select_from(EE.join(IL, IL.c.id == EE.c.link_id))
        .where(EE.c.issue_id.in_(ids), EE.c.kind == EngagementKind.click)
        .group_by(EE.c.issue_id, *columns, EE.c.verdict)
    )
    folded = (
        select(
            ET.c.issue_id,
            *columns,
            ET.c.verdict,
            func.sum(ET.c.events),
            # one link's readers are exact; a group of links' are at least its largest link's
            func.sum(ET.c.uniques) if list(keys) == ["id"] else func.max(ET.c.uniques),
        )
        .select_from(ET.join(IL, IL.c.id == ET.c.link_id))
        .where(ET.c.issue_id.in_(ids), ET.c.kind == EngagementKind.click)
        .group_by(ET.c.issue_id, *columns, ET.c.verdict)
    )
    width = len(keys)
    for statement in (live, folded):
        for row in session.execute(statement):
            head = (int(row[0]), *row[1 : 1 + width], str(row[1 + width]))
            found.setdefault(head, Count()).add(row[2 + width], row[3 + width])
    return found


def machine_rules(session: Session, issue_id: int) -> list[tuple[str, str, int, int]]:
    """(kind, rule, events, distinct readers) of the machine verdicts of live events, most
    first (the tallies keep no rule)."""
    machine = EE.c.verdict == "machine"
    rows = session.execute(
        select(EE.c.kind, EE.c.rule, func.count(), _distinct_readers())
        .where(EE.c.issue_id == issue_id, machine)
        .group_by(EE.c.kind, EE.c.rule)
        .order_by(func.count().desc(), EE.c.kind, EE.c.rule)
    ).all()
    return [(str(k), str(r or ""), int(n), int(u)) for k, r, n, u in rows]


def _distinct_readers() -> ColumnElement[int]:
    return func.count(EE.c.subscriber_id.distinct())
