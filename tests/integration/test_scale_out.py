"""Scale-out: two separately started worker processes split one issue, nobody gets it twice.

Two ``celery -A worker.celery_app worker`` processes (distinct node names) share a redis-server
of this test's own (a spare port) and a fresh PostgreSQL database; an issue to 1,000
subscribers in batches of 50 goes to an aiosmtpd sink in this process. Every subscriber gets
exactly one copy, and each worker's log shows the ``send_batch`` tasks it ran and how many
messages each sent (the task's return value), so both are seen to have taken part.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from newsletter import db
from newsletter.config import get_settings
from newsletter.models import IssueStatus
from newsletter.sending import progress
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import Received, SMTPSink
from tests.chaos.chaos_send import celery, ledger_rows, prepare_issue, readers
from tests.conftest import PG_ADMIN_URL, require
from tests.support.scratch import Child, RedisServer, scratch_database

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = 1000
BATCH_SIZE = 50
TIMEOUT = 120.0  # seconds for the send; it takes a few on a 2-core machine
# "Task worker.tasks.send_batch[<id>] succeeded in 0.41s: 50"
SUCCEEDED = re.compile(r"Task worker\.tasks\.send_batch\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    conninfo = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    try:
        psycopg.connect(conninfo.render_as_string(hide_password=False), connect_timeout=3).close()
    except psycopg.Error as exc:
        require("PostgreSQL", str(exc).splitlines()[0])
    with scratch_database(PG_ADMIN_URL, prefix="nl_scale") as url:
        yield url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        require("redis-server", "no redis-server binary on PATH to start a private Redis")
    server = RedisServer(env=dict(os.environ), workdir=tmp_path)
    server.start()
    yield server
    server.stop()


def _worker(name: str, env: dict[str, str], workdir: Path) -> Child:
    argv = celery(
        "worker",
        "--pool", "solo",
        "--loglevel", "INFO",
        "-Q", "newsletter,newsletter.send,newsletter.webhooks,newsletter.confirm",
        "-n", f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
    )  # fmt: skip
    return Child(name, argv, env=env, workdir=workdir)


def _wait_until_ready(app: Any, workers: list[Child], timeout: float = 30.0) -> None:
    """Both nodes answer a ping before the send starts (else the first could take it all)."""
    deadline = time.monotonic() + timeout
    names = {f"{c.name}@" for c in workers}
    while time.monotonic() < deadline:
        for child in workers:
            assert child.running, f"{child.name} exited:\n{child.tail()}"
        answered = {n.split("@")[0] + "@" for reply in app.control.ping(timeout=0.5) for n in reply}
        if names <= answered:
            return
    pytest.fail(f"workers not ready in {timeout:.0f}s: " + " ".join(c.tail(5) for c in workers))


def _sent_per_task(child: Child) -> list[int]:
    return [int(n) for n in SUCCEEDED.findall(child.log_path.read_text(errors="replace"))]


def test_two_workers_split_one_issue_without_duplicates(
    postgres_database: str,
    private_redis: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database_url = postgres_database
    issue_id = prepare_issue(database_url, active=SUBSCRIBERS, unsubscribed=10)
    active = readers(database_url, issue_id, "active")
    assert len(active) == SUBSCRIBERS

    copies: Counter[str] = Counter()

    def count(received: Received) -> None:
        copies.update(r.lower() for r in received.rcpt_tos)

    sink = SMTPSink(on_message=count)
    sink.messages = _Discard()  # keep counts, not 1,000 messages of 90 KB
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env.update(
        {
            "NEWSLETTER_ENVIRONMENT": "test",
            "NEWSLETTER_SECRET_KEY": "scale-out-secret",
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_BROKER_URL": f"{private_redis.url}/0",
            "NEWSLETTER_REDIS_URL": f"{private_redis.url}/1",
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_SMTP_HOST": sink.host,
            "NEWSLETTER_SMTP_PORT": str(sink.port),
            "NEWSLETTER_BATCH_SIZE": str(BATCH_SIZE),
            "NEWSLETTER_SEND_PARALLELISM": "4",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    workers = [_worker(name, env, tmp_path) for name in ("w1", "w2")]

    from worker.celery_app import configure
    from worker.tasks import dispatch

    for key, value in env.items():
        if key.startswith("NEWSLETTER_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        sink.start()
        for child in workers:
            child.start()
        _wait_until_ready(configure(settings), workers)
        with db.session_scope(database_url) as s:
            start = fill_ledger(s, issue_id=issue_id, checks=qa_config(settings))
        assert start.recipients == SUBSCRIBERS
        dispatch.delay(issue_id)

        deadline = time.monotonic() + TIMEOUT
        while True:
            with db.session_scope(database_url) as s:
                state = progress.progress(s, issue_id=issue_id)
            if state.status != IssueStatus.sending or time.monotonic() > deadline:
                break
            for child in workers:
                assert child.running, f"{child.name} exited:\n{child.tail()}"
            time.sleep(0.2)
        time.sleep(0.5)  # a stray late copy would still arrive
    finally:
        for child in workers:
            child.stop()
        sink.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        configure(get_settings())

    logs = "\n".join(f"--- {c.name}\n{c.tail()}" for c in workers)
    assert state.status == IssueStatus.sent, f"issue ended {state.status}: {state.counts}\n{logs}"
    assert state.counts.get("sent") == SUBSCRIBERS

    # every subscriber exactly once, nobody else
    assert set(copies) == active
    twice = {email: n for email, n in copies.items() if n > 1}
    assert not twice, f"{len(twice)} recipients got more than one copy: {list(twice)[:5]}"
    assert all(status == "sent" for status, _ in ledger_rows(database_url, issue_id).values())

    # both worker processes took part, and between them they sent every message once
    per_worker = {c.name: _sent_per_task(c) for c in workers}
    for name, tasks in per_worker.items():
        assert sum(tasks) > 0, f"{name} sent nothing ({len(tasks)} send_batch tasks)\n{logs}"
    assert sum(sum(tasks) for tasks in per_worker.values()) == SUBSCRIBERS, per_worker


class _Discard(list[Received]):
    """A ``messages`` list that keeps nothing."""

    def append(self, _item: Received) -> None:
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
