"""What is kept, and for how long: events per subscriber for ``track_retention_days`` (395:
thirteen months, so a year-on-year comparison of the same issue month still has per-reader
figures, then no longer: GDPR's storage limitation), after which an issue's events are folded
into ``EngagementTally`` rows without any subscriber id (the beat's daily ``fold_due``).

A tally row counts, for one issue, link (None: opens, or all the issue's clicks), kind, verdict
and rule-independent variant, the events and the distinct recipients at the time of folding. For
clicks an issue-wide row (``link_id`` None) keeps the issue's unique clickers, which the per-link
rows cannot give by adding up. Once folded, an issue records nothing more (``recording``).

GDPR: ``erase`` deletes a subscriber's events (the tallies hold no subscriber), ``export``
lists them (issue, link URL, kind, verdict, rule, time).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, distinct, func, insert, select
from sqlmodel import Session

from newsletter.models import utcnow
from newsletter.models_analytics import EngagementEvent, EngagementKind, EngagementTally, IssueLink
from newsletter.tables import I, table_of

EE = table_of(EngagementEvent)
ET = table_of(EngagementTally)
IL = table_of(IssueLink)


def due_issues(session: Session, *, retention_days: int, now: datetime | None = None) -> list[int]:
    """Issues sent more than ``retention_days`` ago that still have per-subscriber events."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    rows = session.execute(
        select(EE.c.issue_id)
        .distinct()
        .select_from(EE.join(I, I.c.id == EE.c.issue_id))
        .where(I.c.sent_at.is_not(None), I.c.sent_at < cutoff)
    )
    return sorted(int(r[0]) for r in rows)


def fold_issue(session: Session, issue_id: int, *, now: datetime | None = None) -> int:
    """Fold one issue's events into tallies and delete them; the number of events folded."""
    at = now or utcnow()
    keys = (EE.c.link_id, EE.c.kind, EE.c.verdict, EE.c.variant)
    counted = [
        func.count().label("events"),
        func.count(distinct(EE.c.subscriber_id)).label("uniques"),
    ]
    mine = EE.c.issue_id == issue_id
    per_link = session.execute(select(*keys, *counted).where(mine).group_by(*keys)).all()
    clicks = (EE.c.kind, EE.c.verdict, EE.c.variant)
    issue_wide = session.execute(
        select(*clicks, *counted).where(mine, EE.c.kind == EngagementKind.click).group_by(*clicks)
    ).all()
    rows: list[dict[str, Any]] = [
        {
            "link_id": r.link_id,
            "kind": r.kind,
            "verdict": r.verdict,
            "variant": r.variant,
            "events": r.events,
            "uniques": r.uniques,
        }
        for r in per_link
    ] + [
        {
            "link_id": None,
            "kind": r.kind,
            "verdict": r.verdict,
            "variant": r.variant,
            "events": r.events,
            "uniques": r.uniques,
        }
        for r in issue_wide
    ]
    if rows:
        session.execute(insert(ET), [{**r, "issue_id": issue_id, "folded_at": at} for r in rows])
    deleted = session.execute(delete(EE).where(mine))
    session.flush()
    return int(deleted.rowcount)  # type: ignore[attr-defined]


def fold_due(session: Session, *, retention_days: int, now: datetime | None = None) -> int:
    """Fold every issue past the retention period; the events folded (the beat, daily)."""
    return sum(
        fold_issue(session, issue_id, now=now)
        for issue_id in due_issues(session, retention_days=retention_days, now=now)
    )


def erase(session: Session, subscriber_id: int) -> int:
    """Delete one subscriber's events (GDPR erasure); how many."""
    result = session.execute(delete(EE).where(EE.c.subscriber_id == subscriber_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def export(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """One subscriber's events, oldest first, as JSON-ready rows (GDPR export)."""
    rows = session.execute(
        select(EE.c.issue_id, IL.c.url, EE.c.kind, EE.c.verdict, EE.c.rule, EE.c.at)
        .select_from(EE.outerjoin(IL, IL.c.id == EE.c.link_id))
        .where(EE.c.subscriber_id == subscriber_id)
        .order_by(EE.c.at, EE.c.id)
    ).mappings()
    return [
        {
            "issue_id": r["issue_id"],
            "link": r["url"],  # None: an open
            "kind": r["kind"],
            "verdict": r["verdict"],
            "rule": r["rule"],
            "at": r["at"].isoformat(),
        }
        for r in rows
    ]


def event_totals(session: Session) -> dict[tuple[str, str], int]:
    """Every event ever recorded by (kind, verdict): the per-subscriber ones and the folded
    ones (a tally's issue-wide click rows aside, which repeat its per-link rows): /metrics."""
    totals: dict[tuple[str, str], int] = {}
    live = session.execute(
        select(EE.c.kind, EE.c.verdict, func.count()).group_by(EE.c.kind, EE.c.verdict)
    )
    folded = session.execute(
        select(ET.c.kind, ET.c.verdict, func.sum(ET.c.events))
        .where((ET.c.link_id.is_not(None)) | (ET.c.kind != EngagementKind.click))
        .group_by(ET.c.kind, ET.c.verdict)
    )
    for kind, verdict, count in [*live, *folded]:
        totals[(kind, verdict)] = totals.get((kind, verdict), 0) + int(count or 0)
    return totals
