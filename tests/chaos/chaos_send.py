"""Chaos test of the delivery ledger: everyone gets the issue at least once, duplicates bounded.

An issue goes to N subscribers (default 2,000; ``--subscribers 10000`` for the large run) through
2 Celery worker processes (``--workers``) and a beat process, on a redis-server of its own (AOF
on, a spare port: the machine's shared Redis is never touched) and a fresh PostgreSQL database,
into an SMTP sink that answers 451 to about 5% of messages and hangs up on about 1%. While the
issue is sending, a worker is SIGKILLed 3 times (its whole process group, then restarted) and
Redis is restarted once. Afterwards (and, for the issue counters, at every poll):

* every subscriber active at the start received at least one copy (``missed == 0``), and nobody
  else received one;
* copies beyond the first (``duplicates``) are no more than the kills, and every one carries the
  same Message-ID as its recipient's first copy;
* every first copy's Message-ID is the one the ledger recorded for that recipient;
* the issue ends ``sent``;
* the issue counters (``sending.counters``) equal a ``GROUP BY`` of the ledger at every poll
  (killed workers' leases expire and are requeued meanwhile) and at the end.

It prints progress lines, a summary, and as its last line one JSON object with the keys
``subscribers``, ``received_unique``, ``missed``, ``duplicates``, ``kills``,
``duplicates_same_message_id`` and ``final_status`` (and a few more). Exit code 0 when every check
holds, 1 otherwise.

    python tests/chaos/chaos_send.py                       # CI size: 2,000 subscribers
    python tests/chaos/chaos_send.py --subscribers 10000   # the large run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script, the project's root is not on the path
    sys.path.insert(0, str(ROOT))

from newsletter import db  # noqa: E402
from newsletter.config import Settings, get_settings  # noqa: E402
from newsletter.models import IssueStatus  # noqa: E402
from newsletter.sending import counters, ledger, progress  # noqa: E402
from newsletter.sending.checks import qa_config  # noqa: E402
from newsletter.sending.start import fill_ledger  # noqa: E402
from newsletter.transports.sink import FaultPlan, Received, SMTPSink, free_port  # noqa: E402
from tests.support import scratch  # noqa: E402
from tests.support.scratch import Child, RedisServer, scratch_database  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DOMAIN = "chaos.example.org"
# (share of the ledger sent, what to do): kills alternate between the two workers
PLAN: list[tuple[float, str]] = [
    (0.15, "kill worker 0"),
    (0.35, "kill worker 1"),
    (0.45, "restart redis"),
    (0.55, "kill worker 0"),
]


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- child processes


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


def worker_argv(slot: int) -> list[str]:
    return celery(
        "worker",
        "--pool", "prefork",
        "--concurrency", "1",
        "--loglevel", "WARNING",
        "-Q", "newsletter,newsletter.send,newsletter.webhooks",
        "-n", f"chaos{slot}-{uuid.uuid4().hex[:6]}@%h",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    )  # fmt: skip


# ---------------------------------------------------------------- the SMTP sink


class CountingSink(SMTPSink):
    """Keeps only (recipient -> Message-IDs of its copies), not the messages themselves."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.copies: dict[str, list[str]] = defaultdict(list)
        self.accepted = 0
        self._counting = threading.Lock()
        self._headers = BytesHeaderParser(policy=default_policy)

    def store(self, received: Received) -> None:
        head = received.data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        message_id = str(self._headers.parsebytes(head).get("Message-ID", "")).strip()
        with self._counting:
            self.accepted += 1
            for rcpt in received.rcpt_tos:
                self.copies[rcpt.lower()].append(message_id)


# ---------------------------------------------------------------- the database


def prepare_issue(url: str, *, active: int, unsubscribed: int) -> int:
    return scratch.prepare_issue(
        url, active=active, unsubscribed=unsubscribed, domain=DOMAIN, source="chaos"
    )


def readers(url: str, issue_id: int, status: str) -> set[str]:
    with db.session_scope(url) as s:
        rows = s.execute(
            text(
                "SELECT lower(sub.email) FROM subscriber sub "
                "JOIN subscription s ON s.subscriber_id = sub.id "
                "JOIN issue i ON i.newsletter_id = s.newsletter_id "
                "WHERE i.id = :issue AND s.status = :status"
            ),
            {"issue": issue_id, "status": status},
        ).all()
    return {r[0] for r in rows}


