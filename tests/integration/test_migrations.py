"""Alembic migrations on SQLite and PostgreSQL: up, down to base, up again, and no drift.

``alembic check`` (``alembic.command.check``) compares the migrated schema with the SQLModel
metadata and fails when a model changed without a migration.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
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


def test_migration_0007_merges_case_twins_into_the_earliest_and_a_no_wins(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db.downgrade(database_url, "0006")
    engine = db.get_engine(database_url)
    now = "2026-01-01 00:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO newsletter (id, slug, name, from_name, from_email, postal_address, "
                "description, website_url, membership_url, brand_color, created_at) VALUES "
                "(1, 'a', 'A', 'A', 'a@x.org', 'addr', '', '', '', '#000000', :now), "
                "(2, 'b', 'B', 'B', 'b@x.org', 'addr', '', '', '', '#000000', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO subscriber (id, email, name, attributes, created_at) VALUES "
                "(1, 'reader@example.org', '', '{}', :now), "
                "(2, 'Reader@Example.org', 'Rea Der', '{}', :now), "
                "(3, 'other@example.org', 'Other', '{}', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO subscription (subscriber_id, newsletter_id, status, created_at, "
                "updated_at, soft_bounces) VALUES "
                "(1, 1, 'active', :now, :now, 0), (2, 1, 'unsubscribed', :now, :now, 0), "
                "(2, 2, 'active', :now, :now, 0), (3, 1, 'active', :now, :now, 0)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO subscriberevent (subscriber_id, kind, at, detail) VALUES "
                "(2, 'signup', :now, '{}')"
            ),
            {"now": now},
        )
    engine.dispose()
    db.upgrade(database_url, "head")
    assert "merged subscriber 2 into 1" in capsys.readouterr().out
    engine = db.get_engine(database_url)
    with engine.connect() as conn:
        people = conn.execute(text("SELECT id, name FROM subscriber ORDER BY id")).all()
        subs = conn.execute(
            text("SELECT subscriber_id, newsletter_id, status FROM subscription ORDER BY 1, 2")
        ).all()
        events = conn.execute(text("SELECT subscriber_id FROM subscriberevent")).scalars().all()
    engine.dispose()
    assert [tuple(p) for p in people] == [(1, "Rea Der"), (3, "Other")]
    # newsletter 1: the twin had unsubscribed, so the merged subscriber is unsubscribed there
    assert [tuple(s) for s in subs] == [(1, 1, "unsubscribed"), (1, 2, "active"), (3, 1, "active")]
    assert events == [1]


def test_migration_0008_keeps_what_readers_saw_and_steps_back(database_url: str) -> None:
    db.downgrade(database_url, "0007")
    engine = db.get_engine(database_url)
    now = "2026-01-01 00:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO newsletter (id, slug, name, from_name, from_email, postal_address, "
                "description, website_url, membership_url, brand_color, created_at) VALUES "
                "(1, 'a', 'A', 'A', 'a@x.org', 'addr', 'Why you get A', '', "
                "'https://x.org/join', '#000000', :now), "
                "(2, 'b', 'B', 'B', 'b@x.org', 'addr', '', '', '', '#000000', :now)"
            ),
            {"now": now},
        )
    engine.dispose()

    db.upgrade(database_url, "0008")
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT slug, description, footer_text, membership_cta, membership_text, "
                "membership_button, language, time_zone, logo_url, masthead, default_sections, "
                "requires_review FROM newsletter ORDER BY id"
            )
        ).all()
        # the email footer keeps its text; the CTA stays on where a membership URL was set
        assert [(r.slug, r.description, r.footer_text) for r in rows] == [
            ("a", "Why you get A", "Why you get A"),
            ("b", "", ""),
        ]
        assert [bool(r.membership_cta) for r in rows] == [True, False]
        assert rows[0].membership_text == "Independent journalism depends on readers like you."
        for r in rows:
            assert (r.language, r.time_zone, r.logo_url, r.masthead) == ("en", "UTC", "", "")
            assert r.membership_button == "Become a member"
            assert r.default_sections in ([], "[]") and not r.requires_review
        conn.execute(text("UPDATE newsletter SET footer_text = 'Why you get B' WHERE id = 2"))
    engine.dispose()

    db.downgrade(database_url, "0007")
    engine = db.get_engine(database_url)
    with engine.connect() as conn:
        back = conn.execute(text("SELECT slug, description FROM newsletter ORDER BY id")).all()
        columns = {c["name"] for c in inspect(conn).get_columns("newsletter")}
    engine.dispose()
    # the older schema's one text: the about text where there was one, else the footer
    assert [tuple(r) for r in back] == [("a", "Why you get A"), ("b", "Why you get B")]
    assert "footer_text" not in columns and "language" not in columns
    db.upgrade(database_url, "head")
