"""Writing one chunk of an import: subscribers, names, subscriptions and events, set-based.

A chunk of accepted rows goes in with a handful of statements whatever its size: the admission
gate asked once, the subscribers selected and the missing ones inserted, the names and the
subscriptions' status moves written as executemany, new rows inserted with COPY on PostgreSQL
(``INSERT ... ON CONFLICT DO NOTHING`` on SQLite, and when a concurrent writer got there first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Table,
    TextClause,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from newsletter.audience.csv_rows import Entry, Wanted
from newsletter.audience.subscribers import STICKY, Way, admission_refusals
from newsletter.db import insert_ignore
from newsletter.models import SubscriptionStatus, address_key, moving, utcnow
from newsletter.tables import EV, SUB, S

if TYPE_CHECKING:  # the report is the orchestration's; here it is only counted into
    from newsletter.audience.csv_report import ImportReport

CONSENT_FIELDS = ("consent_at", "consent_ip", "consent_source", "consent_text_version")


def next_status(current: str | None, incoming: str) -> str:
    """The import's transition rule: into a sticky status yes, out of one never."""
    if current is None:
        return incoming
    if current in STICKY:
        return current
    if incoming in STICKY:
        return incoming
    if current == SubscriptionStatus.active:
        return current  # a row saying pending does not undo a confirmation
    return incoming


@dataclass
class Existing:
    id: int
    name: str


class Outcome(StrEnum):
    made = "made"
    changed = "changed"
    same = "same"
    kept = "kept"  # a sticky subscription a row asked to (re-)activate


