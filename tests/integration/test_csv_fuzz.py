"""The CSV import under hypothesis, on SQLite and PostgreSQL: arbitrary bytes and CSV-shaped rows.

Whatever comes in: no exception but ``InvalidInput`` escapes, every data row lands in exactly one
count of the report, no two subscribers share an ``address_key``, and no row refused for its
consent or for the suppression list makes a subscription active.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session, col, select

from newsletter.audience import csv_import, csv_rows
from newsletter.audience.suppression import Reason, suppress
from newsletter.exceptions import InvalidInput
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    address_key,
)
from tests.conftest import make_newsletter

FUZZ = settings(max_examples=150, deadline=None, database=None)  # seconds per database

POOL = (
    "ann@example.org",  # active on weekly
    "bob@example.org",  # unsubscribed from weekly
    "gus@example.org",  # pending on weekly
    "cy@mail.example.net",  # suppressed: bounced
    "dee@example.org",  # suppressed: erased
    "eve@example.org",  # new
    "fay@example.org",  # new
)
SUPPRESSED = {"cy@mail.example.net": Reason.bounced, "dee@example.org": Reason.erased}
COLUMNS = (
    "email",
    "Email",
    " EMAIL ",
    "consent",
    "Consent",
    "CONSENT",
    "status",
    "Status",
    "newsletters",
    "name",
    "consent_at",
    "consent_source",
    "notes",
)
CONSENTS = ("yes", "YES", "True", "1", "no", "No", "false", "0", "", " yes ", "maybe")
STATUSES = ("", "active", "ACTIVE", "pending", "unsubscribed", "bounced", "complained", "gone")
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # any character but surrogates


@dataclass
class World:
    session: Session
    weekly: Newsletter
    daily: Newsletter

    def reset(self) -> None:
        """Empty tables, then the people of ``POOL`` as its comments say."""
        for model in (SubscriberEvent, Subscription, Subscriber, Suppression):
            self.session.execute(delete(model))
        emails = ("Ann@Example.org", "bob@example.org", "GUS@example.org")
        people = [Subscriber(email=e) for e in emails]
        self.session.add_all(people)
        self.session.flush()
        for person, status in zip(people, ("active", "unsubscribed", "pending"), strict=True):
            self.session.add(
                Subscription(
                    subscriber_id=person.id,  # type: ignore[arg-type]
                    newsletter_id=self.weekly.id,  # type: ignore[arg-type]
                    status=status,
                )
            )
        for address, reason in SUPPRESSED.items():
            suppress(self.session, address, reason)
        self.session.commit()

    def active(self) -> set[tuple[str, int]]:
        rows = self.session.exec(
            select(Subscriber.email, Subscription.newsletter_id)
            .join(Subscription, col(Subscription.subscriber_id) == Subscriber.id)
            .where(Subscription.status == "active")
        ).all()
        return {(address_key(email), nid) for email, nid in rows}

    def run(self, data: bytes) -> csv_import.ImportReport | None:
        """The report, or None when the file was refused as a whole (``InvalidInput``)."""
        try:
            report = csv_import.import_csv(
                self.session, io.BytesIO(data), newsletters=[self.weekly.slug], chunk_rows=3
            )
        except InvalidInput:
            self.session.rollback()
            return None
        self.session.commit()
        return report


def world(session: Session) -> World:
    return World(session, make_newsletter(session), make_newsletter(session))


# ---------------------------------------------------------------- what must always hold


def assert_counted(report: csv_import.ImportReport) -> None:
    counted = report.imported + report.updated + report.unchanged + report.suppressed
    assert report.rows == counted + report.errors_total, report.as_dict()
    assert len(report.errors) == min(report.errors_total, csv_import.MAX_ISSUES)
    assert len(report.warnings) == min(report.warnings_total, csv_import.MAX_ISSUES)
    assert [e.line for e in report.errors] == sorted(e.line for e in report.errors)


def assert_one_subscriber_per_address(session: Session) -> None:
    people = session.exec(select(Subscriber)).all()
    keys = [address_key(p.email) for p in people]
    assert len(keys) == len(set(keys)), [p.email for p in people]
    assert all(p.email_hash == address_key(p.email) for p in people)
    suppressed = {address_key(a) for a in SUPPRESSED}
    assert not suppressed & set(keys)


# ---------------------------------------------------------------- arbitrary bytes


def test_arbitrary_bytes_are_reported_never_crash(session: Session) -> None:
    w = world(session)
    header = st.sampled_from([b"", b"email\n", b"email,consent,status\n", b"\xef\xbb\xbfEmail;"])

    @FUZZ
    @given(head=header, body=st.binary(max_size=300))
    def check(head: bytes, body: bytes) -> None:
        w.reset()
        report = w.run(head + body)
        if report is not None:
            assert_counted(report)
        assert_one_subscriber_per_address(session)

    check()


# ---------------------------------------------------------------- CSV-shaped rows


def variant(address: str) -> st.SearchStrategy[str]:
    """The address in any case, sometimes padded with spaces."""
    flips = st.lists(st.booleans(), min_size=len(address), max_size=len(address))
    cased = flips.map(
        lambda f: "".join(c.upper() if u else c for c, u in zip(address, f, strict=True))
    )
    return st.tuples(st.sampled_from(["", " "]), cased).map(lambda p: p[0] + p[1] + p[0])


def cell_for(column: str, w: World) -> st.SearchStrategy[str]:
    name = column.strip().lower()
    choices: dict[str, Callable[[], st.SearchStrategy[str]]] = {
        "email": lambda: st.one_of(st.sampled_from(POOL).flatmap(variant), TEXT),
        "consent": lambda: st.one_of(st.sampled_from(CONSENTS), TEXT),
        "status": lambda: st.sampled_from(STATUSES),
        "newsletters": lambda: st.sampled_from(
            ["", w.weekly.slug, w.daily.slug, f"{w.daily.slug};{w.weekly.slug}", "nope"]
        ),
    }
    return choices.get(name, lambda: TEXT)()


@st.composite
def csv_file(draw: st.DrawFn, w: World) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(st.sampled_from(COLUMNS), max_size=5))
    if draw(st.integers(0, 9)):  # mostly with an email column, so that rows get read
        header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(COLUMNS[:3])))
    row = st.tuples(*(cell_for(c, w) for c in header)).map(list)
    rows = draw(st.lists(row, max_size=12))
    for cells in rows:  # now and then a field too few or too many
        cut = draw(st.sampled_from([0, 0, 0, -1, 1]))
        if cut < 0 and cells:
            cells.pop()
        elif cut > 0:
            cells.append(draw(TEXT))
    return header, rows


def encode(header: list[str], rows: list[list[str]]) -> tuple[bytes, list[int]]:
    """The file, and the line each row starts on (a quoted cell may hold line breaks)."""
    buffer = io.StringIO()
    out = csv.writer(buffer)  # \r\n: a bare \r in a cell gets quoted too
    out.writerow(header)
    starts = []
    for cells in rows:
        starts.append(buffer.getvalue().count("\n") + 1)
        out.writerow(cells)
    return buffer.getvalue().encode("utf-8"), starts


@dataclass
class Row:
    line: int
    key: str | None  # of a ``POOL`` address, else None
    consent: str | None  # None: no consent column
    newsletters: set[int]


def pool_rows(w: World, header: list[str], rows: list[list[str]], starts: list[int]) -> list[Row]:
    names = [c.strip().lower() for c in header]
    slugs = {w.weekly.slug: w.weekly.id, w.daily.slug: w.daily.id}
    found = []
    for line, cells in zip(starts, rows, strict=True):
        values = dict(zip(names, cells, strict=False))
        address = values.get("email", "").strip().lower()
        refs = [r for r in values.get("newsletters", "").split(";") if r] or [w.weekly.slug]
        found.append(
            Row(
                line,
                address_key(address) if address in POOL else None,
                values.get("consent", "").strip().lower() if "consent" in names else None,
                {nid for r in refs if (nid := slugs.get(r)) is not None},
            )
        )
    return found


def assert_no_duplicate_taken(rows: list[Row], report: csv_import.ImportReport) -> None:
    """No two rows that were not rejected name the same address and newsletter."""
    rejected = {e.line for e in report.errors}
    taken = [
        (r.key, nid) for r in rows if r.key and r.line not in rejected for nid in r.newsletters
    ]
    assert len(taken) == len(set(taken)), report.errors


def assert_refused_not_activated(w: World, rows: list[Row], before: set[tuple[str, int]]) -> None:
    """A subscription newly active came from a row allowed to: consent given, not suppressed."""
    refused = {address_key(a) for a in SUPPRESSED}
    allowed = {
        (r.key, nid)
        for r in rows
        if r.key not in refused and r.consent in (None, *csv_rows.CONSENT_YES)
        for nid in r.newsletters
    }
    pool = {address_key(a) for a in POOL}
    newly = {(key, nid) for key, nid in w.active() - before if key in pool}
    assert newly <= allowed


def test_csv_rows_are_each_counted_once_and_never_activate_refused_ones(
    session: Session,
) -> None:
    w = world(session)

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        header, rows = data.draw(csv_file(w))
        raw, starts = encode(header, rows)
        w.reset()
        before = w.active()

        report = w.run(raw)

        assert_one_subscriber_per_address(session)
        if report is None:
            return
        assert_counted(report)
        assert report.rows == sum(any(c.strip() for c in cells) for cells in rows)
        found = pool_rows(w, header, rows, starts)
        assert_no_duplicate_taken(found, report)
        assert_refused_not_activated(w, found, before)

    check()
