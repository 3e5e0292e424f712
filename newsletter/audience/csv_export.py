"""Subscriber CSV export, streamed: one row per subscription in the import's columns.

An export imports back (``csv_import``). Cells that a spreadsheet would run as a formula (leading
``= + - @``, tab, CR) get a leading apostrophe, which an import removes again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus
from newsletter.tables import NL, SUB, S

IMPORT_COLUMNS = (
    "email",
    "name",
    "newsletters",
    "status",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_text_version",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A leading apostrophe keeps spreadsheets from running the cell as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_csv(
    session: Session,
    *,
    newsletter_id: int | None = None,
    status: str | None = None,
    page_rows: int = 1000,
) -> Iterator[str]:
    """The CSV text in pieces (header first), one subscription per row, ordered by id."""
    if status is not None and status not in SubscriptionStatus.__members__:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(SubscriptionStatus)}")
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(IMPORT_COLUMNS)
    after = 0
    while True:
        rows = _export_page(session, newsletter_id, status, after, page_rows)
        for r in rows:
            out.writerow(neutralise(_cell(v)) for v in r[1:])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < page_rows:
            return
        after = rows[-1][0]


def _export_page(
    session: Session, newsletter_id: int | None, status: str | None, after: int, limit: int
) -> list[tuple[Any, ...]]:
    stmt = (
        select(
            S.c.id,
            SUB.c.email,
            SUB.c.name,
            NL.c.slug,
            S.c.status,
            S.c.consent_at,
            S.c.consent_ip,
            S.c.consent_source,
            S.c.consent_text_version,
        )
        .select_from(
            S.join(SUB, SUB.c.id == S.c.subscriber_id).join(NL, NL.c.id == S.c.newsletter_id)
        )
        .where(S.c.id > after)
        .order_by(S.c.id)
        .limit(limit)
    )
    if newsletter_id is not None:
        stmt = stmt.where(S.c.newsletter_id == newsletter_id)
    if status is not None:
        stmt = stmt.where(S.c.status == status)
    return [tuple(r) for r in session.execute(stmt).all()]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat()
    return str(value)
