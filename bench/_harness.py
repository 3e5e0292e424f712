"""Shared pieces of the process-level benchmarks: child processes, a private redis-server, a
scratch PostgreSQL database with set-based subscribers, the SMTP sink, a raw smtplib ceiling and
peak RSS from /proc.

Run as a script it is also the body of two helper processes (so they never share the measuring
script's GIL):

    python bench/_harness.py sink --port P        an aiosmtpd sink that only counts
    python bench/_harness.py ceiling --port P --message FILE --start T --seconds S
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DOMAIN = "bench.example.org"
# SIGKILL for our children when the benchmark dies without cleaning up (Linux, util-linux)
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/local/sbin/smtp-sink")


def say(message: str) -> None:
    print(message, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- child processes


class Child:
    """A subprocess in a session of its own, so that stopping it takes its whole group."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str] | None, workdir: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log_path.open("ab") as log:
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
    """A private redis-server on a spare port, no persistence: the shared Redis is not touched."""

    def __init__(self, *, workdir: Path) -> None:
        self.port = free_port()
        argv = [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(workdir),
            "--appendonly", "no",
            "--save", "",
        ]  # fmt: skip
        super().__init__("redis", argv, env=None, workdir=workdir)
        self.url = f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        import redis

        super().start()
        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis.from_url(f"{self.url}/0", socket_connect_timeout=1) as client:
                    if client.ping():
                        return self
            except redis.RedisError:
                pass
            if not self.running or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.tail()}")
            time.sleep(0.05)


# ---------------------------------------------------------------- peak RSS


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of one process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
    except OSError:
        return "?"


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command name, user + system clock ticks so far) of every process."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        head, tail = stat.rsplit(")", 1)
        fields = tail.split()
        ticks[int(entry.name)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
    return ticks


def machine_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all CPUs so far, from /proc/stat (iowait counts as idle)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, idle


def cpu_seconds(
    before: dict[int, tuple[str, int]],
    after: dict[int, tuple[str, int]],
    groups: dict[str, set[int]],
) -> dict[str, float]:
    """CPU seconds used between two ``cpu_ticks`` by each group of pids; processes not in a
    group are counted by command name (``other:postgres``, ...). A process that exited in
    between is not counted."""
    hz = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid, (name, ticks) in after.items():
        old = before.get(pid)
        delta = ticks - (old[1] if old and old[0] == name else 0)
        if delta <= 0:
            continue
        group = next((g for g, pids in groups.items() if pid in pids), f"other:{name}")
        used[group] = used.get(group, 0.0) + delta / hz
    return used


# ---------------------------------------------------------------- the database


@contextmanager
def scratch_database(admin_url: str = PG_ADMIN_URL, *, keep: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database ``nl_bench_<hex>``, dropped WITH (FORCE) at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    from newsletter import db

    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"nl_bench_{uuid.uuid4().hex[:12]}"
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


def prepare_issue(url: str, *, active: int, unsubscribed: int = 0) -> int:
    """Migrate; the sample issue (seeds/, ~60 KB of HTML) of a newsletter with ``active``
    (+ ``unsubscribed``) readers, inserted set-based whatever their number."""
    import yaml
    from sqlalchemy import text

    from newsletter import articles, db, seeding
    from newsletter.models import Newsletter

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
                "INSERT INTO subscriber (email, name, attributes, created_at) "
                "SELECT 'reader' || g || '@' || :domain, 'Reader ' || g, '{}'::json, now() "
                "FROM generate_series(1, :active) AS g "
                "UNION ALL "
                "SELECT 'gone' || g || '@' || :domain, 'Gone ' || g, '{}'::json, now() "
                "FROM generate_series(1, :unsubscribed) AS g"
            ),
            {"domain": DOMAIN, "active": active, "unsubscribed": unsubscribed},
        )
        s.execute(
            text(
                "INSERT INTO subscription (subscriber_id, newsletter_id, status, consent_at, "
                "consent_source, created_at, updated_at, unsubscribed_at) "
                "SELECT id, :newsletter, "
                "CASE WHEN email LIKE 'gone%' THEN 'unsubscribed' ELSE 'active' END, "
                "now(), 'bench', now(), now(), "
                "CASE WHEN email LIKE 'gone%' THEN now() END "
                "FROM subscriber WHERE email LIKE '%@' || :domain"
            ),
            {"newsletter": newsletter_id, "domain": DOMAIN},
        )
    # statistics for the bulk-loaded tables, as a live database has them
    with db.session_scope(url) as s:
        s.execute(text("ANALYZE subscriber, subscription"))
    return issue_id


# ---------------------------------------------------------------- the SMTP sink


def find_smtp_sink() -> str | None:
    found = shutil.which("smtp-sink")
    if found:
        return found
    return next((p for p in SMTP_SINK_PATHS if os.access(p, os.X_OK)), None)


