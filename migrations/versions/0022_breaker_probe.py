"""the circuit breaker's half-open state: when the tick next probes the relay of a paused send

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28 23:15:00

``issue.breaker_probe_at`` is set when the breaker pauses a send because the relay is down (most
failures temporary), moved on by each failed probe, and cleared by every other status change; an
issue paused by an operator never has one, so it is never resumed automatically. A column and not
Redis: the embedded setup has no Redis, and the time must survive a worker restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("breaker_probe_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_column("breaker_probe_at")
