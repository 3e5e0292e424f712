"""A subject test's variants side by side: per variant, the readers it went to and what they did.

Each event carries the variant its reader got (``EngagementEvent.variant``, copied from the
ledger row when the event is recorded), so the opens and clicks of a variant are one
``GROUP BY`` over the issue's events, plus the folded tallies' issue-wide rows (opens, and the
clicks' row over all links) once the issue is past the retention period. The ledger gives each
variant's recipients and delivered messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlmodel import Session

from newsletter.analytics.figures import EE, ET, Count
from newsletter.models import DeliveryStatus
from newsletter.models_analytics import EngagementKind, Verdict
from newsletter.tables import D

__all__ = ["VariantRow", "by_variant", "ledger_by_variant", "variant_rows"]

#: (variant, kind, verdict) -> Count
VariantCounts = dict[tuple[int, str, str], Count]
HUMAN, MACHINE = Verdict.human.value, Verdict.machine.value
CLICK, OPEN = EngagementKind.click.value, EngagementKind.open.value


@dataclass
class VariantRow:
    variant: int
    letter: str
    subject: str
    recipients: int  # ledger rows with this variant
    delivered: int
    human_openers: int
    human_clickers: int
    human_clicks: int
    machine_opens: int
    machine_clicks: int
    open_rate: float  # distinct human openers / delivered
    click_rate: float


def by_variant(session: Session, issue_id: int) -> VariantCounts:
    """Per variant, kind and verdict: events and distinct readers (live plus folded)."""
    live = (
        select(
            EE.c.variant,
            EE.c.kind,
            EE.c.verdict,
            func.count(),
            func.count(EE.c.subscriber_id.distinct()),
        )
        .where(EE.c.issue_id == issue_id, EE.c.variant.is_not(None))
        .group_by(EE.c.variant, EE.c.kind, EE.c.verdict)
    )
    folded = (
        select(ET.c.variant, ET.c.kind, ET.c.verdict, func.sum(ET.c.events), func.sum(ET.c.uniques))
        .where(ET.c.issue_id == issue_id, ET.c.variant.is_not(None), ET.c.link_id.is_(None))
        .group_by(ET.c.variant, ET.c.kind, ET.c.verdict)
    )
    found: VariantCounts = {}
    for statement in (live, folded):
        for variant, kind, verdict, events, uniques in session.execute(statement):
            found.setdefault((int(variant), str(kind), str(verdict)), Count()).add(events, uniques)
    return found


def ledger_by_variant(session: Session, issue_id: int) -> dict[int, tuple[int, int]]:
    """Variant -> (ledger rows, delivered messages)."""
    sent = case((D.c.status == DeliveryStatus.sent, 1), else_=0)
    rows = session.execute(
        select(D.c.variant, func.count(), func.sum(sent))
        .where(D.c.issue_id == issue_id, D.c.variant.is_not(None))
        .group_by(D.c.variant)
    ).all()
    return {int(v): (int(n), int(s or 0)) for v, n, s in rows}


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def variant_rows(session: Session, issue_id: int, subjects: Mapping[int, str]) -> list[VariantRow]:
    """One row per variant of the issue's test (``subjects``: variant -> subject; {} = none)."""
    if not subjects:
        return []
    counts = by_variant(session, issue_id)
    ledger = ledger_by_variant(session, issue_id)

    def get(n: int, kind: str, verdict: str) -> Count:
        return counts.get((n, kind, verdict), Count())

    rows = []
    for n, subject in sorted(subjects.items()):
        recipients, delivered = ledger.get(n, (0, 0))
        openers, clickers = get(n, OPEN, HUMAN).uniques, get(n, CLICK, HUMAN).uniques
        rows.append(
            VariantRow(
                n,
                "ABCD"[n - 1] if 1 <= n <= 4 else str(n),
                subject,
                recipients,
                delivered,
                openers,
                clickers,
                get(n, CLICK, HUMAN).events,
                get(n, OPEN, MACHINE).events,
                get(n, CLICK, MACHINE).events,
                _rate(openers, delivered),
                _rate(clickers, delivered),
            )
        )
    return rows