def ledger_rows(url: str, issue_id: int) -> dict[str, tuple[str, str | None]]:
    """email -> (delivery status, recorded Message-ID)."""
    with db.session_scope(url) as s:
        rows = s.execute(
            text(
                "SELECT lower(sub.email), d.status, d.message_id FROM delivery d "
                "JOIN subscriber sub ON sub.id = d.subscriber_id WHERE d.issue_id = :issue"
            ),
            {"issue": issue_id},
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


# ---------------------------------------------------------------- the run


@dataclass
class Outcome:
    final: progress.Progress
    kills: int
    redis_restarts: int
    unexpected_exits: list[str]
    seconds: float
    #: polls whose issue counters differed from a GROUP BY of the ledger (one snapshot each)
    counter_drifts: list[tuple[dict[str, int], dict[str, int]]]


def chaos_env(
    base: dict[str, str], *, database_url: str, redis_url: str, sink: SMTPSink, args: Any
) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env.update(
        {
            "NEWSLETTER_ENVIRONMENT": "test",
            "NEWSLETTER_SECRET_KEY": "chaos-secret",
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_BROKER_URL": f"{redis_url}/0",
            "NEWSLETTER_REDIS_URL": f"{redis_url}/1",
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_SMTP_HOST": sink.host,
            "NEWSLETTER_SMTP_PORT": str(sink.port),
            # a lease must outlast one message (settings refuse lease <= 2 x timeout)
            "NEWSLETTER_SMTP_TIMEOUT": f"{args.lease_seconds / 3:.2f}",
            "NEWSLETTER_BATCH_SIZE": str(args.batch_size),
            "NEWSLETTER_LEASE_SECONDS": str(args.lease_seconds),
            "NEWSLETTER_RETRY_BASE_SECONDS": "0.2",
            "NEWSLETTER_SEND_PARALLELISM": "4",
            "NEWSLETTER_SEND_RATE": str(args.send_rate),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH")) if p),
        }
    )
    return env


def drive(
    settings: Settings,
    issue_id: int,
    *,
    workers: list[Child],
    beat: Child,
    redis_server: RedisServer,
    sink: CountingSink,
    timeout: float,
) -> Outcome:
    """Poll the ledger; kill and restart at the planned shares; stop when the issue leaves
    ``sending`` or the time is up."""
    plan = list(PLAN)
    kills = restarts = 0
    unexpected: list[str] = []
    drifts: list[tuple[dict[str, int], dict[str, int]]] = []
    started = last_line = time.monotonic()
    while True:
        with db.session_scope(settings.database_url) as s:
            state = progress.progress(s, issue_id=issue_id)
            kept, scanned = counters.check(s, issue_id)
        if kept != scanned:
            drifts.append((kept, scanned))
        elapsed = time.monotonic() - started
        share = state.counts.get("sent", 0) / max(state.total, 1)
        sending = state.status == IssueStatus.sending
        while plan and sending and share >= plan[0][0]:
            _, action = plan.pop(0)
            if action == "restart redis":
                before, after = redis_server.restart()
                restarts += 1
                say(
                    f"[{elapsed:6.1f}s] {share:4.0%} sent: restarted redis "
                    f"({before} keys before, {after} after)"
                )
            else:
                slot = int(action.rsplit(" ", 1)[1])
                workers[slot].kill()
                kills += 1
                workers[slot].start()
                say(f"[{elapsed:6.1f}s] {share:4.0%} sent: SIGKILLed worker {slot}, restarted it")
        for child in [*workers, beat]:
            if not child.running:  # not one we killed: it died by itself; note it, keep going
                assert child.proc is not None
                note = f"{child.name} exited by itself with {child.proc.returncode}"
                unexpected.append(note)
                say(f"[{elapsed:6.1f}s] {note}; restarting it\n{child.tail(10)}")
                child.start()
        if not sending or elapsed > timeout or time.monotonic() - last_line >= 2:
            last_line = time.monotonic()
            counts = " ".join(f"{k}={v}" for k, v in sorted(state.counts.items()))
            say(
                f"[{elapsed:6.1f}s] issue {state.status}: {counts}; sink accepted {sink.accepted}"
                f" (kills {kills}, redis restarts {restarts})"
            )
        if not sending or elapsed > timeout:
            return Outcome(state, kills, restarts, unexpected, elapsed, drifts)
        time.sleep(0.2)


def judge(
    *,
    active: set[str],
    gone: set[str],
    sink: CountingSink,
    recorded: dict[str, tuple[str, str | None]],
    outcome: Outcome,
    final_counts: tuple[dict[str, int], dict[str, int]],
) -> tuple[dict[str, Any], list[tuple[str, bool]]]:
    copies = dict(sink.copies)
    missed = active - copies.keys()
    duplicates = sum(len(ids) - 1 for ids in copies.values())
    same_id = all(all(m == ids[0] for m in ids[1:]) for ids in copies.values())
    unexpected = copies.keys() - active
    mismatched = [
        email
        for email, ids in copies.items()
        if recorded.get(email, ("", None)) != (ledger.DeliveryStatus.sent, ids[0])
    ]
    result: dict[str, Any] = {
        "subscribers": len(active),
        "received_unique": len(copies),
        "missed": len(missed),
        "duplicates": duplicates,
        "kills": outcome.kills,
        "duplicates_same_message_id": same_id,
        "final_status": str(outcome.final.status),
        "redis_restarts": outcome.redis_restarts,
        "unsubscribed_mailed": len(unexpected & gone),
        "unexpected_recipients": len(unexpected),
        "ledger_mismatches": len(mismatched),
        "counter_drifts": len(outcome.counter_drifts),
        "ledger": dict(sorted(outcome.final.counts.items())),
        "messages_accepted": sink.accepted,
        "unexpected_exits": len(outcome.unexpected_exits),
        "seconds": round(outcome.seconds, 1),
    }
    planned_kills = sum(1 for _, action in PLAN if action.startswith("kill"))
    checks = [
        (f"{planned_kills} worker kills and 1 Redis restart happened during the send",
         outcome.kills == planned_kills and outcome.redis_restarts == 1),
        ("every subscriber active at the start received a copy", not missed),
        ("nobody else received one", not unexpected),
        (f"duplicates ({duplicates}) <= kills ({outcome.kills})", duplicates <= outcome.kills),
        ("every duplicate carries its first copy's Message-ID", same_id),
        ("every first copy's Message-ID is the ledger's, row sent", not mismatched),
        ("the issue counters equalled the ledger at every poll and at the end",
         not outcome.counter_drifts and final_counts[0] == final_counts[1]),
        (f"the issue ended sent (it is {outcome.final.status})",
         outcome.final.status == IssueStatus.sent),
    ]  # fmt: skip
    if missed:
        say(f"missed (first 10): {sorted(missed)[:10]}")
        say(f"their ledger rows: {[recorded.get(e) for e in sorted(missed)[:10]]}")
    if duplicates:
        extra = [(e, ids) for e, ids in copies.items() if len(ids) > 1]
        say(f"recipients with more than one copy ({len(extra)}; first 10): {extra[:10]}")
    if outcome.counter_drifts or final_counts[0] != final_counts[1]:
        say(f"counters (first drifts) vs ledger: {outcome.counter_drifts[:5]}; end {final_counts}")
    if mismatched:
        say(f"ledger mismatches (first 10): {[(e, recorded.get(e)) for e in mismatched[:10]]}")
    return result, checks


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    timeout = args.timeout or max(480.0, args.subscribers * 0.06)
    say(
        f"chaos send: {args.subscribers} subscribers, {args.workers} workers, "
        f"batch {args.batch_size}, lease {args.lease_seconds}s, "
        f"send rate {args.send_rate or 'unlimited'}, "
        f"fault seed {seed}, timeout {timeout:.0f}s"
    )
    children: list[Child] = []
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="nl-chaos-"))
        stack.callback(
            lambda: shutil.rmtree(workdir, ignore_errors=True) if not args.keep else None
        )
        if args.keep:
            say(f"logs kept in {workdir}")
        database_url = stack.enter_context(
            scratch_database(args.postgres_url, prefix="nl_chaos", say=say)
        )
        t0 = time.monotonic()
        issue_id = prepare_issue(
            database_url, active=args.subscribers, unsubscribed=max(5, args.subscribers // 100)
        )
        active = readers(database_url, issue_id, "active")
        gone = readers(database_url, issue_id, "unsubscribed")
        say(f"database ready in {time.monotonic() - t0:.1f}s: {len(active)} active, "
            f"{len(gone)} unsubscribed")  # fmt: skip

        faults = FaultPlan(temp_fail_ratio=0.05, drop_ratio=0.01, seed=seed)
        sink = CountingSink(faults=faults)
        sink.start()
        stack.callback(sink.stop)

        redis_server = RedisServer(
            port=free_port(), aof=True, env=dict(os.environ), workdir=workdir
        )
        children.append(redis_server)
        stack.callback(redis_server.stop)
        redis_server.start()

        env = chaos_env(
            dict(os.environ),
            database_url=database_url,
            redis_url=redis_server.url,
            sink=sink,
            args=args,
        )
        os.environ.clear()
        os.environ.update(env)  # this process's settings and Celery app are the workers'
        get_settings.cache_clear()
        settings = get_settings()

        workers = [
            Child(f"worker{i}", worker_argv(i), env=env, workdir=workdir)
            for i in range(args.workers)
        ]
        beat = Child(
            "beat",
            celery("beat", "--loglevel", "WARNING", "-s", str(workdir / "beat-schedule")),
            env=env,
            workdir=workdir,
        )
        for child in [*workers, beat]:
            children.append(child)
            stack.callback(child.stop)
            child.start()

        from worker.celery_app import configure
        from worker.tasks import dispatch

        configure(settings)
        with db.session_scope(database_url) as s:
            start = fill_ledger(s, issue_id=issue_id, checks=qa_config(settings))
        say(f"issue {issue_id} started: {start.recipients} recipients, {start.skipped} skipped")
        dispatch.delay(issue_id)

        outcome = drive(
            settings,
            issue_id,
            workers=workers,
            beat=beat,
            redis_server=redis_server,
            sink=sink,
            timeout=timeout,
        )
        time.sleep(args.grace)  # a stray late copy (an overrun lease) would still arrive
        for child in [*workers, beat]:
            child.stop()
        sink.stop()
        recorded = ledger_rows(database_url, issue_id)
        with db.session_scope(database_url) as s:
            final_counts = counters.check(s, issue_id)
        result, checks = judge(
            active=active,
            gone=gone,
            sink=sink,
            recorded=recorded,
            outcome=outcome,
            final_counts=final_counts,
        )
        ok = all(passed for _, passed in checks)
        result["ok"] = ok
        result["seed"] = seed

        say("")
        say(f"subscribers active at start: {result['subscribers']}")
        say(f"received (distinct):         {result['received_unique']}")
        say(f"missed:                      {result['missed']}")
        say(f"duplicates:                  {result['duplicates']}")
        say(f"worker kills:                {result['kills']}")
        say(f"redis restarts:              {result['redis_restarts']}")
        say(f"messages accepted by sink:   {result['messages_accepted']}")
        say(f"ledger:                      {result['ledger']}")
        say(f"final status:                {result['final_status']}")
        say(f"send time:                   {result['seconds']}s")
        for note in outcome.unexpected_exits:
            say(f"note: {note}")
        for description, passed in checks:
            say(f"{'PASS' if passed else 'FAIL'} {description}")
        if not ok:
            for child in children:
                print(f"--- last lines of {child.log_path}", file=sys.stderr)
                print(child.tail(), file=sys.stderr)
        say(json.dumps(result))
        return 0 if ok else 1
    return 1  # pragma: no cover - ExitStack does not swallow exceptions


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000, help="active subscribers")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (>= 2)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lease-seconds", type=int, default=5)
    parser.add_argument("--send-rate", type=float, default=0.0, help="messages/s; 0 = no limit")
    parser.add_argument("--seed", type=int, default=None, help="the SMTP sink's fault seed")
    parser.add_argument("--timeout", type=float, default=None, help="seconds for the send")
    parser.add_argument("--grace", type=float, default=1.0, help="wait for late copies")
    parser.add_argument("--postgres-url", default=PG_ADMIN_URL, help="an existing database")
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers: the kills need at least 2 workers")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args)
    except Exception as exc:  # still end with the JSON line the callers parse
        import traceback

        traceback.print_exc()
        say(json.dumps({"error": f"{type(exc).__name__}: {exc}", "ok": False}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
