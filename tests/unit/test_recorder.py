"""The sender's connection (``sending.recorder``): a lost connection is replaced and the statement
run again, for so long; a statement the database refused is not; a statement not safe to run
twice runs once. (A real database going away: tests/integration/test_db_outage_send.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from newsletter.db import get_engine
from newsletter.exceptions import DatabaseUnavailable
from newsletter.sending import recorder
from newsletter.sending.recorder import Recorder


class Flaky:
    """Loses the connection ``times`` times, then answers with the connection it was given."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.seen: list[Connection] = []

    def __call__(self, conn: Connection, value: int) -> int:
        self.seen.append(conn)
        if len(self.seen) <= self.times:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return int(conn.execute(text("SELECT :v"), {"v": value}).scalar_one())


@pytest.fixture
def engine_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'recorder.db'}"


def test_a_lost_connection_is_replaced_and_the_statement_run_again(
    engine_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "FIRST_WAIT", 0.001)
    flaky = Flaky(times=2)
    with Recorder(get_engine(engine_url), patience=5) as rec:
        assert rec.call(flaky, 7) == 7
        assert rec.reconnects == 2
    assert len({id(c) for c in flaky.seen}) == 3  # a new connection for each try


def test_a_database_away_longer_than_the_patience_is_unavailable(
    engine_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "FIRST_WAIT", 0.01)
    flaky = Flaky(times=10_000)
    with (
        Recorder(get_engine(engine_url), patience=1.0) as rec,
        pytest.raises(DatabaseUnavailable, match="unreachable"),
    ):
        rec.call(flaky, 1)
    assert 2 <= len(flaky.seen) < 40  # tried again, then gave up


def test_a_refused_statement_is_not_run_again(engine_url: str) -> None:
    tries: list[int] = []

    def refused(conn: Connection) -> None:
        tries.append(1)
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with Recorder(get_engine(engine_url), patience=5) as rec, pytest.raises(IntegrityError):
        rec.call(refused)
    assert tries == [1]


def test_once_runs_once_and_the_next_call_gets_a_new_connection(
    engine_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(times=1)
    with Recorder(get_engine(engine_url), patience=5) as rec:
        with pytest.raises(OperationalError):
            rec.once(flaky, 1)
        assert rec.call(flaky, 2) == 2
    assert len(flaky.seen) == 2 and flaky.seen[0] is not flaky.seen[1]
