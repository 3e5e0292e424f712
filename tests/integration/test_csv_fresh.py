"""The import's rows written ahead as COPY text (``csv_fresh``) are the rows its dict path writes.

The same file is imported twice in one transaction, rolled back in between: once with the
verdicts tracked (the preview's way: every row through ``csv_writer``'s dicts) and once without
(the import's way on PostgreSQL: new addresses from their ``Fresh`` text). Both leave the same
subscribers, subscriptions and events. On SQLite both go the dict way, and the test only checks
that the two agree there too.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from newsletter.audience import csv_fresh, csv_import
from newsletter.audience.csv_report import ImportReport
from newsletter.tables import EV, SUB, S
from tests.conftest import make_newsletter

HEADER = "email,name,newsletters,status,consent_at,consent_ip,consent_source,consent_text_version"


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """The three tables by address, without ids and with the import time as ``now``."""
    emails = {r.id: r.email for r in session.execute(select(SUB.c.id, SUB.c.email))}

    def when(value: Any) -> Any:
        return "now" if value is None or value.year > 2025 else value.isoformat()

    people = sorted(
        (r.email, r.email_hash, r.name, r.language, r.time_zone, r.attributes)
        for r in session.execute(select(SUB))
    )
    subscriptions = sorted(
        (
            emails[r.subscriber_id],
            r.newsletter_id,
            r.status,
            None if r.consent_at is None else when(r.consent_at),
            r.consent_ip,
            r.consent_source,
            r.consent_text_version,
            r.unsubscribed_at is not None,
            r.soft_bounces,
        )
        for r in session.execute(select(S))
    )
    events = sorted(
        (
            emails[r.subscriber_id],
            r.newsletter_id,
            r.kind,
            r.ip,
            r.source,
            r.consent_text_version,
            str(sorted(r.detail.items())),
        )
        for r in session.execute(select(EV))
    )
    return {"subscribers": people, "subscriptions": subscriptions, "events": events}


@pytest.mark.parametrize("chunk_rows", [2, 1000])
def test_rows_written_ahead_are_the_rows_of_the_dict_path(
    session: Session, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    data = (
        f"{HEADER},attr:plan,language,tags\n"
        f"Anna@Example.ORG,Anna K,{weekly.slug};{daily.slug},active,"
        "2025-10-19T08:00:00+02:00,192.0.2.7,web form,2025-10,gold,de,a\n"
        f"ales@example.com,Ales,{weekly.slug},pending,,,,,,,\n"
        f"back@example.com,Back\\Slash,{daily.slug},unsubscribed,,,src\\x,v1,,,\n"
        f'"tab@example.com","Tab\tName",{weekly.slug},active,,2001:db8::1,,,"{{""x"": 1}}",fr,b\n'
        f"ANNA@example.org,Someone Else,{weekly.slug},active,,,,,,,\n"  # duplicate of line 2
        f"anna@example.org,,{daily.slug},,,,,,,,\n"  # duplicate too: daily was named
        f"late@example.com,Late,{daily.slug},bounced,,,,,,,\n"
        f"late@example.com,,{weekly.slug},active,,,,,,,\n"  # a later row: another newsletter
        f"zed@example.com,Zed,{weekly.slug},complained,,,,,,,\n"
    )
    columns = [
        "email",
        "name",
        "newsletters",
        "status",
        "consent_at",
        "consent_ip",
        "consent_source",
        "consent_text_version",
        "attribute:plan",
        "language",
        "tags",
    ]

    def run(tracked: bool) -> tuple[ImportReport, dict[str, list[tuple[Any, ...]]]]:
        report = ImportReport(verdicts={} if tracked else None)
        csv_import.import_csv(
            session,
            io.BytesIO(data.encode()),
            columns=columns,
            chunk_rows=chunk_rows,
            report=report,
        )
        session.flush()
        taken = snapshot(session)
        session.rollback()
        return report, taken

    written: list[int] = []
    lines = csv_fresh.lines

    def counted(ids: Any, part: str) -> list[str]:
        out = lines(ids, part)
        written.append(len(out))
        return out

    monkeypatch.setattr(csv_fresh, "lines", counted)
    slow_report, slow = run(tracked=True)
    assert written == []  # the preview's way never writes ahead
    fast_report, fast = run(tracked=False)

    if session.get_bind().dialect.name == "postgresql":
        assert sum(written) > 0
    for count in ("rows", "imported", "updated", "unchanged", "duplicates", "errors_total"):
        assert getattr(fast_report, count) == getattr(slow_report, count), count
    assert fast_report.imported == 7
    assert fast == slow
    assert (len(slow["subscribers"]), len(slow["subscriptions"]), len(slow["events"])) == (6, 8, 8)
