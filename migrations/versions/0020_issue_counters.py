"""issue counters: ledger rows per issue and status, kept by triggers on ``delivery``

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 22:30:00

``progress`` read the ledger (``GROUP BY status``) on every poll: 34-42 ms at 300k rows. Now
``issue_counter`` holds the counts, changed by triggers in the transaction of every insert,
status change and delete of a ledger row, whichever code path makes it (so they cannot drift).
PostgreSQL: one statement-level trigger per operation reads the statement's transition tables
(a 1M-row fill or cancel is one grouped upsert, not a million; an update subtracts the old rows
by status and adds the new ones, no join: unchanged rows cancel out) and adds the deltas to one of
``SHARDS`` rows per (issue, status) chosen at random per statement, so concurrent workers do not
queue on one row. SQLite (one writer at a time): row-level triggers on shard 0.

A later migration that rebuilds ``delivery`` on SQLite (``batch_alter_table``) drops its
triggers with it and must create them again (``create_triggers``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 8  # the trigger's random(): a constant of the function below

PG_FUNCTION = """
CREATE FUNCTION issue_counter_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s integer := floor(random() * 8)::integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO issue_counter AS c (issue_id, status, shard, n)
        SELECT issue_id, status, s, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO issue_counter AS c (issue_id, status, shard, n)
        SELECT issue_id, status, s, -count(*) FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO issue_counter AS c (issue_id, status, shard, n)
        SELECT issue_id, status, s, sum(d) FROM (
            SELECT issue_id, status, -count(*) AS d FROM old_rows GROUP BY 1, 2
            UNION ALL
            SELECT issue_id, status, count(*) FROM new_rows GROUP BY 1, 2
        ) x GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
        ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$
"""

PG_TRIGGERS = (
    "CREATE TRIGGER issue_counter_insert AFTER INSERT ON delivery "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_counter_track()",
    "CREATE TRIGGER issue_counter_update AFTER UPDATE ON delivery "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION issue_counter_track()",
    "CREATE TRIGGER issue_counter_delete AFTER DELETE ON delivery "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_counter_track()",
)

_ADD = (
    "INSERT INTO issue_counter (issue_id, status, shard, n) VALUES ({row}.issue_id, {row}.status, "
    "0, {delta}) ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = n + {delta};"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER issue_counter_insert AFTER INSERT ON delivery BEGIN "
    + _ADD.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER issue_counter_update AFTER UPDATE OF issue_id, status ON delivery "
    "WHEN OLD.issue_id IS NOT NEW.issue_id OR OLD.status IS NOT NEW.status BEGIN "
    + _ADD.format(row="OLD", delta=-1)
    + " "
    + _ADD.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER issue_counter_delete AFTER DELETE ON delivery BEGIN "
    + _ADD.format(row="OLD", delta=-1)
    + " END",
)

TRIGGER_NAMES = ("issue_counter_insert", "issue_counter_update", "issue_counter_delete")


def create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "issue_counter",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issue_id", "status", "shard"),
    )
    # triggers first, then the backfill: on PostgreSQL CREATE TRIGGER locks out writers to
    # ``delivery`` until this migration commits, so no change falls between the two
    create_triggers()
    op.execute(
        "INSERT INTO issue_counter (issue_id, status, shard, n) "
        "SELECT issue_id, status, 0, count(*) FROM delivery GROUP BY issue_id, status"
    )


def downgrade() -> None:
    for name in TRIGGER_NAMES:
        op.execute(
            f"DROP TRIGGER IF EXISTS {name}"
            + (" ON delivery" if op.get_bind().dialect.name == "postgresql" else "")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS issue_counter_track()")
    op.drop_table("issue_counter")
