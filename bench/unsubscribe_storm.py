"""Unsubscribe storm: one-click POSTs against ``newsletter serve`` while a send is going out.

One run through the real stack (issue 17): a scratch PostgreSQL database with N subscribers
(default 20,000) and the sample issue, a redis-server of its own, Celery worker(s) sending the
issue (as ``bench/deliver.py``: 2 prefork processes, no rate limit) into a sink in its own
process that notes when each message arrives (``bench/_arrivals.py``, an asyncio SMTP server
that keeps nothing but the arrival; ``--sink aiosmtpd``: the project's sink, which costs about
as much CPU as the server on this machine), and ``newsletter serve`` (uvicorn). A few seconds
into the send (``--before``), ``--posts`` (10,000) one-click POSTs, as a mailbox provider sends
them (the List-Unsubscribe URL of a real subscriber, form body ``List-Unsubscribe=One-Click``),
go out at ``--rate`` a minute (10,000) from ``--clients`` kept-alive HTTP connections
(``bench/_one_click.py``), to a random sample of the subscribers in random order.

Checks and figures:
  * every POST answered 2xx, and recorded: the subscription unsubscribed and one unsubscribe
    event (source ``one-click``) for each;
  * mailed_after_answer: subscribers whose message reached the sink after their POST's answer
    (both clocks CLOCK_MONOTONIC, one machine): must be 0; the others got it before their
    answer, or never (their ledger row skipped); a POST not answered 2xx (``not_2xx``: the
    client's error, or the status and body, and when in the storm) is counted apart, its reader
    still subscribed (``not_2xx_mailed_later``); a POST whose kept-alive connection closed with
    no answer is sent once more on a new one, as a mailbox provider would (``retried``, with
    the error and when: counted, never hidden; its latency runs from the first try);
  * p50/p99 of the POSTs' latency (sent to answered);
  * send_rate_ratio: messages a second into the sink during the storm / in the seconds before
    it, same run (``storm_overlap``: the share of the storm during which the send was still on).

The last line is one JSON object.

    python bench/unsubscribe_storm.py                    # 20,000 subscribers, 10,000 POSTs
    python bench/unsubscribe_storm.py --subscribers 2000 --posts 500 --rate 3000
    python bench/unsubscribe_storm.py sink --port P --out FILE [--kind aiosmtpd]   (the sink)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench import _arrivals, _harness, deliver  # noqa: E402
from bench._harness import Child, RedisServer, free_port, say  # noqa: E402
from bench._one_click import Line  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.models import IssueStatus  # noqa: E402
from newsletter.sending import progress  # noqa: E402
from newsletter.sending.checks import qa_config  # noqa: E402
from newsletter.sending.recipients import personal_links  # noqa: E402
from newsletter.sending.start import fill_ledger  # noqa: E402

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


# ---------------------------------------------------------------- the sink process


def run_sink(port: int, out: Path) -> None:
    """The project's aiosmtpd sink noting each arrival (CLOCK_MONOTONIC, recipient); on SIGTERM
    it writes them to ``out`` as lines ``<time> <recipient>`` (``--sink aiosmtpd``)."""
    from newsletter.transports.sink import Received, SMTPSink

    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    class NotingSink(SMTPSink):
        def store(self, received: Received) -> None:
            now = time.monotonic()
            with lock:
                arrivals.extend((now, to) for to in received.rcpt_tos)

    sink = NotingSink(port=port).start()
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.wait(0.5):
        print(f"mesg={len(arrivals)}", flush=True)
    part = out.with_suffix(".part")
    with lock, part.open("w") as f:  # before stopping: the workers may still hold connections
        for at, to in arrivals:
            f.write(f"{at:.6f} {to}\n")
    part.replace(out)
    sink.stop()


@dataclass
class NotingSink:
    workdir: Path
    kind: str = "lean"  # or "aiosmtpd": the project's sink (SMTPSink)
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.out = self.workdir / "arrivals.txt"
        argv = [sys.executable, str(Path(__file__).resolve()), "sink", "--port", str(self.port)]
        argv += ["--out", str(self.out), "--kind", self.kind]
        self.child = Child("sink", argv, env=None, workdir=self.workdir)

    def start(self) -> NotingSink:
        _harness._answering(self.child, self.host, self.port, "SMTP sink")  # starts it
        return self

    def arrivals(self) -> dict[str, list[float]]:
        """Stop the sink; recipient -> arrival times."""
        self.child.stop()
        found: dict[str, list[float]] = {}
        for line in self.out.read_text().splitlines():
            at, to = line.split(" ", 1)
            found.setdefault(to, []).append(float(at))
        return found


# ---------------------------------------------------------------- the storm


@dataclass
class Post:
    subscriber_id: int
    email: str
    path: str
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    failure: str = ""  # not answered: the client's error, or the status and body
    retried_after: str = ""  # dropped unanswered on a kept-alive connection, sent again


async def storm(base: str, posts: list[Post], *, rate_per_min: float, clients: int) -> float:
    """POST each at its slot (``rate_per_min``), ``clients`` connections at a time (kept
    alive, ``_one_click.Line``); returns the start."""
    interval = 60.0 / rate_per_min
    queue: asyncio.Queue[tuple[float, Post]] = asyncio.Queue()
    start = time.monotonic() + 0.2
    for index, post in enumerate(posts):
        queue.put_nowait((start + index * interval, post))
    address = urlsplit(base)
    form = urlencode(ONE_CLICK).encode()

    async def one_client() -> None:
        line = Line(address.hostname or "127.0.0.1", address.port or 80, timeout=60)
        try:
            while not queue.empty():
                slot, post = queue.get_nowait()
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
                post.sent = time.monotonic()
                try:
                    answer = await line.post_form(post.path, form)
                    post.status, post.retried_after = answer.status, answer.retried_after
                    if not 200 <= answer.status < 300:
                        post.failure = f"{answer.status} {answer.body[:200]!r}"
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    post.status = -1
                    post.failure = f"{type(exc).__name__}: {exc}"[:200]
                post.answered = time.monotonic()
        finally:
            line.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return start


def server_child(env: dict[str, str], workdir: Path, processes: int = 1) -> tuple[Child, str]:
    port = free_port()
    argv = [sys.executable, "-m", "newsletter", "serve", "--port", str(port)]
    argv += ["--workers", str(processes)] if processes > 1 else []
    child = Child("serve", argv, env={**env, "NEWSLETTER_LOG_LEVEL": "WARNING"}, workdir=workdir)
    return child, f"http://127.0.0.1:{port}"


def wait_healthy(child: Child, base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not child.running:
            break
        time.sleep(0.2)
    raise RuntimeError(f"newsletter serve did not answer /healthz:\n{child.tail()}")


def choose(url: str, settings: Any, n: int, seed: int) -> list[Post]:
    """``n`` random subscribers in random order, each with their List-Unsubscribe URL's path."""
    with db.session_scope(url) as s:
        rows = s.execute(
            text(
                "SELECT s.subscriber_id, r.email, s.newsletter_id FROM subscription s "
                "JOIN subscriber r ON r.id = s.subscriber_id WHERE s.status = 'active'"
            )
        ).all()
    picked = random.Random(seed).sample(list(rows), n)
    posts = []
    for sid, email, nid in picked:
        link = personal_links(settings, subscriber_id=sid, newsletter_id=nid)["unsubscribe_url"]
        posts.append(Post(sid, email, "/unsubscribe/" + link.rsplit("/", 1)[1]))
    return posts


