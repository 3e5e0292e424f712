"""Chaos test of the delivery ledger: everyone gets the issue at least once, duplicates bounded.

An issue goes to N subscribers (default 2,000; ``--subscribers 10000`` for the large run) through
2 Celery worker processes (``--workers``) and a beat process, on a redis-server of its own (AOF
on, a spare port: the machine's shared Redis is never touched) and a PostgreSQL cluster of its
own (``tests/support/pg_cluster.py``: initdb in a temporary folder, a spare port, fsync on),
into an SMTP sink that answers 451 to about 5% of messages and hangs up on about 1%. While the
issue is sending (at set shares of the ledger sent):

* a worker is SIGKILLed 3 times (its whole process group, then restarted);
* PostgreSQL is restarted (``pg_ctl restart -m fast``): the workers reconnect and go on;
* the relay goes away (the sink's port closed) for ``--relay-outage`` seconds (4 at CI size,
  60 from 10,000 subscribers): the circuit breaker pauses the send and its half-open probe
  resumes it by itself (the probe's cool-down lowered to ``--probe-seconds``);
* the broker (Redis) is stopped, ``--signups`` people sign up through the real public sign-up
  (the FastAPI app in this process), each answered 2xx, and Redis is started again: the beat's
  outbox relay delivers every confirmation email.

Afterwards (and, for the issue counters, at every poll):

* every subscriber active at the start received at least one copy (``missed == 0``), and nobody
  else received one;
* copies beyond the first (``duplicates``) are no more than the kills and PostgreSQL restarts,
  and every one carries the same Message-ID as its recipient's first copy;
* every first copy's Message-ID is the one the ledger recorded for that recipient;
* the issue ends ``sent``; the breaker paused it during the relay outage and it resumed by itself;
* every sign-up was answered 2xx and received exactly one confirmation email
  (``confirmations_lost`` counts those that did not);
* the issue counters (``sending.counters``) equal a ``GROUP BY`` of the ledger at every poll
  (killed workers' leases expire and are requeued meanwhile) and at the end.

It prints progress lines, a summary, and as its last line one JSON object with the keys
``subscribers``, ``received_unique``, ``missed``, ``duplicates``, ``kills``, ``pg_restarts``,
``relay_outages``, ``auto_resumed``, ``confirmations_lost``, ``duplicates_same_message_id`` and
``final_status`` (and a few more). Exit code 0 when every check holds, 1 otherwise.

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
from sqlalchemy.exc import OperationalError

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
from tests.chaos import storm  # noqa: E402
from tests.support import scratch  # noqa: E402
from tests.support.pg_cluster import PostgresCluster  # noqa: E402
from tests.support.scratch import Child, RedisServer  # noqa: E402

DOMAIN = "chaos.example.org"
# (share of the ledger sent, what to do): kills alternate between the two workers. The sign-up
# storm comes after the kills (a killed worker takes the confirmations it holds for a retry
# later with it, until the broker's visibility timeout) and early enough that the
# confirmations go out while the issue does; the relay outage then delays some of them too.
PLAN: list[tuple[float, str]] = [
    (0.10, "kill worker 0"),
    (0.20, "restart postgres"),
    (0.30, "kill worker 1"),
    (0.40, "kill worker 0"),
    (0.45, "broker down: sign-up storm"),
    (0.60, "relay outage"),
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
        "-Q", "newsletter,newsletter.send,newsletter.webhooks,newsletter.confirm",
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
        self.copies: dict[str, list[str]] = defaultdict(list)  # the issue's recipients
        self.confirmations: dict[str, int] = defaultdict(int)  # the sign-ups' addresses
        self.accepted = 0
        self._counting = threading.Lock()
        self._headers = BytesHeaderParser(policy=default_policy)

    def store(self, received: Received) -> None:
        head = received.data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        message_id = str(self._headers.parsebytes(head).get("Message-ID", "")).strip()
        with self._counting:
            self.accepted += 1
            for rcpt in received.rcpt_tos:
                if rcpt.lower().endswith("@" + storm.DOMAIN):
                    self.confirmations[rcpt.lower()] += 1
                else:
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
    pg_restarts: int = 0
    relay_outages: int = 0
    breaker_pauses: int = 0  # the issue went to paused with the circuit breaker's reason
    auto_resumed: int = 0  # and back to sending, "resumed automatically after the relay ..."
    signups: storm.Storm | None = None


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
            # the breaker's half-open probe: soon after the relay outage ends, not minutes
            "NEWSLETTER_BREAKER_PROBE_SECONDS": str(args.probe_seconds),
            "NEWSLETTER_BREAKER_PROBE_MAX_SECONDS": str(args.probe_seconds * 2),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH")) if p),
        }
    )
    return env


class Relay:
    """The relay outage: the sink's port closed now, opened again ``seconds`` later (the same
    sink, the same port), while the drive loop goes on polling."""

    def __init__(self, sink: CountingSink, seconds: float) -> None:
        self.sink, self.seconds = sink, seconds
        self.down_since: float | None = None
        self.outages = 0

    def go_down(self) -> None:
        self.sink.stop()
        self.down_since = time.monotonic()
        self.outages += 1

    def maybe_back(self) -> bool:
        if self.down_since is None or time.monotonic() - self.down_since < self.seconds:
            return False
        self.sink.start()
        self.down_since = None
        return True


def _poll(
    settings: Settings, issue_id: int
) -> tuple[progress.Progress, tuple[dict[str, int], dict[str, int]]] | None:
    """The issue's progress and counters; None while the database is away (its restart)."""
    try:
        with db.session_scope(settings.database_url) as s:
            return progress.progress(s, issue_id=issue_id), counters.check(s, issue_id)
    except OperationalError:
        return None


