"""Delivery throughput: N subscribers on PostgreSQL + Redis, K Celery worker processes, a fast sink.

One run, measured end to end through the real stack (fresh database ``nl_bench_<hex>``, a
redis-server of its own on a spare port, Celery workers, SMTP to Postfix's ``smtp-sink``, or
the project's aiosmtpd sink in its own process when smtp-sink is not installed; the sample issue
of seeds/, ~60 KB of HTML, ~93 KB on the wire):

  * a send to 1,000 subscribers, then a send to N (default 100,000), each with a fresh database
    and fresh workers that are up and answering pings before the send starts;
  * workers: one Celery worker of prefork concurrency K (``--layout pool``, the default: it
    measured a little faster) or K workers of concurrency 1 (``--layout procs``); batch size
    ``--batch-size`` (200), K batch chains (``--parallelism``), no send rate limit;
  * rate: messages/s from ``dispatch`` to the (N-250)th message's ``sent_at`` in the ledger
    (the tail, where chains run dry one by one, is left out);
  * ceiling: K processes with one smtplib connection each sending this send's message (one
    recipient's, pre-built) to the same sink for a few seconds, summed, measured just before
    the dispatch with the workers up and idle; ratio = rate / ceiling;
  * ledger_insert_s: ``start.fill_ledger`` for N subscribers (render + freeze + guarded
    update + INSERT ... SELECT + commit); the INSERT ... SELECT alone is printed too;
  * peak RSS (VmHWM) of the worker processes (Celery parent and prefork children), max over
    them, read at the end of each send before the workers stop;
  * CPU seconds per process group during the send (from /proc), to see who had the 2 cores.

  * then the same send signed with DKIM (a fresh RSA-2048 key; then RSA-2048 + ed25519, two
    signatures a message), ``--dkim-subscribers`` (default N);
  * a send of ``--relay-subscribers`` (5,000) through a proxy that holds each reply of the sink
    ``--relay-delay-ms`` (5 ms): a relay across a network; its workers keep
    ``--relay-connections`` (8) SMTP connections each (NEWSLETTER_SMTP_CONNECTIONS);
  * Postfix's ``smtp-source`` sending messages of this send's size into the same sink over K
    connections: the machine's SMTP ceiling, which the issue compares us to.

The last line is one JSON object: subscribers, workers, rate, ceiling, ratio, ledger_insert_s,
rss_mb_1k, rss_mb_100k, rate_dkim_rsa, rate_dkim_dual, ratio_dkim, smtp_source, ratio_source,
wire_kb, cpu_ms_per_msg_worker_pg, rate_relay_5ms (and a few more).

    python bench/deliver.py                       # 100,000 subscribers, 2 workers
    python bench/deliver.py --subscribers 5000 --workers 2 --batch-size 500 --layout procs
    python bench/deliver.py --py-spy /tmp/prof    # also sample each worker child with py-spy
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench import _harness  # noqa: E402
from bench._harness import Child, DelayProxy, RedisServer, Sink, say  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.config import Settings, get_settings  # noqa: E402
from newsletter.mail.dkim_keys import generate_key  # noqa: E402
from newsletter.models import IssueStatus, RenderedIssue, utcnow  # noqa: E402
from newsletter.sending import prepare, progress, recipients  # noqa: E402
from newsletter.sending import start as start_module  # noqa: E402
from newsletter.sending.checks import qa_config  # noqa: E402
from newsletter.sending.start import fill_ledger  # noqa: E402

SMALL = 1000  # the first send, for rss_mb_1k
TAIL = 250  # the rate is taken up to the (N - TAIL)th message


@dataclass
class Phase:
    subscribers: int
    ledger_insert_s: float = 0.0
    insert_select_s: float = 0.0
    html_bytes: int = 0
    message_bytes: int = 0
    message: bytes = b""
    sent: int = 0
    rate: float = 0.0
    first_ms: float = 0.0
    total_s: float = 0.0
    final: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    rss: dict[int, tuple[str, float]] = field(default_factory=dict)
    sink_accepted: int | None = None
    ceiling: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0

    @property
    def rss_max(self) -> float:
        return max((mb for _, mb in self.rss.values()), default=0.0)


class SMTPEndpoint(Protocol):
    """Where the workers send: ``Sink``, or another bench's sink (unsubscribe_storm's)."""

    host: str
    port: int


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


def worker_children(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> list[Child]:
    """K processes of concurrency 1 (``--layout procs``) or one of concurrency K (``pool``)."""
    tag = uuid.uuid4().hex[:6]
    slots = args.workers if args.layout == "procs" else 1
    concurrency = 1 if args.layout == "procs" else args.workers
    options = ["--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "WARNING"]
    options += ["-Q", "newsletter,newsletter.send,newsletter.webhooks,newsletter.confirm"]
    options += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    return [
        Child(
            f"worker{i}-{tag}",
            celery("worker", *options, "-n", f"bench{i}-{tag}@bench"),
            env=env,
            workdir=workdir,
        )
        for i in range(slots)
    ]


def wait_ready(workers: list[Child], timeout: float = 60.0) -> float:
    """Until every worker answers a ping (its pool is up and it consumes): seconds waited."""
    from worker.celery_app import app

    names = [c.argv[c.argv.index("-n") + 1] for c in workers]
    t0 = time.monotonic()
    while True:
        replies = app.control.ping(destination=names, timeout=0.5) or []
        answered = {name for reply in replies for name in reply}
        if answered >= set(names):
            return time.monotonic() - t0
        for child in workers:
            if not child.running:
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"workers not ready after {timeout:.0f}s: {answered} of {names}")


def bench_env(
    *,
    database_url: str,
    redis_url: str,
    sink: SMTPEndpoint,
    args: argparse.Namespace,
    dkim: dict[str, str] | None = None,
    smtp_port: int | None = None,
    connections: int = 1,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_ENVIRONMENT": "test",
            "NEWSLETTER_SECRET_KEY": "bench-secret",
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_BROKER_URL": f"{redis_url}/0",
            "NEWSLETTER_REDIS_URL": f"{redis_url}/1",
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_SMTP_HOST": sink.host,
            "NEWSLETTER_SMTP_PORT": str(smtp_port or sink.port),
            "NEWSLETTER_SMTP_CONNECTIONS": str(connections),
            "NEWSLETTER_BATCH_SIZE": str(args.batch_size),
            "NEWSLETTER_SEND_PARALLELISM": str(args.parallelism or args.workers),
            "NEWSLETTER_SEND_RATE": "0",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    env.update(dkim or {})
    return env


def dkim_env(kind: str, workdir: Path) -> dict[str, str]:
    """Settings that sign with a fresh RSA-2048 key (``rsa``), or with it and an ed25519 key
    (``dual``)."""
    if kind == "none":
        return {}
    rsa = workdir / "dkim-rsa.pem"
    if not rsa.exists():
        rsa.write_bytes(generate_key(2048, "rsa"))
    env = {
        "NEWSLETTER_DKIM_SELECTOR": "bench",
        "NEWSLETTER_DKIM_DOMAIN": _harness.DOMAIN,
        "NEWSLETTER_DKIM_KEY_FILE": str(rsa),
    }
    if kind == "dual":
        ed = workdir / "dkim-ed25519.pem"
        if not ed.exists():
            ed.write_bytes(generate_key(algorithm="ed25519"))
        env["NEWSLETTER_DKIM_ED25519_SELECTOR"] = "bench-ed"
        env["NEWSLETTER_DKIM_ED25519_KEY_FILE"] = str(ed)
    return env


def use_env(env: dict[str, str]) -> Settings:
    """This process's settings and Celery app become the workers'."""
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    from worker.celery_app import configure

    configure(settings)
    return settings


def timed_start_send(settings: Settings, issue_id: int, phase: Phase) -> None:
    """``start.fill_ledger`` + commit, and its INSERT ... SELECT alone (wrapped, not edited)."""
    original = start_module._insert_ledger

    def insert_timed(*a: Any, **kw: Any) -> int:
        t0 = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            phase.insert_select_s = time.perf_counter() - t0

    start_module._insert_ledger = insert_timed
    try:
        t0 = time.perf_counter()
        with db.session_scope(settings.database_url) as s:
            start = fill_ledger(s, issue_id=issue_id, checks=qa_config(settings))
        phase.ledger_insert_s = time.perf_counter() - t0
    finally:
        start_module._insert_ledger = original
    if not start.started or start.recipients != phase.subscribers:
        raise RuntimeError(f"start_send: {start}")


def one_message(settings: Settings, issue_id: int) -> tuple[int, bytes]:
    """(HTML bytes, one recipient's message as the worker builds it) for the ceiling."""
    with db.session_scope(settings.database_url) as s:
        frozen = s.get(RenderedIssue, issue_id)
        assert frozen is not None
        html_bytes = len(frozen.html.encode())
        prep = prepare.prepared(s, issue_id, settings)
        person = recipients.recipient(
            settings, prep, subscriber_id=1, email=f"reader1@{_harness.DOMAIN}", name="Reader 1"
        )
    return html_bytes, prep.template.render(person)[1]


def py_spy(pids: list[int], seconds: float, out: Path, label: str) -> list[subprocess.Popen[bytes]]:
    """py-spy record (raw collapsed stacks, non-blocking) of each worker child."""
    binary = shutil.which("py-spy")
    if binary is None:
        say("py-spy not found (pip install py-spy): no profile")
        return []
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in pids:
        argv = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds))]
        argv += ["--rate", "200", "--nonblocking", "--idle", "--format", "raw"]
        argv += ["--output", str(out / f"{label}-{pid}.txt")]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    return procs


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()


