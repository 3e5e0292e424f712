"""Subject tests, run: the sample drawn at the ledger's fill, the winner picked after the wait.

At the fill (``assign``, in the fill's transaction) each variant n takes ``share`` percent of
the issue's ledger rows, drawn at random by the database (``ORDER BY random() LIMIT k`` in a
materialised CTE, one UPDATE per variant: nothing is loaded into Python); the other rows are
held, pending with ``next_attempt_at`` at ``HOLD`` (the year 9000), so the claimer never takes
them and a late tick cannot let them go out with no subject chosen. The tick's ``decide_due``
picks the winner of every test whose wait is over (``decide``; an editor may call it earlier,
naming the variant): the held rows get the winner's variant and become due at once, so the
rest of the list goes out through the same ledger, each subscriber exactly once.

The winner has the highest rate of unique human clickers (or openers) among its delivered
messages: ``COUNT(DISTINCT subscriber)`` over ``engagement_event`` with the verdict human,
grouped by the event's own variant (copied from the ledger row when it is recorded). Ties go
to the variant with more unique humans, then to the lower variant number (the first subject
typed), so the pick is deterministic; with no human engagement at all the first subject wins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import func, select, update
from sqlmodel import Session

from newsletter.analytics import variants
from newsletter.analytics.figures import Count
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import IssueStatus, SubjectTest, utcnow
from newsletter.sending.subject_tests import get, letter
from newsletter.tables import ST, D, I

log = logging.getLogger(__name__)

#: held rows wait "until then": only the pick makes them due
HOLD = datetime(9000, 1, 1, tzinfo=UTC)
#: what the pick counts per metric (``EngagementEvent.kind``)
KIND = {"clicks": "click", "opens": "open"}
TIE_RULE = "ties go to more unique humans, then to the first subject"


def assign(session: Session, *, issue_id: int, now: datetime | None = None) -> dict[int, int]:
    """Draw each variant's sample among the issue's fresh ledger rows and hold the rest;
    variant -> rows drawn ({} for an issue without a test)."""
    row = get(session, issue_id)
    if row is None or row.decide_at is not None:
        return {}
    total = session.execute(
        select(func.count()).select_from(D).where(D.c.issue_id == issue_id)
    ).scalar_one()
    for n, variant in enumerate(row.variants, 1):
        size = int(total) * int(variant["share"]) // 100
        sample = (
            select(D.c.id)
            .where(D.c.issue_id == issue_id, D.c.variant.is_(None))
            .order_by(func.random())
            .limit(size)
            .cte(f"sample_{n}")
            .prefix_with("MATERIALIZED")  # one draw, never re-run per row
        )
        session.execute(update(D).where(D.c.id == sample.c.id).values(variant=n))
    session.execute(
        update(D)
        .where(D.c.issue_id == issue_id, D.c.variant.is_(None))
        .values(next_attempt_at=HOLD)
    )
    # counted, not the UPDATEs' rowcount: SQLite answers -1 for an UPDATE ... FROM a CTE
    counted = select(D.c.variant, func.count()).where(
        D.c.issue_id == issue_id, D.c.variant.is_not(None)
    )
    drawn = {int(v): int(k) for v, k in session.execute(counted.group_by(D.c.variant)).all()}
    drawn = {n: drawn.get(n, 0) for n in range(1, len(row.variants) + 1)}
    row.decide_at = (now or utcnow()) + timedelta(seconds=row.wait_seconds)
    row.figures = [{"variant": n, "recipients": k} for n, k in drawn.items()]  # the samples
    session.add(row)
    session.flush()
    log.info("issue %s: subject test samples %s", issue_id, drawn, extra={"issue_id": issue_id})
    return drawn


def figures(session: Session, *, issue_id: int, metric: str) -> list[dict[str, int]]:
    """Per variant: ledger rows, delivered ones, unique human clickers (or openers: the
    metric's ``uniques``), and both counts apart, read off the events' own variant."""
    counts = variants.by_variant(session, issue_id)

    def humans(n: int, kind: str) -> int:
        return counts.get((n, kind, "human"), Count()).uniques

    return [
        {
            "variant": n,
            "recipients": recipients,
            "sent": sent,
            "uniques": humans(n, KIND[metric]),
            "openers": humans(n, "open"),
            "clickers": humans(n, "click"),
        }
        for n, (recipients, sent) in sorted(variants.ledger_by_variant(session, issue_id).items())
    ]


def _rate(figure: dict[str, int]) -> Fraction:
    return Fraction(figure["uniques"], figure["sent"]) if figure["sent"] else Fraction(0)


def choose(found: list[dict[str, int]], variants: int) -> int:
    """The best rate; ties to more unique humans, then to the lower variant (see the module)."""
    every = {f["variant"]: f for f in found}
    blank = {"recipients": 0, "sent": 0, "uniques": 0}
    ranked = [every.get(n, {"variant": n, **blank}) for n in range(1, variants + 1)]
    best = max(ranked, key=lambda f: (_rate(f), f["uniques"], -f["variant"]))
    return best["variant"]


def _figure_text(f: dict[str, int], metric: str) -> str:
    share = f"{100 * f['uniques'] / f['sent']:.1f}%" if f["sent"] else "-"
    return f"{letter(f['variant'])} {f['uniques']} of {f['sent']} delivered ({share})"


def reason_text(
    winner: int, found: list[dict[str, int]], *, metric: str, by: str | None = None
) -> str:
    """Why the winner won, with every variant's figures."""
    who = "clickers" if metric == "clicks" else "openers"
    shown = "; ".join(_figure_text(f, metric) for f in found)
    if by is not None:
        return f"{letter(winner)} picked by {by} before the wait was over; human {who}: {shown}"
    top = [f for f in found if _rate(f) == max(_rate(g) for g in found)]
    tie = f"; a tie on the rate: {TIE_RULE}" if len(top) > 1 else ""
    return f"{letter(winner)} won by the rate of unique human {who}: {shown}{tie}"


def decide(
    session: Session,
    *,
    issue_id: int,
    variant: int | None = None,
    by: str | None = None,
) -> SubjectTest | None:
    """Pick the winner (``variant``: an editor's early pick, ``by`` naming them) and release
    the held rows with its subject; None when another pick came first."""
    row = get(session, issue_id)
    if row is None:
        raise NotFound(f"issue {issue_id} has no subject test")
    status = session.execute(select(I.c.status).where(I.c.id == issue_id)).scalar_one()
    if row.winner is not None:
        raise InvalidState(f"the subject test of issue {issue_id} was decided already")
    if row.decide_at is None or status not in (IssueStatus.sending, IssueStatus.paused):
        raise InvalidState(f"issue {issue_id} is {status}: only a running test can be decided")
    if variant is not None and not 1 <= variant <= len(row.variants):
        raise InvalidInput(f"variant {variant}: the test has variants 1 to {len(row.variants)}")
    found = figures(session, issue_id=issue_id, metric=row.metric)
    winner = variant or choose(found, len(row.variants))
    reason = reason_text(winner, found, metric=row.metric, by=by if variant else None)
    won = session.execute(
        update(ST)
        .where(ST.c.issue_id == issue_id, ST.c.winner.is_(None))
        .values(
            winner=winner,
            decided_at=utcnow(),
            decided_by=by or "the tick",
            figures=found,
            reason=reason,
        )
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.execute(
        update(D)
        .where(D.c.issue_id == issue_id, D.c.variant.is_(None))
        .values(variant=winner, next_attempt_at=None)
    )
    session.flush()
    session.refresh(row)
    log.info("issue %s: %s", issue_id, reason, extra={"issue_id": issue_id})
    return row


def due_issue_ids(session: Session, *, now: datetime | None = None) -> list[int]:
    """Running tests whose wait is over (of issues sending or paused)."""
    stmt = (
        select(ST.c.issue_id)
        .join(I, I.c.id == ST.c.issue_id)
        .where(
            ST.c.winner.is_(None),
            ST.c.decide_at <= (now or utcnow()),
            I.c.status.in_([IssueStatus.sending, IssueStatus.paused]),
        )
        .order_by(ST.c.issue_id)
    )
    return list(session.execute(stmt).scalars().all())


def decide_due(session: Session, *, now: datetime | None = None) -> list[int]:
    """The tick's pick of every test whose wait is over; the ids decided (commit each)."""
    decided = []
    for issue_id in due_issue_ids(session, now=now):
        if decide(session, issue_id=issue_id) is not None:
            decided.append(issue_id)
        session.commit()
    return decided
