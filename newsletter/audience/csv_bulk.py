"""The import's set-based statements: many rows in (COPY on PostgreSQL), many keys matched.

``Bulk.insert`` is ``INSERT ... ON CONFLICT DO NOTHING`` of many rows: COPY inside a savepoint on
PostgreSQL (ten times faster than psycopg's executemany; the rows were checked to be new, so a
unique violation means a concurrent writer got there first, and then the rows go again as
``INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING``), SQLite's executemany elsewhere (already
a tight loop inside one prepared statement). ``Bulk.among`` is ``column IN (values)``, one array
parameter on PostgreSQL.

``Bulk.hold`` and ``copy_lines(..., trusted=True)`` spare PostgreSQL the foreign-key checks of
rows whose references are known to stand: the check is a query per row and per key (over half
the time a subscription or an event takes to go in). A row is trusted when every row it names
was inserted by this transaction (nobody else sees it, so nobody can delete it) or is held by
``hold``'s ``FOR KEY SHARE``, the lock the check itself would take. The checks are skipped with
``SET LOCAL session_replication_role = replica`` around the one COPY, which the role may only
do as a superuser (or granted SET on it, PostgreSQL 15+); without that privilege every row is
checked, as before. The replica role also skips user triggers and rules: the tables the import
copies trusted (subscription and subscriberevent) have none, and a test keeps it so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import psycopg
from sqlalchemy import JSON, DateTime, Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from newsletter.db import any_of, insert_ignore


class Bulk:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self._sequences: dict[str, str] = {}
        self.may_skip_checks = self.dialect == "postgresql"  # False once the role may not

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING of many rows (all with the same keys); True when
        they were all copied in (PostgreSQL, no conflict), so each is there as given."""
        if not rows:
            return True
        if self.dialect != "postgresql":
            insert_ignore(self.session, table, rows)
            return False
        try:
            with self.session.begin_nested():
                self._copy(table, rows)
            return True
        except psycopg.errors.UniqueViolation:
            self._insert_arrays(table, rows)
            return False

    def new_ids(self, table: Table, count: int) -> list[int] | None:
        """``count`` values of the table's id sequence, taken now (PostgreSQL; None elsewhere):
        rows copied with them need no query to learn their ids."""
        if self.dialect != "postgresql" or not count:
            return None
        sequence = self._sequences.get(table.name)
        if sequence is None:
            found = select(func.pg_get_serial_sequence(table.name, "id"))
            sequence = self._sequences[table.name] = self.session.execute(found).scalar_one()
        # nearly always one run of numbers (no other writer took some meanwhile): two of them
        # come back instead of ``count``; else the list as one text
        first, last, listed = self.session.execute(
            text(
                "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL "
                "ELSE string_agg(v::text, ',') END "
                "FROM (SELECT nextval(CAST(:sequence AS regclass)) AS v "
                "FROM generate_series(1, :count)) AS taken"
            ),
            {"sequence": sequence, "count": count},
        ).one()
        if listed is None:
            return list(range(first, last + 1))
        return [int(v) for v in listed.split(",")]

    def hold(self, table: Table, ids: Iterable[int]) -> bool:
        """Lock the rows ``ids`` of ``table`` against deletion and key changes until the end of
        the transaction (``FOR KEY SHARE``, as a foreign-key check does); True if all are there,
        so rows naming them can be copied ``trusted`` (PostgreSQL). Asked again for every chunk:
        an import job commits between chunks, which lets go of the lock."""
        wanted = set(ids)
        if not wanted:
            return True
        found = self.session.execute(
            select(table.c.id)
            .where(self.among(table.c.id, sorted(wanted)))
            .with_for_update(key_share=True)
        ).scalars()
        return set(found) == wanted

    def copy_lines(
        self, table: Table, columns: Sequence[str], lines: list[str], *, trusted: bool = False
    ) -> bool:
        """COPY ``lines`` (COPY text of ``columns``, escaped already) into ``table`` inside a
        savepoint (PostgreSQL); False, with nothing written, on a unique violation. ``trusted``:
        every row's references were inserted by this transaction or are ``hold``'s, so their
        foreign-key checks are skipped if the role may (see the module's docstring)."""
        if not lines:
            return True
        unchecked = trusted and self.may_skip_checks
        names = ", ".join(f'"{c}"' for c in columns)
        try:
            # the connection asked for inside the block: SQLAlchemy 2.1 emits the SAVEPOINT then
            with self.session.begin_nested(), self._raw().cursor() as cursor:
                if unchecked:  # SET LOCAL: a failure's rollback to the savepoint undoes it too
                    cursor.execute("SET LOCAL session_replication_role = replica")
                with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                    copy.write("\n".join(lines) + "\n")
                if unchecked:
                    cursor.execute("SET LOCAL session_replication_role = origin")
        except psycopg.errors.UniqueViolation:
            return False
        except psycopg.errors.InsufficientPrivilege:
            if not unchecked:
                raise
            self.may_skip_checks = False  # not a superuser: the rows are checked, as ever
            return self.copy_lines(table, columns, lines)
        return True

    def _raw(self) -> psycopg.Connection[Any]:
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        return raw

    def among(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter for them all."""
        return any_of(column, values, self.dialect)

    def _copy(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        raw = self._raw()
        names = ", ".join(f'"{c}"' for c in columns)
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            try:
                texts = [_column_text([row[c] for row in rows], c in as_json) for c in columns]
            except TypeError:  # a value of a type not written here: psycopg's dumpers
                get = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
                for row in rows:
                    values = list(get(row))
                    for i, c in enumerate(columns):
                        if c in as_json:
                            values[i] = json_text(values[i])
                    copy.write_row(values)
                return
            lines = zip(*texts, strict=True)
            copy.write("\n".join(map("\t".join, lines)) + "\n")

    def _insert_arrays(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        rows = [{c: _json_value(v) for c, v in row.items()} for row in rows]
        arrays = [
            func.unnest(
                bindparam(f"u_{c}", [r[c] for r in rows], type_=ARRAY(_array_item(table.c[c])))
            )
            for c in columns
        ]
        insert_ignore(self.session, table, select(*arrays), columns=columns)


NULL = "\\N"  # COPY's text for NULL


class JsonText(str):
    """A JSON value written out already (``json.dumps``'s text): COPY sends it as it is."""


def json_text(value: Any) -> str:
    if isinstance(value, JsonText):
        return value
    return "{}" if value == {} else json.dumps(value)  # most attributes are {}


def _column_text(values: list[Any], as_json: bool) -> Iterable[str]:
    """One column of a COPY in its text format: a value shared by every row is written once
    (the import time, the newsletter, the source...), whole numbers by ``str``, the rest by
    ``copy_text``; TypeError for a value of another kind."""
    first = values[0]
    if values.count(first) == len(values):
        return [copy_text(first, as_json)] * len(values)
    if not as_json and all(type(v) is int for v in values):
        return map(str, values)
    return [copy_text(v, as_json) for v in values]


def copy_text(value: Any, as_json: bool = False) -> str:
    """``value`` as COPY's text format writes it: ``\\N`` for NULL; a backslash, tab, line feed or
    carriage return in text escaped with a backslash."""
    if value is None:
        return NULL
    if as_json:
        value = json_text(value)
    if isinstance(value, str):
        if value.isprintable() and "\\" not in value:
            return value  # nearly all: no character to escape
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"COPY text of {type(value).__name__}")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, JsonText) else value


def _array_item(column: Any) -> Any:
    # the database columns are timestamptz; the models' DateTime() would drop the zone
    return DateTime(timezone=True) if isinstance(column.type, DateTime) else column.type