class Sink:
    """Postfix's smtp-sink when installed (C, accepts and discards), else the project's aiosmtpd
    sink in a process of its own that only counts. ``accepted()`` reads its counter."""

    def __init__(self, *, workdir: Path, kind: str = "auto") -> None:
        self.host, self.port = "127.0.0.1", free_port()
        binary = find_smtp_sink() if kind in ("auto", "smtp-sink") else None
        if kind == "smtp-sink" and binary is None:
            raise RuntimeError("smtp-sink not found (apt-get install postfix)")
        if binary is not None:
            self.kind = f"smtp-sink ({binary})"
            # -c: running counters on stdout; root must name a user to drop privileges to;
            # 1000: the listen backlog
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            argv = [binary, "-c", *user, f"{self.host}:{self.port}", "1000"]
        else:
            self.kind = "aiosmtpd (newsletter.sink.SMTPSink, own process)"
            argv = [sys.executable, str(Path(__file__).resolve()), "sink", "--port", str(self.port)]
        self.child = Child("sink", argv, env=None, workdir=workdir)

    def start(self) -> Sink:
        self.child.start()
        deadline = time.monotonic() + 20
        while True:
            with suppress(OSError):
                smtplib.SMTP(self.host, self.port, timeout=2).quit()
                return self
            if not self.child.running or time.monotonic() > deadline:
                raise RuntimeError(f"SMTP sink did not start:\n{self.child.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.child.stop()

    def settled(self, timeout: float = 5.0) -> int | None:
        """``accepted()`` once it stops moving (the aiosmtpd sink prints it twice a second)."""
        last, deadline = self.accepted(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.6)
            now = self.accepted()
            if now == last:
                break
            last = now
        return last

    def accepted(self) -> int | None:
        """Messages the sink accepted so far (its own counter), when it can be read."""
        try:
            with self.child.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 4096))
                tail = log.read().decode(errors="replace")
        except OSError:
            return None
        marker = tail.rfind("mesg=")
        if marker < 0:
            return None
        digits = "".join(c for c in tail[marker + 5 : marker + 20] if c.isdigit() or c == " ")
        return int(digits.split()[0]) if digits.split() else None


def _run_sink(port: int) -> None:
    """The aiosmtpd fallback: newsletter.sink.SMTPSink that counts instead of storing."""
    from newsletter.sink import Received, SMTPSink

    class CountingSink(SMTPSink):
        accepted = 0
        _count_lock = threading.Lock()

        def store(self, received: Received) -> None:
            with self._count_lock:
                self.accepted += 1

    sink = CountingSink(port=port).start()
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    last = -1
    while not stop.wait(0.5):
        if sink.accepted != last:  # same counter line as smtp-sink -c, for Sink.accepted
            last = sink.accepted
            print(f"mesg={last}", flush=True)
    print(f"mesg={sink.accepted}", flush=True)
    sink.stop()


# ---------------------------------------------------------------- the raw ceiling


def _run_ceiling(port: int, message: Path, start: float, seconds: float) -> None:
    """One smtplib connection sending one pre-built message as fast as it can, like
    SMTPTransport does (MAIL, RCPT, DATA on a reused connection); prints ``count seconds``."""
    data = message.read_bytes()
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    conn.ehlo_or_helo_if_needed()
    time.sleep(max(0.0, start - time.time()))
    t0 = time.perf_counter()
    deadline = t0 + seconds
    count = 0
    while time.perf_counter() < deadline:
        conn.ehlo_or_helo_if_needed()
        code, _ = conn.mail("bounces@newsletter.example.org")
        assert code == 250
        code, _ = conn.rcpt(f"reader{count}@{DOMAIN}")
        assert code in (250, 251)
        code, _ = conn.data(data)
        assert code == 250
        count += 1
    elapsed = time.perf_counter() - t0
    conn.quit()
    print(f"{count} {elapsed:.6f}", flush=True)


def raw_ceiling(
    *, port: int, data: bytes, connections: int, seconds: float, workdir: Path
) -> float:
    """``connections`` processes, one smtplib connection each, started together: messages/s
    summed."""
    message = workdir / "ceiling.eml"
    message.write_bytes(data)
    start = time.time() + 1.0  # every process connected and waiting before the clock starts
    script = str(Path(__file__).resolve())
    argv = [*PDEATHSIG, sys.executable, script, "ceiling", "--port", str(port)]
    argv += ["--message", str(message), "--start", repr(start), "--seconds", str(seconds)]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for _ in range(connections)
    ]
    rate = 0.0
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"ceiling process exited with {proc.returncode}")
            count, elapsed = out.split()
            rate += int(count) / float(elapsed)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="helper processes of the benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    sink = sub.add_parser("sink")
    sink.add_argument("--port", type=int, required=True)
    ceiling = sub.add_parser("ceiling")
    ceiling.add_argument("--port", type=int, required=True)
    ceiling.add_argument("--message", type=Path, required=True)
    ceiling.add_argument("--start", type=float, required=True)
    ceiling.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "sink":
        _run_sink(args.port)
    else:
        _run_ceiling(args.port, args.message, args.start, args.seconds)


if __name__ == "__main__":
    main()
