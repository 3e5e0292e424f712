"""Connection pool settings reach PostgreSQL engines (SQLite engines have no such pool)."""

from __future__ import annotations

import uuid

import pytest

from newsletter import db
from newsletter.config import get_settings


def test_pool_settings_apply_to_postgresql_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DB_POOL_SIZE", "3")
    monkeypatch.setenv("NEWSLETTER_DB_MAX_OVERFLOW", "7")
    monkeypatch.setenv("NEWSLETTER_DB_POOL_RECYCLE", "600")
    monkeypatch.setenv("NEWSLETTER_DB_POOL_TIMEOUT", "12.5")
    get_settings.cache_clear()
    try:
        # a URL of its own (engines are cached per URL); making an engine does not connect
        url = f"postgresql+psycopg://nobody@127.0.0.1:1/pool_{uuid.uuid4().hex}"
        engine = db.get_engine(url, get_settings().pool())
        pool = engine.pool
        assert pool.size() == 3  # type: ignore[attr-defined]
        assert pool._max_overflow == 7  # type: ignore[attr-defined]
        assert pool._recycle == 600
        assert pool._timeout == 12.5  # type: ignore[attr-defined]
        assert pool._pre_ping
    finally:
        get_settings.cache_clear()


def test_sqlite_engines_ignore_the_pool_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("NEWSLETTER_DB_POOL_SIZE", "3")
    get_settings.cache_clear()
    try:
        engine = db.get_engine(f"sqlite:///{tmp_path}/pool.db", get_settings().pool())
        assert engine.dialect.name == "sqlite"
    finally:
        get_settings.cache_clear()
