"""Throw-away services for the chaos test, the scale-out test and the benchmarks.

A fresh PostgreSQL database dropped at the end, a private ``redis-server`` on a spare port (so
the machine's shared Redis is never restarted or flushed), child processes that are stopped as a
whole process group, and the seeded sample issue with any number of readers inserted
set-based. Like ``sink.py``, this is tooling shipped with the package, not part of a send.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import redis
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from newsletter import db, seeding
from newsletter.content import articles
from newsletter.models import Newsletter
from newsletter.transports.sink import free_port

# SIGKILL for our children when the parent dies without cleaning up (Linux, util-linux)
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


class Child:
    """A subprocess in a session of its own, so that a kill or a stop takes its whole group."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str] | None, workdir: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0  # how many times it was started

    def start(self) -> Child:
        self.generation += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name} generation {self.generation}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                PDEATHSIG + self.argv,
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, signum: int) -> None:
        if self.proc is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process group (e.g. a Celery main process and its prefork child)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # anything left in the group (a prefork child)

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer(Child):
    """A private redis-server on a spare port; with ``aof``, a restart keeps the queued tasks."""

    def __init__(
        self,
        *,
        workdir: Path,
        port: int | None = None,
        aof: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        data = workdir / "redis-data"
        data.mkdir(exist_ok=True)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(data), "--save", ""]
        argv += (
            ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
        )
        super().__init__("redis", argv, env=env, workdir=workdir)
        self.url = f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(f"{self.url}/0", socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> RedisServer:
        super().start()
        deadline = time.monotonic() + 20
        while True:
            try:
                with self.client() as client:
                    if client.ping():
                        return self
            except redis.RedisError:
                pass
            if not self.running or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.tail()}")
            time.sleep(0.05)

    def dbsize(self) -> int:
        with self.client() as client:
            return int(client.dbsize())

    def restart(self) -> tuple[int, int]:
        """SIGTERM (Redis flushes the AOF), wait for the exit, start again: keys before, after."""
        before = self.dbsize()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.start()
        return before, self.dbsize()


@contextmanager
def scratch_database(
    admin_url: str,
    *,
    prefix: str = "nl_scratch",
    keep: bool = False,
    say: Callable[[str], None] = print,
) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped (WITH (FORCE)) at the end unless ``keep``."""
    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.get_engine(url).dispose()
        if keep:
            say(f"database kept: {url}")
        else:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_issue(url: str, *, active: int, unsubscribed: int = 0, domain: str, source: str) -> int:
    """Migrate a PostgreSQL database; the sample issue (seeds/, ~60 KB of HTML) of a newsletter
    with ``active`` (+ ``unsubscribed``) readers at ``domain``, one statement per table."""
    db.upgrade(url)
    spec = yaml.safe_load((seeding.SEEDS_DIR / "newsletter.yaml").read_text(encoding="utf-8"))
    with db.session_scope(url) as s:
        imported = articles.import_file(s, seeding.SEEDS_DIR / "articles.yaml")
        if imported.errors:
            raise RuntimeError(f"seed articles: {imported.errors}")
        s.add(Newsletter(**spec["newsletter"]))
        s.flush()
        issue = seeding.draft_sample_issue(s)
        assert issue.id is not None
        issue_id, newsletter_id = issue.id, issue.newsletter_id
        s.execute(
            text(
                "INSERT INTO subscriber (email, email_hash, name, attributes, created_at) "
                "SELECT a, encode(sha256(convert_to(lower(a), 'UTF8')), 'hex'), n, '{}'::json, "
                "now() FROM ("
                "SELECT 'reader' || g || '@' || :domain AS a, 'Reader ' || g AS n "
                "FROM generate_series(1, :active) AS g "
                "UNION ALL "
                "SELECT 'gone' || g || '@' || :domain, 'Gone ' || g "
                "FROM generate_series(1, :unsubscribed) AS g) AS people"
            ),
            {"domain": domain, "active": active, "unsubscribed": unsubscribed},
        )
        s.execute(
            text(
                "INSERT INTO subscription (subscriber_id, newsletter_id, status, consent_at, "
                "consent_source, created_at, updated_at, unsubscribed_at) "
                "SELECT id, :newsletter, "
                "CASE WHEN email LIKE 'gone%' THEN 'unsubscribed' ELSE 'active' END, "
                "now(), :source, now(), now(), "
                "CASE WHEN email LIKE 'gone%' THEN now() END "
                "FROM subscriber WHERE email LIKE '%@' || :domain"
            ),
            {"newsletter": newsletter_id, "domain": domain, "source": source},
        )
    # statistics for the bulk-loaded tables, as a live database has them
    with db.session_scope(url) as s:
        s.execute(text("ANALYZE subscriber, subscription"))
    return issue_id
