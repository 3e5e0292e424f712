"""The subscriber side of an import chunk: find or create the subscribers, fill in or overwrite
their name, language, time zone and attributes, add their tags; set-based, as ``csv_writer``.

What an existing subscriber's fields become is the editor's choice (``Existing``):

- ``keep`` (the default): a field is only filled in where it is empty (a name, a language, a time
  zone, an attribute key the subscriber does not have); nothing written is ever replaced;
- ``overwrite``: a non-empty cell replaces the field (attributes are merged key by key).

An empty cell never erases anything, and tags are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select, update

from newsletter.audience import csv_fresh
from newsletter.audience.csv_bulk import Bulk
from newsletter.audience.csv_fresh import SUBSCRIBER_COLUMNS
from newsletter.audience.csv_rows import Entry, Row
from newsletter.models import address_key, utcnow
from newsletter.tables import SUB, TAG


class Existing(StrEnum):
    """What an import does to the fields of a subscriber who is already there."""

    keep = "keep"
    overwrite = "overwrite"


@dataclass(slots=True)
class Person:
    id: int
    name: str
    language: str | None = None
    time_zone: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class People:
    """Finds, creates and updates the subscribers of a chunk; says what changed per row."""

    def __init__(self, bulk: Bulk, existing: Existing) -> None:
        self.bulk = bulk
        self.overwrite = existing is Existing.overwrite
        self.copied = False  # the last chunk's new subscribers all went in from their Fresh text

    def find_or_create(self, chunk: dict[str, Entry]) -> tuple[dict[str, Person], set[str]]:
        """({address key: person}, the keys created now)."""
        people = self._select(list(chunk))
        missing = [k for k in chunk if k not in people]
        self.copied = False
        if missing:
            ids = self.bulk.new_ids(SUB, len(missing))
            if ids is not None and all(chunk[k].fresh for k in missing):
                pairs = zip(ids, (chunk[k] for k in missing), strict=True)
                self.copied = self.bulk.copy_lines(
                    SUB, SUBSCRIBER_COLUMNS, csv_fresh.lines(pairs, "subscriber")
                )
            if self.copied and ids is not None:
                people.update((k, Person(sid, "")) for k, sid in zip(missing, ids, strict=True))
                return people, set(missing)
            now = utcnow()
            rows = [subscriber_row(chunk[k].rows[0], now, k) for k in missing]
            if ids is not None:
                for row, sid in zip(rows, ids, strict=True):
                    row["id"] = sid
            if self.bulk.insert(SUB, rows) and ids is not None:
                people.update((k, Person(sid, "")) for k, sid in zip(missing, ids, strict=True))
            else:  # SQLite, or a concurrent writer made some of them first
                people.update(self._ids(missing))
        return people, {k for k in missing if k in people}

    def _ids(self, keys: list[str]) -> dict[str, Person]:
        """The ids of the subscribers just created (their fields are their rows')."""
        query = select(SUB.c.id, SUB.c.email_hash).where(self.bulk.among(SUB.c.email_hash, keys))
        return {r.email_hash: Person(r.id, "") for r in self.bulk.session.execute(query)}

    def update(
        self, chunk: dict[str, Entry], people: dict[str, Person], created: set[str]
    ) -> dict[int, list[str]]:
        """Write the fields and tags; {line: the fields its row changed} (rows that changed)."""
        changed: dict[int, list[str]] = {}
        updates: list[dict[str, Any]] = []
        for key, entry in chunk.items():
            if key in created:
                continue
            person, first = people[key], entry.rows[0]
            fields = self._changes(person, first)
            if fields:
                changed[first.line] = fields
                updates.append(
                    {
                        "b_id": person.id,
                        "b_name": person.name,
                        "b_language": person.language,
                        "b_time_zone": person.time_zone,
                        "b_attributes": person.attributes,
                    }
                )
        if updates:
            self.bulk.session.execute(
                update(SUB)
                .where(SUB.c.id == bindparam("b_id"))
                .values(
                    name=bindparam("b_name"),
                    language=bindparam("b_language"),
                    time_zone=bindparam("b_time_zone"),
                    attributes=bindparam("b_attributes", type_=SUB.c.attributes.type),
                ),
                updates,
            )
        for line in self._tags(chunk, people, created):
            changed.setdefault(line, []).append("tags")
        return changed

    def _changes(self, person: Person, row: Row) -> list[str]:
        """The fields ``row`` changes on ``person`` (in place), by the keep/overwrite rule."""
        fields = []
        for name in ("name", "language", "time_zone"):
            value, current = getattr(row, name), getattr(person, name)
            if value and value != current and (self.overwrite or not current):
                setattr(person, name, value)
                fields.append(name)
        merged = dict(person.attributes)
        for key, value in row.attributes.items():
            if key not in merged or (self.overwrite and merged[key] != value):
                merged[key] = value
        if merged != person.attributes:
            person.attributes = merged
            fields.append("attributes")
        return fields

    def _tags(
        self, chunk: dict[str, Entry], people: dict[str, Person], created: set[str]
    ) -> list[int]:
        """Insert the rows' tags the subscribers lack; the lines of the existing subscribers'
        rows that added one (a new subscriber's row is new anyway)."""
        wanted = [(people[k].id, k, row) for k, e in chunk.items() for row in e.rows if row.tags]
        if not wanted:
            return []
        ids = list({sid for sid, _, _ in wanted})
        query = select(TAG.c.subscriber_id, TAG.c.tag).where(
            self.bulk.among(TAG.c.subscriber_id, ids)
        )
        have = {(r.subscriber_id, r.tag) for r in self.bulk.session.execute(query)}
        now = utcnow()
        rows: list[dict[str, Any]] = []
        lines = []
        for sid, key, row in wanted:
            new = [t for t in row.tags if (sid, t) not in have]
            if not new:
                continue
            have.update((sid, t) for t in new)
            rows.extend({"subscriber_id": sid, "tag": t, "created_at": now} for t in new)
            if key not in created:
                lines.append(row.line)
        self.bulk.insert(TAG, rows)
        return lines

    def _select(self, keys: list[str]) -> dict[str, Person]:
        rows = self.bulk.session.execute(
            select(
                SUB.c.id,
                SUB.c.email_hash,
                SUB.c.name,
                SUB.c.language,
                SUB.c.time_zone,
                SUB.c.attributes,
            ).where(self.bulk.among(SUB.c.email_hash, keys))
        ).all()
        return {
            r.email_hash: Person(r.id, r.name, r.language, r.time_zone, dict(r.attributes or {}))
            for r in rows
        }


def subscriber_row(row: Row, now: datetime, key: str = "") -> dict[str, Any]:
    """A new subscriber's columns; ``email_hash`` (``key``) too, which COPY would not fill in."""
    return {
        "email": row.email,
        "email_hash": key or address_key(row.email),
        "name": row.name,
        "language": row.language,
        "time_zone": row.time_zone,
        "attributes": row.attributes,
        "created_at": now,
    }
