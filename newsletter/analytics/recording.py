"""The tracking endpoints' domain half: which URL a click goes to, and the event's record.

The redirect is answered from a per-process cache of each issue's links (``cached_links``; an
issue's links never change once it is frozen; the cache keeps them a minute, so a re-frozen
issue is seen soon), so a 302 costs no query but the first. ``record_many`` records hits after
their responses have gone (``analytics.recorder`` buffers them), many at a time: per issue
(a batch nearly always has one) one read of the ledger rows of all their recipients (the
delivery time, and whether they are recipients at all), for clicks one read of the recipients'
recent clicks (the burst rule, which also sees the batch's earlier hits), then one insert of
all the events (COPY on PostgreSQL); ``record`` is the same for one hit. It records
nothing for nobody's token (the archive, previews, test sends: subscriber 0), for someone who
got no copy of the issue, for an erased subscriber, and once the issue's events are past the
retention period (folded: its links keep redirecting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlmodel import Session

from newsletter import db
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
    count: int = field(init=False)  # the message's links, the trap aside (the burst rule's)

    def __post_init__(self) -> None:
        links = sum(1 for t in self.by_n.values() if t.kind != LinkKind.trap)
        object.__setattr__(self, "count", links)


_cache: dict[int, IssueLinks] = {}
_lock = threading.Lock()


def cached_links(issue_id: int) -> IssueLinks | None:
    """The issue's links if this process has them fresh: the redirect's no-query path."""
    found = _cache.get(issue_id)
    if found is not None and time.monotonic() - found.loaded < LINKS_TTL:
        return found
    return None


def issue_links(session: Session, issue_id: int) -> IssueLinks:
    found = cached_links(issue_id)
    if found is not None:
        return found
    now = time.monotonic()
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


def load_links(database_url: str, issue_id: int) -> IssueLinks:
    """``issue_links`` in a session of its own (the redirect's first click of an issue)."""
    with db.session_scope(database_url) as session:
        return issue_links(session, issue_id)


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


Pair = tuple[int, int]  # (issue id, subscriber id)


@dataclass
class _Click:
    """A click of one recipient in the burst window: a stored event (``row``) or one of this
    batch (``pending``, an index into the rows to insert)."""

    link_id: int | None
    at: datetime
    verdict: str
    row: int | None = None
    pending: int | None = None


def record(session: Session, hit: Hit, *, limits: Limits, retention_days: int) -> Decision | None:
    """Decide the hit's verdict and insert its event; None when nothing is recorded."""
    return record_many(session, [hit], limits=limits, retention_days=retention_days)[0]


def record_many(
    session: Session, hits: Sequence[Hit], *, limits: Limits, retention_days: int
) -> list[Decision | None]:
    """``record`` for many hits in arrival order, set-based: per issue one read of the ledger
    rows of all their recipients and one of their recent clicks, then one insert (plus one
    update per burst that marks stored clicks). Each hit sees the earlier hits of the batch as
    ``record`` would have seen them already stored, so the verdicts are the same."""
    ledger = _ledger(session, {(h.issue_id, h.subscriber_id) for h in hits})
    kept = [h if _recordable(h, ledger, retention_days) else None for h in hits]
    clicks = _recent_clicks(session, [h for h in kept if h is not None], limits)
    rows: list[dict[str, object]] = []
    decisions: list[Decision | None] = []
    for hit in kept:
        if hit is None:
            decisions.append(None)
            continue
        decision = _decide(session, hit, ledger, clicks, limits)
        pair = (hit.issue_id, hit.subscriber_id)
        if decision.rule == "burst":
            _mark_burst(session, pair, clicks.get(pair, []), rows, hit, limits)
        if hit.kind == EngagementKind.click:
            clicks.setdefault(pair, []).append(
                _Click(_link_id(hit), hit.at, decision.verdict, pending=len(rows))
            )
        rows.append(_row(hit, decision, ledger[pair].variant))
        decisions.append(decision)
    if rows:
        _insert(session, rows)
    return decisions


COLUMNS = ("issue_id", "subscriber_id", "link_id", "kind", "verdict", "rule", "at", "variant")


def _insert(session: Session, rows: list[dict[str, object]]) -> None:
    """The events in one statement: PostgreSQL's COPY (a tenth of a multi-row INSERT's cost in
    Python: no statement to compile, no parameters to bind), else one executemany."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(EE), rows)
        return
    raw = connection.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:  # type: ignore[attr-defined]
        copy_sql = f"COPY {EE.name} ({', '.join(COLUMNS)}) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in COLUMNS))


def _link_id(hit: Hit) -> int | None:
    return hit.link.link_id if hit.link else None


def _row(hit: Hit, decision: Decision, variant: str | None) -> dict[str, object]:
    return {
        "issue_id": hit.issue_id,
        "subscriber_id": hit.subscriber_id,
        "link_id": _link_id(hit),
        "kind": hit.kind,
        "verdict": decision.verdict,
        "rule": decision.rule,
        "at": hit.at,
        "variant": variant,  # the subject-test variant this reader got (None: no test)
    }


@dataclass(frozen=True)
class _Copy:
    """A recipient's copy of the issue: when it was delivered, which subject-test variant."""

    sent_at: datetime | None
    variant: str | None


def _ledger(session: Session, pairs: set[Pair]) -> dict[Pair, _Copy]:
    """Each pair's copy (absent: no copy, or erased)."""
    found: dict[Pair, _Copy] = {}
    for issue_id, chunk in _by_issue(p for p in pairs if p[1] != tokens.NOBODY):
        rows = session.execute(
            select(D.c.issue_id, D.c.subscriber_id, D.c.sent_at, D.c.variant, SUB.c.email)
            .select_from(D.join(SUB, SUB.c.id == D.c.subscriber_id))
            .where(D.c.issue_id == issue_id, D.c.subscriber_id.in_(chunk))
        )
        for r in rows:
            if r.email != erased_address(r.subscriber_id):
                found[(r.issue_id, r.subscriber_id)] = _Copy(_aware(r.sent_at), r.variant)
    return found


def _recordable(hit: Hit, ledger: dict[Pair, _Copy], retention_days: int) -> bool:
    pair = (hit.issue_id, hit.subscriber_id)
    if hit.subscriber_id == tokens.NOBODY or pair not in ledger:
        return False
    delivered = ledger[pair].sent_at
    # past retention the issue's events are folded: the link only redirects
    return delivered is None or hit.at - delivered <= timedelta(days=retention_days)


def _recent_clicks(session: Session, hits: list[Hit], limits: Limits) -> dict[Pair, list[_Click]]:
    """The stored clicks of the clicking recipients since the earliest hit's burst window."""
    clicking = [h for h in hits if h.kind == EngagementKind.click and h.link is not None]
    if not clicking:
        return {}
    since = min(h.at for h in clicking) - timedelta(seconds=limits.burst_seconds)
    found: dict[Pair, list[_Click]] = {}
    for issue_id, chunk in _by_issue((h.issue_id, h.subscriber_id) for h in clicking):
        rows = session.execute(
            select(EE.c.id, EE.c.issue_id, EE.c.subscriber_id, EE.c.link_id, EE.c.at, EE.c.verdict)
            .where(
                EE.c.issue_id == issue_id,
                EE.c.subscriber_id.in_(chunk),
                EE.c.kind == EngagementKind.click,
                EE.c.at >= since,
            )
            .order_by(EE.c.id)
        )
        for r in rows:
            at = _aware(r.at)
            assert at is not None
            found.setdefault((r.issue_id, r.subscriber_id), []).append(
                _Click(r.link_id, at, r.verdict, row=r.id)
            )
    return found


def _decide(
    session: Session,
    hit: Hit,
    ledger: dict[Pair, _Copy],
    clicks: dict[Pair, list[_Click]],
    limits: Limits,
) -> Decision:
    burst, links = 0, 0
    if hit.kind == EngagementKind.click and hit.link is not None:
        links = issue_links(session, hit.issue_id).count
        since = hit.at - timedelta(seconds=limits.burst_seconds)
        others = {
            c.link_id
            for c in clicks.get((hit.issue_id, hit.subscriber_id), [])
            if c.at >= since and c.link_id is not None and c.link_id != hit.link.link_id
        }
        burst = len(others) + 1
    seen = Seen(
        kind=hit.kind,
        method=hit.method,
        headers=hit.headers,
        ip=hit.ip,
        at=hit.at,
        link_kind=hit.link.kind if hit.link else None,
        delivered_at=ledger[(hit.issue_id, hit.subscriber_id)].sent_at,
        burst_clicks=burst,
        links=links,
    )
    return verdicts.decide(seen, limits)


def _mark_burst(
    session: Session,
    pair: Pair,
    recent: list[_Click],
    rows: list[dict[str, object]],
    hit: Hit,
    limits: Limits,
) -> None:
    """The burst's earlier "human" clicks were the same machine: in this batch and stored."""
    since = hit.at - timedelta(seconds=limits.burst_seconds)
    stored = False
    for click in recent:
        if click.at < since or click.verdict != Verdict.human:
            continue
        click.verdict = Verdict.machine
        if click.pending is not None:
            rows[click.pending].update(verdict=Verdict.machine, rule="burst")
        else:
            stored = True
    if stored:
        session.execute(
            update(EE)
            .where(
                EE.c.issue_id == pair[0],
                EE.c.subscriber_id == pair[1],
                EE.c.kind == EngagementKind.click,
                EE.c.at >= since,
                EE.c.verdict == Verdict.human,
            )
            .values(verdict=Verdict.machine, rule="burst")
        )


def _by_issue(pairs: Iterable[Pair], size: int = 1000) -> Iterator[tuple[int, list[int]]]:
    """The pairs' subscribers per issue, ``size`` at a time: ``issue_id = i AND subscriber_id
    IN (...)`` is one index scan (PostgreSQL reads the list as an array); a batch's hits are
    nearly always of one or two issues."""
    readers: dict[int, set[int]] = {}
    for issue_id, subscriber_id in pairs:
        readers.setdefault(issue_id, set()).add(subscriber_id)
    for issue_id, ids in readers.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), size):
            yield issue_id, ordered[start : start + size]
