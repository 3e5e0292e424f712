"""The import's set-based statements: many rows in (COPY on PostgreSQL), many keys matched.

``Bulk.insert`` is ``INSERT ... ON CONFLICT DO NOTHING`` of many rows: COPY inside a savepoint on
PostgreSQL (ten times faster than psycopg's executemany; the rows were checked to be new, so a
unique violation means a concurrent writer got there first, and then the rows go again as
``INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING``), SQLite's executemany elsewhere (already
a tight loop inside one prepared statement). ``Bulk.among`` is ``column IN (values)``, one array
parameter on PostgreSQL.
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

    def copy_lines(self, table: Table, columns: Sequence[str], lines: list[str]) -> bool:
        """COPY ``lines`` (COPY text of ``columns``, escaped already) into ``table`` inside a
        savepoint (PostgreSQL); False, with nothing written, on a unique violation."""
        if not lines:
            return True
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        names = ", ".join(f'"{c}"' for c in columns)
        try:
            with (
                self.session.begin_nested(),
                raw.cursor() as cursor,
                cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
            ):
                copy.write("\n".join(lines) + "\n")
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def among(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter for them all."""
        return any_of(column, values, self.dialect)

    def _copy(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
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
