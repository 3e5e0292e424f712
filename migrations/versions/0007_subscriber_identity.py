"""one subscriber per address whatever its case: subscriber.email_hash, unique; twins merged

``email_hash`` is SHA-256 of the trimmed, lower-cased address (``models.address_key``), the key
the suppression list uses. Subscribers whose addresses differ only by case ("Reader@Example.com"
beside "reader@example.com", which the CSV importer used to create) are merged into the earliest
one before the unique index is built: their subscriptions, events and deliveries move to it, and
where both had a subscription to one newsletter, a "no" (unsubscribed, bounced, complained)
wins over a "yes", and an active one over a pending one. Each merge is printed by id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:30:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO = ("unsubscribed", "bounced", "complained")
CONSENT = (
    "consent_at",
    "consent_ip",
    "consent_user_agent",
    "consent_source",
    "consent_text_version",
)

subscriber = sa.table(
    "subscriber",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("name", sa.String),
    sa.column("email_hash", sa.String),
)
subscription = sa.table(
    "subscription",
    sa.column("id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
    sa.column("newsletter_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("unsubscribed_at", sa.DateTime(timezone=True)),
    *(sa.column(c) for c in CONSENT),
)
event = sa.table(
    "subscriberevent", sa.column("subscriber_id", sa.Integer), sa.column("id", sa.Integer)
)
delivery = sa.table(
    "delivery",
    sa.column("id", sa.Integer),
    sa.column("issue_id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
)


def _key(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    _backfill(conn)
    _merge_twins(conn)
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_subscriber_email_hash"), ["email_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriber_email_hash"))
        batch_op.drop_column("email_hash")


def _backfill(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        # ASCII addresses in one statement (lower() agrees with Python's there); the rest below
        conn.execute(
            sa.text(
                "UPDATE subscriber SET email_hash = "
                "encode(sha256(convert_to(lower(btrim(email)), 'UTF8')), 'hex') "
                "WHERE email ~ '^[\\x01-\\x7f]*$'"
            )
        )
    while True:
        rows = conn.execute(
            sa.select(subscriber.c.id, subscriber.c.email)
            .where(subscriber.c.email_hash.is_(None))
            .limit(5000)
        ).all()
        if not rows:
            return
        conn.execute(
            subscriber.update()
            .where(subscriber.c.id == sa.bindparam("b_id"))
            .values(email_hash=sa.bindparam("b_hash")),
            [{"b_id": r.id, "b_hash": _key(r.email)} for r in rows],
        )


def _merge_twins(conn: sa.Connection) -> None:
    groups = conn.execute(
        sa.select(subscriber.c.email_hash)
        .group_by(subscriber.c.email_hash)
        .having(sa.func.count() > 1)
    ).scalars()
    for digest in list(groups):
        ids = sorted(
            conn.execute(
                sa.select(subscriber.c.id).where(subscriber.c.email_hash == digest)
            ).scalars()
        )
        keeper, twins = ids[0], ids[1:]
        for twin in twins:
            dropped = _merge(conn, keeper, twin)
            print(  # noqa: T201 - the migration's report, shown by `newsletter db upgrade`
                f"0007: merged subscriber {twin} into {keeper} (same address in another case)"
                + (f"; {dropped} duplicate delivery rows of the same issues removed" if dropped else "")
            )


def _merge(conn: sa.Connection, keeper: int, twin: int) -> int:
    _merge_subscriptions(conn, keeper, twin)
    conn.execute(event.update().where(event.c.subscriber_id == twin).values(subscriber_id=keeper))
    kept_issues = sa.select(delivery.c.issue_id).where(delivery.c.subscriber_id == keeper)
    conn.execute(
        delivery.update()
        .where(delivery.c.subscriber_id == twin, delivery.c.issue_id.not_in(kept_issues))
        .values(subscriber_id=keeper)
    )
    dropped = conn.execute(delivery.delete().where(delivery.c.subscriber_id == twin)).rowcount
    names = dict(
        conn.execute(
            sa.select(subscriber.c.id, subscriber.c.name).where(subscriber.c.id.in_([keeper, twin]))
        ).all()
    )
    if not names.get(keeper) and names.get(twin):
        conn.execute(
            subscriber.update().where(subscriber.c.id == keeper).values(name=names[twin])
        )
    conn.execute(subscriber.delete().where(subscriber.c.id == twin))
    return int(dropped or 0)


def _subs(conn: sa.Connection, subscriber_id: int) -> dict[int, Any]:
    rows = conn.execute(
        sa.select(subscription).where(subscription.c.subscriber_id == subscriber_id)
    ).all()
    return {r.newsletter_id: r for r in rows}


def _merge_subscriptions(conn: sa.Connection, keeper: int, twin: int) -> None:
    mine = _subs(conn, keeper)
    for newsletter_id, theirs in _subs(conn, twin).items():
        ours = mine.get(newsletter_id)
        if ours is None:
            conn.execute(
                subscription.update()
                .where(subscription.c.id == theirs.id)
                .values(subscriber_id=keeper)
            )
            continue
        values: dict[str, Any] = {}
        if theirs.status in NO and ours.status not in NO:
            values = {"status": theirs.status, "unsubscribed_at": theirs.unsubscribed_at}
        elif ours.status == "pending" and theirs.status == "active":
            values = {"status": "active", **{c: getattr(theirs, c) for c in CONSENT}}
        if values:
            conn.execute(
                subscription.update().where(subscription.c.id == ours.id).values(**values)
            )
        conn.execute(subscription.delete().where(subscription.c.id == theirs.id))