def run_phase(
    n: int,
    *,
    args: argparse.Namespace,
    sink: Sink,
    redis: RedisServer,
    workdir: Path,
    measure_ceiling: bool,
    dkim: str = "none",
    smtp_port: int | None = None,
    connections: int = 1,
    label: str = "",
    tracking: bool = False,
) -> Phase:
    """One send of a fresh issue to ``n`` subscribers with fresh workers (``tracking``: its
    newsletter tracks clicks and opens: the links rewritten, a token per message)."""
    phase = Phase(n)
    tag = f"{n:,}{' ' + label if label else ''}"
    with ExitStack() as stack:
        t0 = time.monotonic()
        database_url = stack.enter_context(_harness.scratch_database(keep=args.keep_db))
        issue_id = _harness.prepare_issue(database_url, active=n)
        if tracking:
            with db.session_scope(database_url) as s:
                s.execute(text("UPDATE newsletter SET track_clicks = true, track_opens = true"))
        say(f"[{tag}] database ready in {time.monotonic() - t0:.1f}s")
        env = bench_env(
            database_url=database_url,
            redis_url=redis.url,
            sink=sink,
            args=args,
            dkim=dkim_env(dkim, workdir),
            smtp_port=smtp_port,
            connections=connections,
        )
        settings = use_env(env)

        workers = worker_children(args, env, workdir)
        for child in workers:
            stack.callback(child.stop)
            child.start()
        waited = wait_ready(workers)
        say(f"[{tag}] {len(workers)} worker process(es) ready in {waited:.1f}s ({args.layout})")

        timed_start_send(settings, issue_id, phase)
        phase.html_bytes, data = one_message(settings, issue_id)
        phase.message, phase.message_bytes = data, len(data)
        say(
            f"[{tag}] ledger: start_send {phase.ledger_insert_s:.3f}s "
            f"(INSERT ... SELECT alone {phase.insert_select_s:.3f}s); "
            f"HTML {phase.html_bytes:,} bytes, message {phase.message_bytes:,} bytes"
        )

        if measure_ceiling:
            # the raw ceiling: same sink, this send's message, workers up but idle
            phase.ceiling = _harness.raw_ceiling(
                port=sink.port,
                data=data,
                connections=args.workers,
                seconds=args.ceiling_seconds,
                workdir=workdir,
            )
            say(
                f"[{tag}] raw ceiling: {phase.ceiling:,.0f} messages/s ({args.workers} smtplib "
                f"connection(s), one {len(data):,}-byte message, {args.ceiling_seconds:g}s)"
            )

        from worker.tasks import dispatch, tick

        timeout = max(120.0, n / 200)
        accepted_before = sink.settled() or 0
        t_start = utcnow()
        m0 = time.monotonic()
        cpu_before, machine_before = _harness.cpu_ticks(), _harness.machine_ticks()
        dispatch.delay(issue_id)
        profilers: list[subprocess.Popen[bytes]] = []
        if args.py_spy and n == args.subscribers:
            children = [p for w in workers for p in _harness.descendants(w.pid) if p != w.pid]
            profilers = py_spy(children, min(600.0, n / 800), args.py_spy, f"n{n}")
            for proc in profilers:
                stack.callback(_kill_if_running, proc)
        last_done, last_change, last_line, ticks = -1, time.monotonic(), 0.0, 0
        while True:
            time.sleep(0.25)
            with db.session_scope(database_url) as s:
                state = progress.progress(s, issue_id=issue_id)
            now = time.monotonic()
            if state.done != last_done:
                last_done, last_change = state.done, now
            elif state.status == IssueStatus.sending and now - last_change > 3:
                tick.delay()  # what beat would do: restart an idle issue, finish a done one
                ticks, last_change = ticks + 1, now
            if state.finished or now - m0 > timeout or now - last_line >= 5:
                last_line = now
                say(f"[{tag}] {now - m0:6.1f}s {state.status}: {state.done:,}/{state.total:,}")
            if state.finished:
                break
            if state.status != IssueStatus.sending:  # paused (the circuit breaker?): say why
                raise RuntimeError(f"issue left sending: {state}")
            if now - m0 > timeout:
                raise RuntimeError(f"send not finished after {timeout:.0f}s: {state}")
            for child in workers:
                if not child.running:
                    raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        phase.total_s = time.monotonic() - m0
        groups = {
            "workers": {p for w in workers for p in _harness.descendants(w.pid)},
            "sink": set(_harness.descendants(sink.child.pid)),
            "redis": {redis.pid},
            "bench": {os.getpid()},
        }
        phase.cpu = _harness.cpu_seconds(cpu_before, _harness.cpu_ticks(), groups)
        phase.cpu["postgres"] = phase.cpu.pop("other:postgres", 0.0)  # the one we use
        busy, idle = (b - a for a, b in zip(machine_before, _harness.machine_ticks(), strict=True))
        phase.machine_busy = busy / max(busy + idle, 1)
        phase.final, phase.counts = str(state.status), dict(state.counts)
        for proc in profilers:
            proc.wait(60)
        # peak RSS of every worker process, before they stop
        for child in workers:
            for pid in _harness.descendants(child.pid):
                mb = _harness.peak_rss_mb(pid)
                if mb is not None and "celery" in _harness.process_name(pid):
                    phase.rss[pid] = (_harness.process_name(pid), mb)
        for child in workers:
            child.stop()
        accepted = sink.settled()
        phase.sink_accepted = None if accepted is None else accepted - accepted_before

        with db.session_scope(database_url) as s:
            phase.sent = int(
                s.execute(
                    text("SELECT count(*) FROM delivery WHERE issue_id = :i AND status = 'sent'"),
                    {"i": issue_id},
                ).scalar_one()
            )
            k = max(1, phase.sent - TAIL) if phase.sent > TAIL else phase.sent
            first, kth = s.execute(
                text(
                    "SELECT (SELECT min(sent_at) FROM delivery WHERE issue_id = :i), "
                    "(SELECT sent_at FROM delivery WHERE issue_id = :i AND status = 'sent' "
                    "ORDER BY sent_at OFFSET :k LIMIT 1)"
                ),
                {"i": issue_id, "k": k - 1},
            ).one()
        phase.first_ms = (first - t_start).total_seconds() * 1000
        phase.rate = k / max((kth - t_start).total_seconds(), 1e-9)
        say(
            f"[{tag}] {phase.final}: {phase.counts}; sink accepted {phase.sink_accepted}; "
            f"first message {phase.first_ms:.0f} ms after dispatch; "
            f"{phase.rate:,.0f} messages/s to the {k:,}th; all done in {phase.total_s:.1f}s"
            + (f" ({ticks} tick(s) sent)" if ticks else "")
        )
        available = phase.total_s * (os.cpu_count() or 1)
        shares = sorted(phase.cpu.items(), key=lambda kv: -kv[1])
        say(
            f"[{tag}] CPU during the send ({phase.total_s:.1f}s x {os.cpu_count()} CPUs = "
            f"{available:.1f} CPU-s; machine busy {phase.machine_busy:.0%}): "
            + ", ".join(f"{g} {sec:.1f}s ({sec / available:.0%})" for g, sec in shares[:8])
        )
        for pid, (name, mb) in sorted(phase.rss.items()):
            say(f"[{tag}]   peak RSS {mb:6.1f} MB  pid {pid}  {name}")
        if args.py_spy and n == args.subscribers:
            say(f"[{tag}] py-spy stacks in {args.py_spy}")
        if phase.sent != n:
            say(f"[{tag}] WARNING: {phase.sent} of {n} rows sent")
    return phase