def drive(
    settings: Settings,
    issue_id: int,
    *,
    workers: list[Child],
    beat: Child,
    redis_server: RedisServer,
    cluster: PostgresCluster,
    sink: CountingSink,
    args: argparse.Namespace,
    timeout: float,
) -> Outcome:
    """Poll the ledger; kill, restart and cut off at the planned shares; stop when the issue is
    neither sending nor paused, or the time is up."""
    plan = list(PLAN)
    outcome = Outcome(progress.Progress(issue_id, "sending", {}), 0, 0, [], 0.0, [])
    relay = Relay(sink, args.relay_outage)
    started = last_line = time.monotonic()
    previous = IssueStatus.sending
    while True:
        polled = _poll(settings, issue_id)
        elapsed = time.monotonic() - started
        if polled is None:
            if elapsed > timeout:
                break
            time.sleep(0.2)
            continue
        state, (kept, scanned) = polled
        if kept != scanned:
            outcome.counter_drifts.append((kept, scanned))
        if state.status == IssueStatus.paused and previous != IssueStatus.paused:
            outcome.breaker_pauses += "circuit breaker" in (state.reason or "")
            say(f"[{elapsed:6.1f}s] issue paused: {state.reason}")
        if state.status == IssueStatus.sending and previous == IssueStatus.paused:
            automatic = (state.reason or "").startswith("resumed automatically")
            outcome.auto_resumed += automatic
            say(f"[{elapsed:6.1f}s] issue sending again: {state.reason}")
        previous = state.status
        share = state.counts.get("sent", 0) / max(state.total, 1)
        sending = state.status == IssueStatus.sending
        if relay.maybe_back():
            say(f"[{elapsed:6.1f}s] the relay is back (port {sink.port} open again)")
        while plan and sending and share >= plan[0][0]:
            _, action = plan.pop(0)
            note = act(action, workers, redis_server, cluster, relay, settings, issue_id, args)
            if action.startswith("kill"):
                outcome.kills += 1
            elif action == "restart postgres":
                outcome.pg_restarts += 1
            elif action.startswith("broker down"):
                outcome.redis_restarts += 1
                outcome.signups = note[1]
            say(f"[{time.monotonic() - started:6.1f}s] {share:4.0%} sent: {note[0]}")
        for child in [*workers, beat]:
            if not child.running:  # not one we killed: it died by itself; note it, keep going
                assert child.proc is not None
                note_ = f"{child.name} exited by itself with {child.proc.returncode}"
                outcome.unexpected_exits.append(note_)
                say(f"[{elapsed:6.1f}s] {note_}; restarting it\n{child.tail(10)}")
                child.start()
        going = state.status in (IssueStatus.sending, IssueStatus.paused)
        if not going or elapsed > timeout or time.monotonic() - last_line >= 2:
            last_line = time.monotonic()
            counts = " ".join(f"{k}={v}" for k, v in sorted(state.counts.items()))
            say(
                f"[{elapsed:6.1f}s] issue {state.status}: {counts}; sink accepted {sink.accepted}"
                f" (kills {outcome.kills}, pg restarts {outcome.pg_restarts}, "
                f"relay outages {outcome.relay_outages + relay.outages}, "
                f"redis restarts {outcome.redis_restarts})"
            )
        outcome.final = state
        if not going or elapsed > timeout:
            break
        time.sleep(0.2)
    if relay.down_since is not None:  # the time ran out during the outage
        sink.start()
    outcome.relay_outages = relay.outages
    outcome.seconds = time.monotonic() - started
    return outcome


