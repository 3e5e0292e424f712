"""Alembic migrations on SQLite and PostgreSQL: up, down to base, up again, and no drift.

``alembic check`` (``alembic.command.check``) compares the migrated schema with the SQLModel
metadata and fails when a model changed without a migration.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlmodel import SQLModel

import newsletter.models  # noqa: F401 - registers the tables
from newsletter import db


def _tables(url: str) -> set[str]:
    engine = db.get_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_drift(database_url: str) -> None:
    # the fixture's database is at head already
    model_tables = set(SQLModel.metadata.tables)
    assert model_tables <= _tables(database_url)

    db.downgrade(database_url, "base")
    assert _tables(database_url) <= {"alembic_version"}, "downgrade base left tables behind"

    db.upgrade(database_url, "head")
    assert model_tables <= _tables(database_url)
    try:
        command.check(db.alembic_config(database_url))
    except CommandError as exc:
        pytest.fail(f"models and migrations differ (write a migration): {exc}")

    # and once more, so that a downgrade that only works on a fresh upgrade is caught
    db.downgrade(database_url, "base")
    db.upgrade(database_url, "head")
    command.check(db.alembic_config(database_url))


def test_every_revision_steps_down_and_up_one_at_a_time(database_url: str) -> None:
    cfg = db.alembic_config(database_url)
    revisions = [r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()]
    assert len(revisions) >= 4
    for _ in revisions:
        command.downgrade(cfg, "-1")
    assert _tables(database_url) <= {"alembic_version"}
    for _ in revisions:
        command.upgrade(cfg, "+1")
    command.check(cfg)
