"""Shared fixtures: every database test runs on SQLite and on PostgreSQL; real Redis and SMTP.

A service that is not reachable skips its tests with the reason, except under
NEWSLETTER_REQUIRE_SERVICES=1 (set by .ci/run), where it fails them.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from newsletter import db, schema_snapshot
from newsletter.config import Settings, get_settings
from newsletter.models import (
    Article,
    Issue,
    IssueItem,
    IssueSection,
    Newsletter,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from newsletter.transports.sink import SMTPSink, free_port
from worker import celery_app
from worker.embedded import wake_to_stop

# the CLI's rich consoles take their width from COLUMNS when the output is not a terminal, else
# 80: one width for every run (a pytest-xdist worker's output is never a terminal), wide enough
# that a one-line message stays on one line
os.environ["COLUMNS"] = "200"

# libpq tries GSSAPI encryption first (gssencmode=prefer) on every TCP connection, which starts
# Kerberos; that path has crashed processes that connect from several threads (psycopg issues
# 1088, 1213: a segfault inside connect). A CI run died so, in the thread that makes copies of
# the template database. The test server takes no GSSAPI: off for this process and its children
os.environ.setdefault("PGGSSENCMODE", "disable")

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# a worker process that dies mid-test does not hang the run (see the module)
pytest_plugins = ["tests.support.xdist_crash"]

_WORKER_SERVERS: list[subprocess.Popen[bytes]] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in _WORKER_SERVERS:
        server.terminate()
        server.wait(timeout=10)


def _own_redis_for_this_worker() -> str | None:
    """Under pytest-xdist (``-n``), every worker but the first runs a Redis server of its own:
    the suites flush numbered databases for their Celery brokers (9, 10, 13...), and two workers
    flushing one server's database would lose each other's tasks. None: use the shared server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    binary = shutil.which("redis-server")
    if worker == "gw0" or binary is None:  # no binary: the shared server, as without xdist
        return None
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _WORKER_SERVERS.append(server)  # stopped by pytest_unconfigure (xdist skips atexit)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            return url
        except redis.RedisError:
            time.sleep(0.05)
    return None


REDIS_URL = _own_redis_for_this_worker() or os.environ.get(
    "NEWSLETTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
)
# one template per pytest run, so that two runs on one machine never drop each other's
TEMPLATE_DB = f"newsletter_test_template_{os.getpid()}"


