"""The SMTP relays' health (issue 17): which relay is out, until when and why.

One row per relay that ever failed, keyed by its name in the settings; every worker process
reads it (cached for a second) and writes it only when a relay goes out or comes back, so the
CLI, /metrics and the sending view see the same state as the workers, on SQLite as on PostgreSQL.
Timestamps are aware UTC like every other table's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

__all__ = ["RelayHealth"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RelayHealth(SQLModel, table=True):
    __tablename__ = "relay_health"

    name: str = Field(primary_key=True, sa_type=String(64))
    out_until: datetime | None = None  # None: in service
    reason: str = Field(default="", sa_type=String(1000))  # why it went out (or last went out)
    outs: int = 0  # cool-downs in a row: each doubles the next, a success resets it
    changed_at: datetime = Field(default_factory=utcnow)