def recorded(url: str, posts: list[Post]) -> tuple[int, int]:
    """(targets now unsubscribed with exactly one one-click unsubscribe event, their skipped
    ledger rows)."""
    ids = [p.subscriber_id for p in posts]
    with db.session_scope(url) as s:
        done = s.execute(
            text(
                "SELECT count(*) FROM subscription s WHERE s.subscriber_id = ANY(:ids) "
                "AND s.status = 'unsubscribed' AND (SELECT count(*) FROM subscriberevent e "
                "WHERE e.subscriber_id = s.subscriber_id AND e.kind = 'unsubscribe' "
                "AND e.source = 'one-click') = 1"
            ),
            {"ids": ids},
        ).scalar_one()
        skipped = s.execute(
            text(
                "SELECT count(*) FROM delivery WHERE subscriber_id = ANY(:ids) "
                "AND status = 'skipped'"
            ),
            {"ids": ids},
        ).scalar_one()
    return int(done), int(skipped)


def wait_sent(url: str, issue_id: int, timeout: float) -> float:
    """Until the issue is sent (the tick as beat would run it); the time it was seen sent."""
    from worker.tasks import tick

    t0, last, still = time.monotonic(), -1, time.monotonic()
    while time.monotonic() - t0 < timeout:
        with db.session_scope(url) as s:
            state = progress.progress(s, issue_id=issue_id)
        if state.finished:
            return time.monotonic()
        if state.status != IssueStatus.sending:
            raise RuntimeError(f"issue left sending: {state}")
        if state.done != last:
            last, still = state.done, time.monotonic()
        elif time.monotonic() - still > 3:
            tick.delay()
            still = time.monotonic()
        time.sleep(0.25)
    raise RuntimeError(f"send not finished after {timeout:.0f}s")