class Writer:
    """Writes one chunk of rows with a handful of set-based statements; counts each row."""

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.dialect = session.get_bind().dialect.name

    def write(self, chunk: dict[str, Entry]) -> None:
        """Write ``chunk`` ({address_key: entry}) and count each of its rows once."""
        chunk = self._admit(chunk)
        if not chunk:
            return
        people, created = self._subscribers(chunk)
        renamed = self._rename(chunk, people)
        outcomes = self._subscriptions(chunk, people)
        for key, entry in chunk.items():
            sid = people[key].id
            for index, row in enumerate(entry.rows):
                done = {outcomes[(sid, nid)] for nid in row.wants}
                first = index == 0
                if Outcome.made in done or (first and key in created):
                    self.report.imported += 1
                elif Outcome.changed in done or (first and key in renamed):
                    self.report.updated += 1
                else:
                    self.report.unchanged += 1
                self.report.kept += Outcome.kept in done

    def _admit(self, chunk: dict[str, Entry]) -> dict[str, Entry]:
        """The chunk without the addresses the admission gate refuses (one query)."""
        refused = admission_refusals(
            self.session, [e.email for e in chunk.values()], way=Way.import_
        )
        if not refused:
            return chunk
        admitted: dict[str, Entry] = {}
        for key, entry in chunk.items():
            reason = refused.get(entry.email)
            if reason is None:
                admitted[key] = entry
                continue
            for row in entry.rows:
                self.report.suppressed += 1
                self.report.warn(row.line, reason)
        return admitted

    def _subscribers(self, chunk: dict[str, Entry]) -> tuple[dict[str, Existing], set[str]]:
        people = self._select_people(list(chunk))
        missing = [k for k in chunk if k not in people]
        if missing:
            now = utcnow()
            rows = [subscriber_row(chunk[k].email, chunk[k].rows[0].name, now, k) for k in missing]
            self._insert_rows(SUB, rows)
            people.update(self._select_people(missing))
        created = {k for k in missing if k in people}
        return people, created

    def _select_people(self, keys: list[str]) -> dict[str, Existing]:
        rows = self.session.execute(
            select(SUB.c.id, SUB.c.email_hash, SUB.c.name).where(self._in(SUB.c.email_hash, keys))
        ).all()
        return {r.email_hash: Existing(r.id, r.name) for r in rows}

    def _rename(self, chunk: dict[str, Entry], people: dict[str, Existing]) -> set[str]:
        # only the address's first row names it: later rows come with an empty name
        renames = [
            {"b_id": people[k].id, "b_name": entry.rows[0].name}
            for k, entry in chunk.items()
            if entry.rows[0].name and entry.rows[0].name != people[k].name
        ]
        if renames:
            self.session.execute(
                update(SUB).where(SUB.c.id == bindparam("b_id")).values(name=bindparam("b_name")),
                renames,
            )
        ids = {r["b_id"] for r in renames}
        return {k for k in chunk if people[k].id in ids}

    def _subscriptions(
        self, chunk: dict[str, Entry], people: dict[str, Existing]
    ) -> dict[tuple[int, int], Outcome]:
        """Insert new subscriptions, move existing ones; {(subscriber, newsletter): outcome}."""
        current = self._statuses([people[k].id for k in chunk])
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        outcomes: dict[tuple[int, int], Outcome] = {}
        for key, entry in chunk.items():
            sid = people[key].id
            for row in entry.rows:
                for nid, wanted in row.wants.items():
                    before = current.get((sid, nid))
                    after = next_status(before, wanted.status)
                    if before is None:
                        inserts.append(_subscription(sid, nid, wanted, now))
                        outcomes[(sid, nid)] = Outcome.made
                    elif after != before:
                        moves.append(_move(sid, nid, before, wanted, now))
                        outcomes[(sid, nid)] = Outcome.changed
                    else:
                        sticky = before in STICKY and wanted.status != before
                        outcomes[(sid, nid)] = Outcome.kept if sticky else Outcome.same
                        continue
                    events.append(_event(sid, nid, before, after, wanted, row.line, now))
        if inserts:
            self._insert_rows(S, inserts)
        self._move_all([m for m in moves if m["b_consent_at"] is not None], consent=True)
        self._move_all([m for m in moves if m["b_consent_at"] is None], consent=False)
        if events:
            self._insert_rows(EV, events)
        return outcomes

    def _statuses(self, subscriber_ids: list[int]) -> dict[tuple[int, int], str]:
        rows = self.session.execute(
            select(S.c.subscriber_id, S.c.newsletter_id, S.c.status).where(
                self._in(S.c.subscriber_id, subscriber_ids)
            )
        ).all()
        return {(r.subscriber_id, r.newsletter_id): r.status for r in rows}

    def _move_all(self, moves: list[dict[str, Any]], *, consent: bool) -> None:
        """Guarded status changes; ``consent``: the rows record consent, else it stays as it was."""
        if not consent:  # a row without consent never erases the consent recorded on a subscription
            moves = [{k: v for k, v in m.items() if k[2:] not in CONSENT_FIELDS} for m in moves]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for move in moves:
            groups.setdefault((move["b_before"], move["b_status"]), []).append(move)
        for (before, after), group in sorted(groups.items()):
            self._move_group(SubscriptionStatus(before), SubscriptionStatus(after), group, consent)

    def _move_group(
        self,
        before: SubscriptionStatus,
        after: SubscriptionStatus,
        moves: list[dict[str, Any]],
        consent: bool,
    ) -> None:
        """One executemany of the moves ``before`` -> ``after``, a move the table allows."""
        values: dict[str, Any] = {
            "status": after,
            "updated_at": bindparam("b_now"),
            "unsubscribed_at": bindparam("b_unsubscribed_at"),
        }
        if consent:
            values.update({c: bindparam(f"b_{c}") for c in CONSENT_FIELDS})
        # only if the status is still what we read: a concurrent unsubscribe is never undone
        guard = self._inline(moving(S.c.status, after, among=[before]))
        self.session.execute(
            update(S)
            .where(
                S.c.subscriber_id == bindparam("b_sid"),
                S.c.newsletter_id == bindparam("b_nid"),
                guard,
            )
            .values(values),
            [{k: v for k, v in m.items() if k not in ("b_before", "b_status")} for m in moves],
        )

    def _insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING of many rows (all with the same keys).

        On PostgreSQL the rows go in with COPY (ten times faster than psycopg's executemany)
        inside a savepoint; the rows were checked to be new, so a unique violation means a
        concurrent writer got there first, and then the chunk goes again as
        ``INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING``. SQLite's executemany is
        already a tight loop inside one prepared statement.
        """
        if self.dialect != "postgresql":
            insert_ignore(self.session, table, rows)
            return
        try:
            with self.session.begin_nested():
                self._copy(table, rows)
        except psycopg.errors.UniqueViolation:
            self._insert_arrays(table, rows)

    def _copy(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        as_json = [isinstance(table.c[c].type, JSON) for c in columns]
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        names = ", ".join(f'"{c}"' for c in columns)
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[c]) if js else row[c]
                        for c, js in zip(columns, as_json, strict=True)
                    ]
                )

    def _insert_arrays(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        arrays = [
            func.unnest(
                bindparam(f"u_{c}", [r[c] for r in rows], type_=ARRAY(_array_item(table.c[c])))
            )
            for c in columns
        ]
        insert_ignore(self.session, table, select(*arrays), columns=columns)

    def _inline(self, clause: ColumnElement[bool]) -> TextClause:
        """``clause`` with its values written into the SQL: an executemany cannot expand an IN
        list, and these values are the table's own statuses, never input."""
        compiled = clause.compile(
            dialect=self.session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        return text(str(compiled))

    def _in(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter for them all."""
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
        return column.in_(values)


def _array_item(column: Any) -> Any:
    # the database columns are timestamptz; the models' DateTime() would drop the zone
    return DateTime(timezone=True) if isinstance(column.type, DateTime) else column.type


def subscriber_row(email: str, name: str, now: datetime, key: str = "") -> dict[str, Any]:
    """A new subscriber's columns; ``email_hash`` (``key``) too, which COPY would not fill in."""
    return {
        "email": email,
        "email_hash": key or address_key(email),
        "name": name,
        "attributes": {},
        "created_at": now,
    }


def _subscription(sid: int, nid: int, wanted: Wanted, now: datetime) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "status": wanted.status,
        "consent_at": wanted.consent_at,
        "consent_ip": wanted.consent_ip,
        "consent_source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "created_at": now,
        "updated_at": now,
        "unsubscribed_at": now if wanted.status == SubscriptionStatus.unsubscribed else None,
        "soft_bounces": 0,
    }


def _move(sid: int, nid: int, before: str, wanted: Wanted, now: datetime) -> dict[str, Any]:
    values = _subscription(sid, nid, wanted, now)
    return {
        "b_sid": sid,
        "b_nid": nid,
        "b_before": before,
        "b_now": now,
        **{f"b_{k}": values[k] for k in ("status", "unsubscribed_at")},
        **{f"b_{k}": values[k] for k in values if k.startswith("consent_")},
    }


def _event(
    sid: int, nid: int, before: str | None, after: str, wanted: Wanted, line: int, now: datetime
) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "kind": "import",
        "at": now,
        "ip": wanted.consent_ip,
        "source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "detail": {"from": before, "status": after, "line": line},
    }