def run(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="nl-bench-"))
        stack.callback(lambda: shutil.rmtree(workdir, ignore_errors=True))
        sink = Sink(workdir=workdir, kind=args.sink)
        stack.callback(sink.stop)
        sink.start()
        say(f"sink: {sink.kind} on {sink.host}:{sink.port}")
        redis_server = RedisServer(workdir=workdir)
        stack.callback(redis_server.stop)
        redis_server.start()
        say(f"broker: private redis-server on port {redis_server.port}")
        say(
            f"{args.workers} worker(s), layout {args.layout}, batch {args.batch_size}, "
            f"parallelism {args.parallelism or args.workers}, send rate unlimited; "
            f"{os.cpu_count()} CPUs"
        )

        small = run_phase(
            min(SMALL, args.subscribers),
            args=args,
            sink=sink,
            redis=redis_server,
            workdir=workdir,
            measure_ceiling=args.subscribers <= SMALL,
            connections=args.connections,
        )
        big = small
        if args.subscribers > SMALL:
            big = run_phase(
                args.subscribers,
                args=args,
                sink=sink,
                redis=redis_server,
                workdir=workdir,
                measure_ceiling=True,
                connections=args.connections,
            )
        signed_n = args.subscribers if args.dkim_subscribers is None else args.dkim_subscribers
        rsa = dual = relay = None
        if signed_n:
            rsa = run_phase(
                signed_n,
                args=args,
                sink=sink,
                redis=redis_server,
                workdir=workdir,
                measure_ceiling=False,
                connections=args.connections,
                dkim="rsa",
                label="dkim rsa",
            )
            dual = run_phase(
                signed_n,
                args=args,
                sink=sink,
                redis=redis_server,
                workdir=workdir,
                measure_ceiling=False,
                connections=args.connections,
                dkim="dual",
                label="dkim dual",
            )
        same_n = big if signed_n == big.subscribers else None
        if signed_n and same_n is None:  # the unsigned rate at the signed phases' size
            same_n = run_phase(
                signed_n,
                args=args,
                sink=sink,
                redis=redis_server,
                workdir=workdir,
                measure_ceiling=False,
                connections=args.connections,
                label="unsigned",
            )
        if args.relay_delay_ms > 0 and args.relay_subscribers:
            proxy = DelayProxy(
                target_port=sink.port, delay_ms=args.relay_delay_ms, workdir=workdir
            ).start()
            stack.callback(proxy.stop)
            relay = run_phase(
                args.relay_subscribers,
                args=args,
                sink=sink,
                redis=redis_server,
                workdir=workdir,
                measure_ceiling=False,
                smtp_port=proxy.port,
                connections=args.relay_connections,
                label=f"relay +{args.relay_delay_ms:g} ms, {args.relay_connections} conn.",
            )
        sessions = args.workers * args.connections  # as many connections as the send had
        source = _harness.smtp_source_rate(
            port=sink.port,
            size=big.message_bytes,
            sessions=sessions,
            messages=args.source_messages,
        )
        say(
            f"smtp-source: {source or 0:,.0f} messages/s ({sessions} connection(s), "
            f"{big.message_bytes:,}-byte messages, {args.source_messages:,} of them)"
        )
    cpu = {g: 1000 * sec / max(big.sent, 1) for g, sec in big.cpu.items()}
    rate_signed_base = same_n.rate if same_n is not None else big.rate
    result = {
        "subscribers": args.subscribers,
        "workers": args.workers,
        "rate": round(big.rate),
        "ceiling": round(big.ceiling),
        "ratio": round(big.rate / big.ceiling, 2) if big.ceiling else None,
        "ledger_insert_s": round(big.ledger_insert_s, 3),
        "rss_mb_1k": round(small.rss_max, 1),
        "rss_mb_100k": round(big.rss_max, 1),
        "insert_select_s": round(big.insert_select_s, 3),
        "cpu_ms_per_msg": {
            g: round(1000 * sec / max(big.sent, 1), 3)
            for g, sec in sorted(big.cpu.items(), key=lambda kv: -kv[1])
            if g in ("workers", "sink", "postgres", "redis", "bench")
        },
        "rate_1k": round(small.rate),
        "html_kb": round(big.html_bytes / 1024, 1),
        "message_kb": round(big.message_bytes / 1024, 1),
        "batch_size": args.batch_size,
        "parallelism": args.parallelism or args.workers,
        "layout": args.layout,
        "sink": sink.kind.split()[0],
        "machine_busy": round(big.machine_busy, 2),
        "final_status": big.final,
        "sent": big.sent,
        "rate_dkim_rsa": round(rsa.rate) if rsa else None,
        "rate_dkim_dual": round(dual.rate) if dual else None,
        "dkim_subscribers": signed_n or None,
        "rate_unsigned_at_dkim_size": round(rate_signed_base) if signed_n else None,
        "ratio_dkim": round(rsa.rate / rate_signed_base, 2) if rsa and rate_signed_base else None,
        "smtp_source": round(source) if source else None,
        "ratio_source": round(big.rate / source, 2) if source else None,
        "wire_kb": round(big.message_bytes / 1024, 1),
        "cpu_ms_per_msg_worker_pg": round(cpu.get("workers", 0.0) + cpu.get("postgres", 0.0), 3),
        "rate_relay_5ms": round(relay.rate) if relay else None,
        "relay_delay_ms": args.relay_delay_ms if relay else None,
    }
    say("")
    say(f"sink:            {sink.kind}")
    say(f"subscribers:     {args.subscribers:,} ({big.final}, {big.sent:,} sent)")
    say(f"rate:            {result['rate']:,} messages/s (target >= 1,500)")
    say(f"raw ceiling:     {result['ceiling']:,} messages/s")
    say(f"ratio:           {result['ratio']} (target >= 0.6)")
    say(
        f"ledger insert:   {result['ledger_insert_s']} s start_send, "
        f"{result['insert_select_s']} s INSERT ... SELECT (target < 2 s)"
    )
    say(
        f"peak worker RSS: {result['rss_mb_1k']} MB at {small.subscribers:,}, "
        f"{result['rss_mb_100k']} MB at {big.subscribers:,} (target < 150 MB, flat)"
    )
    say(
        f"DKIM:            RSA-2048 {result['rate_dkim_rsa']} msg/s, dual "
        f"{result['rate_dkim_dual']} msg/s, unsigned {result['rate_unsigned_at_dkim_size']} "
        f"at {signed_n:,}: ratio {result['ratio_dkim']} (target >= 0.7)"
    )
    say(
        f"smtp-source:     {result['smtp_source']} msg/s; ours / smtp-source "
        f"{result['ratio_source']} (target >= 0.6)"
    )
    say(f"wire size:       {result['wire_kb']} KB per message (target <= 72)")
    say(
        f"CPU per message: {result['cpu_ms_per_msg_worker_pg']} ms worker + PostgreSQL "
        "(target <= 0.5)"
    )
    say(f"relay +{args.relay_delay_ms:g} ms:   {result['rate_relay_5ms']} msg/s (target >= 1,000)")
    say(json.dumps(result))
    return result


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="K: prefork processes, ceiling connections"
    )
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=0, help="batch chains; 0 = K")
    parser.add_argument(
        "--layout",
        choices=["procs", "pool"],
        default="pool",
        help="1 worker of concurrency K (measured a little faster), or K of concurrency 1",
    )
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--py-spy", type=Path, default=None, help="folder for py-spy stacks")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--dkim-subscribers",
        type=int,
        default=None,
        help="size of the signed sends (RSA-2048, then RSA + ed25519); default: --subscribers; "
        "0: none",
    )
    parser.add_argument(
        "--relay-delay-ms", type=float, default=5.0, help="each sink reply held this long"
    )
    parser.add_argument(
        "--relay-subscribers", type=int, default=5000, help="size of the delayed send; 0: none"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="NEWSLETTER_SMTP_CONNECTIONS of the workers of the undelayed sends (unsigned, "
        "signed); into the local sink on the 2-core machine (2026-11-29, 20k unsigned, medians "
        "of 5, 5, 2, 2 runs) 1 gave 1,376 msg/s, 2 gave 1,390, 3 and 4 no more, each with more "
        "CPU a message",
    )
    parser.add_argument("--source-messages", type=int, default=20000, help="for smtp-source")
    parser.add_argument(
        "--relay-connections",
        type=int,
        default=16,
        help="NEWSLETTER_SMTP_CONNECTIONS of the delayed send's workers (the others: 1); on the "
        "2-core machine (2026-11-29) 8 gave 941-973 msg/s, 12 gave 1,089-1,113, 16 gave 1,178",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = main_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
