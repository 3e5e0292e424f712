"""The suppression list: SHA-256 hashes of addresses that must not come back silently.

An erased subscriber, a hard bounce, a spam complaint and an unsubscribe imported from another
service's export each leave the hash of the normalised address here (never the address itself).
An import skips these addresses and says so; an admin creating one by hand is refused. The first
reason recorded for an address is kept.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from sqlalchemy import Table, delete, select
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel

from newsletter.db import any_of, insert_ignore
from newsletter.models import Suppression, address_key, utcnow

SUPPRESSION: Table = SQLModel.metadata.tables[Suppression.__tablename__]  # type: ignore[index]


class Reason(StrEnum):
    erased = "erased"
    bounced = "bounced"
    complained = "complained"
    unsubscribed = "unsubscribed"  # left another service (an imported export says so)


def email_hash(address: str) -> str:
    """SHA-256 hex of a normalised address (the caller normalises; we only lower-case)."""
    return address_key(address)


def suppress(session: Session | Connection, address: str, reason: Reason) -> str:
    """Add the address's hash (a no-op when it is already there); returns the hash.

    Also called by the sender, on its autocommit connection, for a 5.1.x reply mid-send.
    """
    digest = email_hash(address)
    row = {"email_hash": digest, "reason": str(reason), "created_at": utcnow()}
    insert_ignore(session, SUPPRESSION, row)
    return digest


def reasons(session: Session, hashes: Collection[str]) -> dict[str, str]:
    """{hash: reason} for those of ``hashes`` on the list (one query)."""
    if not hashes:
        return {}
    column = SUPPRESSION.c.email_hash
    match = any_of(column, list(hashes), session.get_bind().dialect.name)  # one array parameter
    rows = session.execute(select(column, SUPPRESSION.c.reason).where(match)).all()
    return {row.email_hash: row.reason for row in rows}


def reason_for(session: Session, address: str) -> str | None:
    return reasons(session, [email_hash(address)]).get(email_hash(address))


def lift(session: Session, address: str, *, only: Collection[Reason]) -> bool:
    """Remove the address's entry when its reason is one of ``only``; True if one was removed."""
    result = session.execute(
        delete(SUPPRESSION).where(
            SUPPRESSION.c.email_hash == email_hash(address),
            SUPPRESSION.c.reason.in_([str(r) for r in only]),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
