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
import contextlib
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from newsletter.transports.sink import free_port  # noqa: E402
from tests.support import scratch  # noqa: E402
from tests.support.scratch import PDEATHSIG, Child, RedisServer  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DOMAIN = "bench.example.org"
SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/local/sbin/smtp-sink")


def say(message: str) -> None:
    print(message, flush=True)


def scratch_database(*, keep: bool = False) -> contextlib.AbstractContextManager[str]:
    return scratch.scratch_database(PG_ADMIN_URL, prefix="nl_bench", keep=keep, say=say)


def prepare_issue(url: str, *, active: int, unsubscribed: int = 0) -> int:
    return scratch.prepare_issue(
        url, active=active, unsubscribed=unsubscribed, domain=DOMAIN, source="bench"
    )


__all__ = ["Child", "RedisServer", "free_port"]  # re-exported for deliver.py


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


def find_smtp_sink() -> str | None:
    found = shutil.which("smtp-sink")
    if found:
        return found
    return next((p for p in SMTP_SINK_PATHS if os.access(p, os.X_OK)), None)


def _answering(child: Child, host: str, port: int, what: str) -> None:
    """Start ``child`` and wait until an SMTP client gets through on ``port`` (20 s at most)."""
    child.start()
    deadline = time.monotonic() + 20
    while True:
        with suppress(OSError):
            smtplib.SMTP(host, port, timeout=2).quit()
            return
        if not child.running or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{child.tail()}")
        time.sleep(0.05)


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
            self.kind = "aiosmtpd (newsletter.transports.sink.SMTPSink, own process)"
            argv = [sys.executable, str(Path(__file__).resolve()), "sink", "--port", str(self.port)]
        self.child = Child("sink", argv, env=None, workdir=workdir)

    def start(self) -> Sink:
        _answering(self.child, self.host, self.port, "SMTP sink")
        return self

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
    """The aiosmtpd fallback: newsletter.transports.sink.SMTPSink that counts instead of storing."""
    from newsletter.transports.sink import Received, SMTPSink

    class CountingSink(SMTPSink):
        accepted = 0
        _count_lock = threading.Lock()

        def store(self, received: Received) -> None:
            with self._count_lock:
                self.accepted += 1

    sink = CountingSink(port=port)  # typed as such: start() returns the base class
    sink.start()
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


def find_smtp_source() -> str | None:
    return shutil.which("smtp-source") or next(
        (p for p in ("/usr/sbin/smtp-source", "/usr/lib/postfix/smtp-source") if Path(p).exists()),
        None,
    )


def smtp_source_rate(*, port: int, size: int, sessions: int, messages: int) -> float | None:
    """Postfix's ``smtp-source`` (C) sending ``messages`` of ``size`` payload bytes over
    ``sessions`` parallel connections, each kept open (-d), into the sink: messages/s, the
    machine's SMTP ceiling for this message size. None when smtp-source is not installed."""
    binary = find_smtp_source()
    if binary is None:
        return None
    argv = [
        binary,
        "-d",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-l",
        str(size),
        "-f",
        f"bench@{DOMAIN}",
        "-t",
        f"reader@{DOMAIN}",
        f"127.0.0.1:{port}",
    ]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return messages / (time.perf_counter() - t0)


class DelayProxy:
    """A TCP proxy in a process of its own in front of the sink that holds every reply of the
    server ``delay_ms`` before passing it on: a relay across a network, where each round trip
    costs that much (pipelined commands share one wait; one connection carries about
    1000 / (round trips x delay) messages a second)."""

    def __init__(self, *, target_port: int, delay_ms: float, workdir: Path) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "proxy",
            "--port",
            str(self.port),
            "--target",
            str(target_port),
            "--delay-ms",
            str(delay_ms),
        ]
        self.child = Child("delay-proxy", argv, env=None, workdir=workdir)

    def start(self) -> DelayProxy:
        _answering(self.child, self.host, self.port, "delay proxy")
        return self

    def stop(self) -> None:
        self.child.stop()


def _run_proxy(port: int, target: int, delay_ms: float) -> None:
    import asyncio

    delay = delay_ms / 1000

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, late: bool) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((loop.time() + (delay if late else 0.0), chunk))
        except ConnectionError:
            pass
        queue.put_nowait((loop.time(), b""))
        with suppress(ConnectionError):
            await sender

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(client_r, server_w, False), pump(server_r, client_w, True))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1000)
        async with server:
            await server.serve_forever()

    try:  # libuv's loop: the proxy's own CPU (on the machine under test) about halved
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="helper processes of the benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    sink = sub.add_parser("sink")
    sink.add_argument("--port", type=int, required=True)
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--port", type=int, required=True)
    proxy.add_argument("--target", type=int, required=True)
    proxy.add_argument("--delay-ms", type=float, required=True)
    ceiling = sub.add_parser("ceiling")
    ceiling.add_argument("--port", type=int, required=True)
    ceiling.add_argument("--message", type=Path, required=True)
    ceiling.add_argument("--start", type=float, required=True)
    ceiling.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "sink":
        _run_sink(args.port)
    elif args.command == "proxy":
        _run_proxy(args.port, args.target, args.delay_ms)
    else:
        _run_ceiling(args.port, args.message, args.start, args.seconds)


if __name__ == "__main__":
    main()