def rate_between(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start) if end > start else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="storm-")))
        redis = RedisServer(workdir=workdir).start()
        stack.callback(redis.stop)
        url = stack.enter_context(_harness.scratch_database(keep=args.keep_db))
        issue_id = _harness.prepare_issue(url, active=args.subscribers)
        sink = NotingSink(workdir, kind=args.sink).start()
        stack.callback(sink.child.stop)
        ns = argparse.Namespace(workers=args.workers, layout="pool", batch_size=200, parallelism=0)
        env = deliver.bench_env(database_url=url, redis_url=redis.url, sink=sink, args=ns)
        settings = deliver.use_env(env)
        workers = deliver.worker_children(ns, env, workdir)
        for child in workers:
            stack.callback(child.stop)
            child.start()
        server, base = server_child(env, workdir, args.web_workers)
        stack.callback(server.stop)
        server.start()
        wait_healthy(server, base)
        deliver.wait_ready(workers)
        posts = choose(url, settings, args.posts, args.seed)
        say(
            f"{args.subscribers:,} subscribers, {len(posts):,} POSTs at {args.rate:,.0f}/min "
            f"from {args.clients} clients, serve at {base}"
        )

        from worker.tasks import dispatch

        with db.session_scope(url) as s:
            fill_ledger(s, issue_id=issue_id, checks=qa_config(settings))
        send_start = time.monotonic()
        dispatch.delay(issue_id)
        time.sleep(args.before)
        storm_start = asyncio.run(storm(base, posts, rate_per_min=args.rate, clients=args.clients))
        storm_end = max(p.answered for p in posts)
        say(f"storm: {len(posts):,} POSTs answered in {storm_end - storm_start:.1f}s")
        if any(p.retried_after for p in posts):
            say(f"dropped unanswered, sent again: {Counter(p.retried_after for p in posts)}")
        if any(p.failure for p in posts):  # what the server said about it, while it is up
            say(f"not answered 2xx: {Counter(p.failure for p in posts if p.failure)}")
            say(f"newsletter serve, last lines:\n{server.tail(80)}")
        sent_at = wait_sent(url, issue_id, timeout=max(300.0, args.subscribers / 50))
        arrivals = sink.arrivals()
        done, skipped = recorded(url, posts)

    times = sorted(t for ts in arrivals.values() for t in ts)
    first = times[0] if times else send_start
    last = times[-1] if times else sent_at
    before = rate_between(times, first, storm_start)
    during_end = min(storm_end, last)
    during = rate_between(times, storm_start, during_end)
    after = [p for p in posts if any(t > p.answered for t in arrivals.get(p.email, []))]
    late = [p for p in after if not p.failure]  # a POST with no 2xx answer has no "after" it
    before_answer = sum(1 for p in posts if arrivals.get(p.email)) - len(after)
    latencies = [(p.answered - p.sent) * 1000 for p in posts]
    ok = sum(1 for p in posts if 200 <= p.status < 300)
    result: dict[str, Any] = {
        "subscribers": args.subscribers,
        "clients": args.clients,
        "web_workers": args.web_workers,
        "posts": len(posts),
        "answered_2xx": ok,
        "not_2xx": dict(Counter(p.failure for p in posts if p.failure)),
        "not_2xx_at_s": [round(p.sent - storm_start, 1) for p in posts if p.failure],
        "not_2xx_mailed_later": len(after) - len(late),
        "retried": dict(Counter(p.retried_after for p in posts if p.retried_after)),
        "retried_at_s": [round(p.sent - storm_start, 1) for p in posts if p.retried_after],
        "recorded": done,
        "mailed_after_answer": len(late),
        "mailed_before_answer": before_answer,
        "never_mailed_skipped": skipped,
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "storm_s": round(storm_end - storm_start, 1),
        "posts_per_min": round(len(posts) / (storm_end - storm_start) * 60),
        "send_rate_before": round(before, 1),
        "send_rate_during": round(during, 1),
        "send_rate_ratio": round(during / before, 3) if before else None,
        "storm_overlap": round(max(0.0, during_end - storm_start) / (storm_end - storm_start), 3),
        "messages": len(times),
        "send_s": round(last - first, 1),
    }
    say(
        f"answered 2xx {ok:,}/{len(posts):,}, recorded {done:,}; mailed after the answer "
        f"{len(late)}, before it {before_answer:,}, never (skipped) {skipped:,}"
    )
    say(f"latency p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    say(
        f"send rate {before:,.0f} msg/s before the storm, {during:,.0f} during it "
        f"(x{result['send_rate_ratio']}; the send was on for {result['storm_overlap']:.0%} of it)"
    )
    return result


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sink"]:
        sub = argparse.ArgumentParser()
        sub.add_argument("--port", type=int, required=True)
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--kind", choices=("lean", "aiosmtpd"), default="lean")
        opts = sub.parse_args(argv[1:])
        if opts.kind == "aiosmtpd":
            run_sink(opts.port, opts.out)
        else:
            _arrivals.run(opts.port, opts.out)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10_000, help="POSTs a minute")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP connections")
    parser.add_argument(
        "--web-workers", type=int, default=1, help="newsletter serve --workers (web processes)"
    )
    parser.add_argument("--before", type=float, default=5.0, help="seconds of send before it")
    parser.add_argument("--workers", type=int, default=2, help="Celery prefork processes")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--sink",
        choices=("lean", "aiosmtpd"),
        default="lean",
        help="lean: bench/_arrivals.py (notes arrivals only); aiosmtpd: the project's sink",
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
