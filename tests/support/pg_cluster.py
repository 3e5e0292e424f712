"""A throw-away PostgreSQL cluster of its own, for the chaos test: restarted mid-send.

``initdb`` and ``pg_ctl`` from Debian's server package (``/usr/lib/postgresql/<v>/bin``, or
``PG_BIN``) in a temporary folder, listening on 127.0.0.1 on a spare port, trust
authentication, the default durability (``fsync`` and ``synchronous_commit`` on: a restart of
this cluster must lose nothing a commit promised). Run as root, the server runs as the
``postgres`` user (PostgreSQL refuses to run as root). Like ``scratch.py``, tooling.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psycopg

from newsletter.transports.sink import free_port


def pg_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: ``PG_BIN``, else the newest Debian one."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """Why a cluster cannot be made here, or None."""
    folder = pg_bin()
    if folder is None or not (folder / "pg_ctl").exists():
        return "no initdb/pg_ctl (apt-get install postgresql, or set PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and there is no runuser"
    return None


class PostgresCluster:
    """``start()``, ``restart()`` (``pg_ctl restart -m fast``), ``stop()``; ``url(db)``."""

    def __init__(self, *, port: int | None = None, keep: bool = False) -> None:
        folder = pg_bin()
        if folder is None:
            raise RuntimeError(unavailable() or "no PostgreSQL binaries")
        self.bin = folder
        self.port = port or free_port()
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="nl-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if self._as_postgres else pwd.getpwuid(os.geteuid()).pw_name
        self.restarts = 0
        self.running = False

    def _run(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self._as_postgres, *argv],
            check=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "60", *args,
        )  # fmt: skip

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
            "--no-sync",  # initdb's own flush of the new files; the server runs with fsync on
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("max_connections = 100\nshared_buffers = 64MB\n")
        self._pg_ctl("start")
        self.running = True
        return self

    def restart(self) -> float:
        """A fast restart (clients disconnected, a checkpoint, up again); its seconds."""
        began = time.monotonic()
        self._pg_ctl("restart", "-m", "fast")
        self.restarts += 1
        return time.monotonic() - began

    def stop(self) -> None:
        if self.running:
            with suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("stop", "-m", "immediate")
            self.running = False
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