def require(service: str, problem: str) -> None:
    """Skip (or, under NEWSLETTER_REQUIRE_SERVICES=1, fail) a test whose service is missing."""
    message = f"{service} not reachable: {problem}"
    if os.environ.get("NEWSLETTER_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (NEWSLETTER_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _pg_conninfo(database: str) -> str:
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """A database migrated once with Alembic; each test gets a copy. None when unreachable."""
    admin_db = make_url(PG_ADMIN_URL).database or "postgres"
    try:
        with psycopg.connect(_pg_conninfo(admin_db), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    except psycopg.Error as exc:
        yield f"!{exc}".splitlines()[0]
        return
    url = make_url(PG_ADMIN_URL).set(database=TEMPLATE_DB).render_as_string(hide_password=False)
    db.upgrade(url)
    db.get_engine(url).dispose()
    yield url
    _PG_COPIES.close()
    with psycopg.connect(_pg_conninfo(admin_db), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new SQLite file at head, made once the way the app makes one (the schema snapshot, which
    ``test_schema_snapshot`` keeps equal to the migrations); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "newsletter.db"
    schema_snapshot.upgrade(f"sqlite:///{path}")  # as a new SQLite file gets it: the snapshot
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_template: str | None,
    sqlite_template: Path,
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "newsletter.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
        yield url
        db.get_engine(url).dispose()
        return
    if postgres_template is None or postgres_template.startswith("!"):
        require("PostgreSQL", (postgres_template or "!")[1:])
    name = _PG_COPIES.take()
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    db.get_engine(url).dispose()
    _PG_COPIES.give_back(name)


class _PgCopies:
    """Copies of the template database, made ahead and dropped behind by a thread of their own.

    A CREATE DATABASE ... TEMPLATE and a DROP DATABASE (which waits for a checkpoint) cost 0.2 to
    2 s each on a busy machine: made in the test's own time, they were part of every PostgreSQL
    test. ``take`` falls back to making one at once when none is ready.
    """

    AHEAD = 2

    def __init__(self) -> None:
        self._ready: queue.Queue[str] = queue.Queue()
        self._dropping: queue.Queue[str] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sql(self, statement: str) -> None:
        admin_db = make_url(PG_ADMIN_URL).database or "postgres"
        with psycopg.connect(_pg_conninfo(admin_db), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def _create(self) -> str:
        name = f"nl_test_{uuid.uuid4().hex[:12]}"
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        return name

    def _drop(self, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._dropping.empty():
                    self._drop(self._dropping.get_nowait())
                if self._ready.qsize() < self.AHEAD:
                    self._ready.put(self._create())
                    continue
            except psycopg.Error:  # the test's own ``take`` makes one, and says what is wrong
                self._stop.wait(1.0)
            self._wake.wait(0.5)
            self._wake.clear()

    def take(self) -> str:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-copies", daemon=True)
            self._thread.start()
        try:
            name = self._ready.get_nowait()
        except queue.Empty:
            name = self._create()
        self._wake.set()
        return name

    def give_back(self, name: str) -> None:
        self._dropping.put(name)
        self._wake.set()

    def close(self) -> None:
        """Stop the thread; drop every copy still there (ready or waiting to be dropped)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)
        for waiting in (self._ready, self._dropping):
            while not waiting.empty():
                self._drop(waiting.get_nowait())


_PG_COPIES = _PgCopies()


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require("Redis", str(exc))
    return REDIS_URL


@pytest.fixture
def settings(
    database_url: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings for this test, also seen by code that reads get_settings() (the worker tasks)."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSLETTER_ENVIRONMENT", "test")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret")
    monkeypatch.setenv("NEWSLETTER_BROKER_FOLDER", str(tmp_path / "broker"))  # type: ignore[operator]
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://news.example.org")
    # the tests sign editors in with a password alone; tests/integration/test_two_factor.py
    # checks the default (admins and editors need a second factor) on its own
    monkeypatch.setenv("NEWSLETTER_TWO_FACTOR_ROLES", "")
    # a SpamAssassin run costs seconds and many tests freeze issues: tests/unit/
    # test_spam_check.py and the composer's browser test turn it on where they test it
    monkeypatch.setenv("NEWSLETTER_SPAM_CHECK", "off")
    # a click's event is recorded right after its response, so a test reads it at once;
    # tests/integration/test_tracking_recorder.py tests the batching recorder (the default)
    monkeypatch.setenv("NEWSLETTER_TRACK_FLUSH_SECONDS", "0")
    get_settings.cache_clear()
    celery_app.forget_settings()  # tasks called here read this test's settings
    yield get_settings()
    get_settings.cache_clear()
    celery_app.forget_settings()


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(settings.database_url), expire_on_commit=False) as s:
        yield s


@contextmanager
def celery_worker(
    redis_url: str,
    redis_db: int,
    sink: SMTPSink,
    monkeypatch: pytest.MonkeyPatch,
    **env: str,
) -> Iterator[Settings]:
    """A real Celery worker (threads, in this process) on a flushed Redis database of its own,
    sending to ``sink``; ``env`` sets more NEWSLETTER_* variables (``batch_size="7"``).

    Yields the settings the worker and the app see; afterwards the Celery app is configured
    back to the test's own settings.
    """
    from celery.contrib.testing.worker import start_worker

    broker = redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
    redis.Redis.from_url(broker).flushdb()
    monkeypatch.setenv("NEWSLETTER_BROKER_URL", broker)
    monkeypatch.setenv("NEWSLETTER_SMTP_HOST", sink.host)
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(sink.port))
    for key, value in env.items():
        monkeypatch.setenv(f"NEWSLETTER_{key.upper()}", value)
    get_settings.cache_clear()
    current = get_settings()
    app = celery_app.configure(current)
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
            try:
                yield current
            finally:
                wake_to_stop(app)  # start_worker then joins a thread that is already ending
    finally:
        get_settings.cache_clear()
        celery_app.configure(get_settings())


# ---------------------------------------------------------------- factories


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def make_newsletter(session: Session, **overrides: object) -> Newsletter:
    uid = _uid()
    values: dict[str, object] = {
        "slug": f"weekly-{uid}",
        "name": "Belarus Weekly",
        "from_name": "Belarus Weekly",
        "from_email": "weekly@news.example.org",
        "reply_to": "editors@news.example.org",
        "postal_address": "Example News Ltd, 12 Sample Street, Warsaw",
        "description": "You get this because you signed up at news.example.org.",
        "website_url": "https://news.example.org",
        "membership_url": "https://news.example.org/membership",
    }
    values.update(overrides)
    newsletter = Newsletter(**values)  # type: ignore[arg-type]
    session.add(newsletter)
    session.commit()
    return newsletter


def make_article(session: Session, **overrides: object) -> Article:
    uid = _uid()
    values: dict[str, object] = {
        "url": f"https://news.example.org/2025/10/story-{uid}",
        "title": f"Story {uid}",
        "summary": f"First sentence of story {uid}. Second sentence.",
        "image_url": f"https://images.example.org/{uid}.jpg",
        "image_alt": "A street in Minsk",
        "image_credit": "Photo: Example Agency",
        "author": "Olga Varabei",
        "published_at": datetime(2025, 10, 19, 8, 0, tzinfo=UTC),
    }
    values.update(overrides)
    article = Article(**values)  # type: ignore[arg-type]
    session.add(article)
    session.commit()
    return article


M = TypeVar("M", bound=SQLModel)


def reloaded(session: Session, model: type[M], key: int) -> M:
    """The row as the database has it now (the session's copies expired first); it must exist."""
    session.expire_all()
    row = session.get(model, key)
    assert row is not None, f"{model.__name__} {key} is not there"
    return row


def make_subscribers(
    session: Session,
    newsletter: Newsletter,
    count: int,
    *,
    status: SubscriptionStatus = SubscriptionStatus.active,
    domain: str = "example.org",
) -> list[Subscriber]:
    uid = _uid()
    people = [
        Subscriber(email=f"reader{i}-{uid}@{domain}", name=f"Reader {i}") for i in range(count)
    ]
    session.add_all(people)
    session.flush()
    session.add_all(
        Subscription(subscriber_id=p.id, newsletter_id=newsletter.id, status=status)  # type: ignore[arg-type]
        for p in people
    )
    session.commit()
    return people


@dataclass
class IssueFixture:
    newsletter: Newsletter
    issue: Issue
    sections: list[IssueSection]
    items: list[IssueItem]
    articles: list[Article]


def make_issue(
    session: Session, *, newsletter: Newsletter | None = None, layout: tuple[int, ...] = (2, 1)
) -> IssueFixture:
    """A draft issue with len(layout) sections holding layout[i] articles each."""
    from newsletter.content import issues

    newsletter = newsletter or make_newsletter(session)
    issue = issues.create_issue(session, newsletter=newsletter.slug, title="This week in Belarus")
    sections, items, articles = [], [], []
    for index, count in enumerate(layout):
        section = issues.add_section(session, issue_id=issue.id, title=f"Section {index + 1}")  # type: ignore[arg-type]
        sections.append(section)
        for _ in range(count):
            article = make_article(session)
            articles.append(article)
            items.append(issues.add_item(session, section_id=section.id, article_id=article.id))  # type: ignore[arg-type]
    session.commit()
    return IssueFixture(newsletter, issue, sections, items, articles)
