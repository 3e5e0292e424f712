"""The audit trail: who did what, when, to which object, from where. Append-only.

``record`` writes one entry in the caller's transaction, so an action that fails (and rolls
back) leaves no entry, and one that happened always has one. Subscribers are named by id only,
so the entries outlive an erasure without keeping anything personal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter.access.permissions import Actor
from newsletter.models import AuditEntry

DETAIL_MAX = 500


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str = "",
    target_id: int | None = None,
    newsletter_id: int | None = None,
    detail: str = "",
) -> AuditEntry:
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:320],
        action=action[:60],
        target_type=target_type[:30],
        target_id=target_id,
        newsletter_id=newsletter_id,
        ip=(actor.ip or None) and actor.ip[:45],
        detail=" ".join(detail.split())[:DETAIL_MAX],
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Filters:
    actor: str | None = None  # a substring of the label (an address, a token name)
    action: str | None = None  # an action, or its start ("issues.")
    since: datetime | None = None
    target_type: str | None = None
    target_id: int | None = None


def entries(
    session: Session, filters: Filters = Filters(), *, limit: int = 100, offset: int = 0
) -> tuple[int, list[AuditEntry]]:
    """(how many match, the page of them), newest first."""
    stmt = select(AuditEntry)
    if filters.actor:
        stmt = stmt.where(col(AuditEntry.actor_label).contains(filters.actor.strip()))
    if filters.action:
        stmt = stmt.where(col(AuditEntry.action).startswith(filters.action.strip()))
    if filters.since is not None:
        stmt = stmt.where(col(AuditEntry.at) >= filters.since)
    if filters.target_type:
        stmt = stmt.where(AuditEntry.target_type == filters.target_type)
    if filters.target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == filters.target_id)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    page = stmt.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    return int(total), list(session.exec(page.limit(limit).offset(offset)).all())
