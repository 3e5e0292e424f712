"""The tracking endpoints' domain half: which URL a click goes to, and the event's record.

``target`` answers the redirect from a per-process cache of each issue's links (an issue's
links never change once it is frozen; the cache keeps them a minute, so a re-frozen issue is
seen soon), so a 302 costs no query but the first. ``record`` runs after the response has gone
(the route hands it to a background task): one indexed read of the ledger row (the recipient's
delivery time, and whether they are a recipient at all), for a click one count of the
recipient's recent clicks of the message (the burst rule), then one insert. It records
nothing for nobody's token (the archive, previews, test sends: subscriber 0), for someone who
got no copy of the issue, for an erased subscriber, and once the issue's events are past the
retention period (folded: its links keep redirecting).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, insert, select, update
from sqlmodel import Session

from newsletter.analytics import tokens, verdicts
from newsletter.analytics.verdicts import Decision, Limits, Seen
from newsletter.audience.subscribers import erased_address
from newsletter.models_analytics import (
    EngagementEvent,
    EngagementKind,
    IssueLink,
    LinkKind,
    Verdict,
)
from newsletter.tables import SUB, D, table_of

EE = table_of(EngagementEvent)
IL = table_of(IssueLink)
LINKS_TTL = 60.0  # seconds a process keeps an issue's links
_LINKS_KEPT = 64


@dataclass(frozen=True)
class Target:
    link_id: int
    url: str
    kind: str


@dataclass(frozen=True)
class IssueLinks:
    loaded: float
    by_n: dict[int, Target]

    @property
    def count(self) -> int:
        """The message's links, the trap aside (the burst rule's "every link")."""
        return sum(1 for t in self.by_n.values() if t.kind != LinkKind.trap)


_cache: dict[int, IssueLinks] = {}
_lock = threading.Lock()


def issue_links(session: Session, issue_id: int) -> IssueLinks:
    now = time.monotonic()
    found = _cache.get(issue_id)
    if found is not None and now - found.loaded < LINKS_TTL:
        return found
    rows = session.execute(
        select(IL.c.id, IL.c.n, IL.c.url, IL.c.kind).where(IL.c.issue_id == issue_id)
    )
    links = IssueLinks(now, {r.n: Target(r.id, r.url, r.kind) for r in rows})
    with _lock:
        while len(_cache) >= _LINKS_KEPT:
            _cache.pop(next(iter(_cache)), None)
        _cache[issue_id] = links
    return links


def forget(issue_id: int | None = None) -> None:
    """Drop the cached links (of one issue, or all): tests, and a re-freeze in this process."""
    with _lock:
        if issue_id is None:
            _cache.clear()
        else:
            _cache.pop(issue_id, None)


def target(session: Session, secret: str, issue_id: int, n: int, token: str) -> Target | None:
    """Where ``/r/{issue_id}/{n}/{token}`` goes: only a link of the token's own issue; None
    (a 404) for a forged token, another issue's token or an unknown link."""
    read = tokens.read_token(secret, token)
    if read is None or read.issue_id != issue_id:
        return None
    return issue_links(session, issue_id).by_n.get(n)


@dataclass(frozen=True)
class Hit:
    """A request to ``/r/`` or ``/o/`` as recorded: never stored itself (no IP, no agent)."""

    issue_id: int
    subscriber_id: int
    kind: str  # EngagementKind
    method: str
    headers: dict[str, str]
    ip: str | None
    at: datetime
    link: Target | None = None


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def record(session: Session, hit: Hit, *, limits: Limits, retention_days: int) -> Decision | None:
    """Decide the hit's verdict and insert its event; None when nothing is recorded."""
    if hit.subscriber_id == tokens.NOBODY:
        return None
    row = session.execute(
        select(D.c.sent_at, D.c.variant, SUB.c.email)
        .select_from(D.join(SUB, SUB.c.id == D.c.subscriber_id))
        .where(D.c.issue_id == hit.issue_id, D.c.subscriber_id == hit.subscriber_id)
    ).first()
    if row is None or row.email == erased_address(hit.subscriber_id):  # no copy; erased
        return None
    delivered = _aware(row.sent_at)
    if delivered is not None and hit.at - delivered > timedelta(days=retention_days):
        return None  # past retention: folded, the link only redirects
    clicked = hit.kind == EngagementKind.click
    burst, links, since = 0, 0, hit.at - timedelta(seconds=limits.burst_seconds)
    mine = and_(
        EE.c.issue_id == hit.issue_id,
        EE.c.subscriber_id == hit.subscriber_id,
        EE.c.kind == EngagementKind.click,
        EE.c.at >= since,
    )
    if clicked and hit.link is not None:
        links = issue_links(session, hit.issue_id).count
        others = session.execute(
            select(func.count(func.distinct(EE.c.link_id))).where(
                mine, EE.c.link_id != hit.link.link_id
            )
        ).scalar_one()
        burst = int(others) + 1
    seen = Seen(
        kind=hit.kind,
        method=hit.method,
        headers=hit.headers,
        ip=hit.ip,
        at=hit.at,
        link_kind=hit.link.kind if hit.link else None,
        delivered_at=delivered,
        burst_clicks=burst,
        links=links,
    )
    decision = verdicts.decide(seen, limits)
    if decision.rule == "burst":  # the burst's earlier "human" clicks were the same machine
        session.execute(
            update(EE)
            .where(mine, EE.c.verdict == Verdict.human)
            .values(verdict=decision.verdict, rule="burst")
        )
    session.execute(
        insert(EE).values(
            issue_id=hit.issue_id,
            subscriber_id=hit.subscriber_id,
            link_id=hit.link.link_id if hit.link else None,
            kind=hit.kind,
            verdict=decision.verdict,
            rule=decision.rule,
            at=hit.at,
            variant=row.variant,  # the subject-test variant this reader got (None: no test)
        )
    )
    return decision
