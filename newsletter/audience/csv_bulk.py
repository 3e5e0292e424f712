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
from typing import Any

import psycopg
from sqlalchemy import JSON, DateTime, Table, bindparam, func, select
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
        taken = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        return list(self.session.execute(taken).scalars())

    def among(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter for them all."""
        return any_of(column, values, self.dialect)

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
            if not any(as_json):
                for row in rows:
                    copy.write_row([row[c] for c in columns])
                return
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


def _array_item(column: Any) -> Any:
    # the database columns are timestamptz; the models' DateTime() would drop the zone
    return DateTime(timezone=True) if isinstance(column.type, DateTime) else column.type