def act(
    action: str,
    workers: list[Child],
    redis_server: RedisServer,
    cluster: PostgresCluster,
    relay: Relay,
    settings: Settings,
    issue_id: int,
    args: argparse.Namespace,
) -> tuple[str, storm.Storm | None]:
    """Do one planned thing; what was done (and the sign-ups, for the storm)."""
    if action == "restart postgres":
        took = cluster.restart()
        return f"restarted PostgreSQL (pg_ctl restart -m fast, {took:.1f}s)", None
    if action == "relay outage":
        relay.go_down()
        return f"the relay went away (port {relay.sink.port} closed) for {relay.seconds:.0f}s", None
    if action.startswith("broker down"):
        before = redis_server.dbsize()
        redis_server.stop()
        slug = storm.newsletter_slug(settings.database_url, issue_id)
        signups = storm.sign_up(settings, slug=slug, count=args.signups)
        redis_server.start()
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(signups.statuses.items()))
        return (
            f"stopped redis ({before} keys), {args.signups} sign-ups in {signups.seconds:.1f}s "
            f"(answers: {answers}; slowest {signups.slowest * 1000:.0f} ms; {signups.waiting} "
            "confirmations waiting in the outbox), redis started again "
            f"({redis_server.dbsize()} keys)",
            signups,
        )
    slot = int(action.rsplit(" ", 1)[1])
    workers[slot].kill()
    workers[slot].start()
    return f"SIGKILLed worker {slot}, restarted it", None


def wait_for_confirmations(
    settings: Settings, sink: CountingSink, signups: storm.Storm | None, timeout: float
) -> float:
    """Until every sign-up got a confirmation (or the time is up): the seconds waited. A
    confirmation the sink answered 451 is retried by its task 30 s or more later."""
    started = time.monotonic()
    wanted = set(signups.addresses) if signups else set()
    last = started
    while time.monotonic() - started < timeout:
        got = wanted & sink.confirmations.keys()
        if got == wanted:
            break
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            try:
                waiting = storm.outbox_waiting(settings.database_url)
            except OperationalError:
                waiting = -1
            say(f"confirmations: {len(got)} of {len(wanted)} received, "
                f"{waiting} outbox rows not relayed yet")  # fmt: skip
        time.sleep(0.2)
    return time.monotonic() - started


def judge(
    *,
    active: set[str],
    gone: set[str],
    sink: CountingSink,
    recorded: dict[str, tuple[str, str | None]],
    outcome: Outcome,
    final_counts: tuple[dict[str, int], dict[str, int]],
    confirmations_waited: float,
) -> tuple[dict[str, Any], list[tuple[str, bool]]]:
    copies = dict(sink.copies)
    signups = outcome.signups or storm.Storm()
    confirmed = dict(sink.confirmations)
    lost = [a for a in signups.addresses if confirmed.get(a, 0) != 1]
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
        "pg_restarts": outcome.pg_restarts,
        "relay_outages": outcome.relay_outages,
        "auto_resumed": outcome.auto_resumed,
        "confirmations_lost": len(lost),
        "duplicates_same_message_id": same_id,
        "final_status": str(outcome.final.status),
        "redis_restarts": outcome.redis_restarts,
        "breaker_pauses": outcome.breaker_pauses,
        "signups": len(signups.addresses),
        "signup_errors": signups.errors,
        "signup_seconds": round(signups.seconds, 1),
        "signup_slowest_ms": round(signups.slowest * 1000),
        "outbox_waiting_after_storm": signups.waiting,
        "confirmations_waited": round(confirmations_waited, 1),
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
    bound = outcome.kills + outcome.pg_restarts
    checks = [
        (f"{planned_kills} worker kills, 1 PostgreSQL restart, 1 relay outage and 1 Redis "
         "stop (the sign-up storm) happened during the send",
         outcome.kills == planned_kills and outcome.pg_restarts == 1
         and outcome.relay_outages == 1 and outcome.redis_restarts == 1),
        ("every subscriber active at the start received a copy", not missed),
        ("nobody else received one", not unexpected),
        (f"duplicates ({duplicates}) <= kills + PostgreSQL restarts ({bound})",
         duplicates <= bound),
        ("every duplicate carries its first copy's Message-ID", same_id),
        ("every first copy's Message-ID is the ledger's, row sent", not mismatched),
        ("the issue counters equalled the ledger at every poll and at the end",
         not outcome.counter_drifts and final_counts[0] == final_counts[1]),
        (f"the issue ended sent (it is {outcome.final.status})",
         outcome.final.status == IssueStatus.sent),
        (f"the breaker paused the send during the relay outage ({outcome.breaker_pauses} "
         f"pauses) and it resumed by itself ({outcome.auto_resumed})",
         outcome.breaker_pauses >= 1 and outcome.auto_resumed == outcome.breaker_pauses),
        (f"every sign-up with the broker down was answered 2xx ({signups.statuses})",
         bool(signups.addresses) and signups.errors == 0),
        (f"every sign-up received exactly one confirmation ({len(lost)} did not)",
         bool(signups.addresses) and not lost),
    ]  # fmt: skip
    if missed:
        say(f"missed (first 10): {sorted(missed)[:10]}")
        say(f"their ledger rows: {[recorded.get(e) for e in sorted(missed)[:10]]}")
    if duplicates:
        extra = [(e, ids) for e, ids in copies.items() if len(ids) > 1]
        say(f"recipients with more than one copy ({len(extra)}; first 10): {extra[:10]}")
    if outcome.counter_drifts or final_counts[0] != final_counts[1]:
        say(f"counters (first drifts) vs ledger: {outcome.counter_drifts[:5]}; end {final_counts}")
    if lost:
        say(f"sign-ups without exactly one confirmation (first 10): "
            f"{[(a, confirmed.get(a, 0)) for a in lost[:10]]}")  # fmt: skip
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
        t0 = time.monotonic()
        cluster = PostgresCluster(keep=args.keep).start()
        stack.callback(cluster.stop)
        database_url = cluster.create_database("chaos")
        say(f"PostgreSQL cluster on port {cluster.port} ({cluster.root}) in "
            f"{time.monotonic() - t0:.1f}s")  # fmt: skip
        stack.callback(lambda: db.get_engine(database_url).dispose())
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
            cluster=cluster,
            sink=sink,
            args=args,
            timeout=timeout,
        )
        waited = wait_for_confirmations(settings, sink, outcome.signups, args.confirm_timeout)
        time.sleep(args.grace)  # a stray late copy (an overrun lease) would still arrive
        stopping = [threading.Thread(target=c.stop) for c in [*workers, beat]]
        for thread in stopping:  # side by side: each may take its warm shutdown's seconds
            thread.start()
        for thread in stopping:
            thread.join()
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
            confirmations_waited=waited,
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
        say(f"PostgreSQL restarts:         {result['pg_restarts']}")
        say(
            f"relay outages:               {result['relay_outages']} "
            f"(breaker pauses {result['breaker_pauses']}, resumed by itself "
            f"{result['auto_resumed']})"
        )
        say(f"redis restarts:              {result['redis_restarts']}")
        say(
            f"sign-ups (broker down):      {result['signups']}, "
            f"{result['signup_errors']} not 2xx, confirmations lost "
            f"{result['confirmations_lost']} (waited {result['confirmations_waited']}s)"
        )
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
            print(f"--- last lines of {cluster.log_path}", file=sys.stderr)
            print(cluster.tail(), file=sys.stderr)
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
    parser.add_argument(
        "--relay-outage",
        type=float,
        default=None,
        help="seconds the relay is away (default 4; 60 from 10,000 subscribers)",
    )
    parser.add_argument("--probe-seconds", type=float, default=None,
                        help="the breaker probe's first cool-down (default: a quarter of the "
                        "outage, at least 1)")  # fmt: skip
    parser.add_argument("--signups", type=int, default=None,
                        help="sign-ups while the broker is down (default 200; 1,000 from 10,000 "
                        "subscribers)")  # fmt: skip
    parser.add_argument("--confirm-timeout", type=float, default=180.0,
                        help="seconds to wait for the confirmations after the send")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers: the kills need at least 2 workers")
    large = args.subscribers >= 10000
    if args.relay_outage is None:
        args.relay_outage = 60.0 if large else 4.0
    if args.probe_seconds is None:
        args.probe_seconds = max(1.0, args.relay_outage / 4)
    if args.signups is None:
        args.signups = 1000 if large else 200
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
